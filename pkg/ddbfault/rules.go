package ddbfault

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Kind is what a rule does to a request it acts on.
type Kind int

const (
	Delay         Kind = iota + 1 // wait Rule.Delay, then forward
	Stall                         // hold the request until Release(), then forward; Close() or the client giving up drops it unforwarded
	Status500                     // answer 500 InternalServerError without forwarding
	Status503                     // answer 503 ServiceUnavailable without forwarding
	Throttle                      // answer 400 ThrottlingException without forwarding
	Reset                         // close the client connection abruptly (TCP RST: SO_LINGER 0) without forwarding
	ApplyThenDrop                 // forward the request, wait for DynamoDB's answer, discard it, then reset the client connection
)

var kindNames = [...]string{Delay: "Delay", Stall: "Stall", Status500: "Status500", Status503: "Status503",
	Throttle: "Throttle", Reset: "Reset", ApplyThenDrop: "ApplyThenDrop"}

func (k Kind) String() string {
	if k < Delay || k > ApplyThenDrop {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// Rule picks requests and says what to do with them. A stall ends only with Release: a stalled
// request whose client gives up, or that is still held when the proxy closes, is dropped
// without reaching DynamoDB, so no write lands after its caller has moved on.
type Rule struct {
	Op    string // operation name as in X-Amz-Target after the dot; "" matches every operation
	Kind  Kind
	Delay time.Duration // for Delay
	Times int           // how many matching requests the rule acts on; 0 = no limit
	Rate  float64       // chance (0..1] that a matching request is acted on; 0 means always
	// Match is an optional extra filter on the request body (nil = all). It runs outside the
	// proxy's lock, so it may be slow or call the proxy, but it must be safe for concurrent use.
	Match func(body []byte) bool
}

type rule struct {
	Rule
	acted   int  // guarded by Proxy.mu
	removed bool // guarded by Proxy.mu
}

func (r *rule) matches(op string, body []byte) bool {
	return (r.Op == "" || r.Op == op) && (r.Match == nil || r.Match(body))
}

// acts decides, under Proxy.mu, whether a matching request is acted on.
func (r *rule) acts() bool {
	if r.removed || (r.Times > 0 && r.acted >= r.Times) {
		return false
	}
	return r.Rate == 0 || r.Rate >= 1 || rand.Float64() < r.Rate
}

// Add appends a rule and returns a func that removes it. Rules are checked in the order added;
// the first that acts wins, and one that declines (no match, spent Times, lost Rate draw)
// leaves the request to the next. A rule that could never act as meant panics: it is a bug in
// the test that adds it.
func (p *Proxy) Add(r Rule) (remove func()) {
	switch {
	case r.Kind < Delay || r.Kind > ApplyThenDrop:
		panic(fmt.Sprintf("ddbfault: rule with unknown kind %v", r.Kind))
	case r.Times < 0:
		panic(fmt.Sprintf("ddbfault: rule with Times %d < 0", r.Times))
	case r.Rate < 0 || r.Rate > 1:
		panic(fmt.Sprintf("ddbfault: rule with Rate %v outside [0, 1]", r.Rate))
	case r.Delay < 0:
		panic(fmt.Sprintf("ddbfault: rule with Delay %v < 0", r.Delay))
	}
	added := &rule{Rule: r}
	p.mu.Lock()
	p.rules = append(slices.Clip(p.rules), added)
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		added.removed = true
		p.rules = slices.DeleteFunc(slices.Clone(p.rules), func(x *rule) bool { return x == added })
	}
}

// Clear removes every rule. Requests already stalled stay stalled until Release.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rules {
		r.removed = true
	}
	p.rules = nil
}

// Release lets every currently stalled request continue to DynamoDB. Requests stalled after it
// wait for the next Release.
func (p *Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.release)
	p.release = make(chan struct{})
}

// Seen is the number of requests received for op ("" = all).
func (p *Proxy) Seen(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if op != "" {
		return p.seen[op]
	}
	n := 0
	for _, c := range p.seen {
		n += c
	}
	return n
}

// Acted is the number of requests for op ("" = all ops) the proxy acted on with kind k. A
// request is counted when the proxy takes it up, before it waits: Acted(op, Stall) reaching n
// means n requests have stalled.
func (p *Proxy) Acted(op string, k Kind) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if op != "" {
		return p.acted[actedKey{op, k}]
	}
	n := 0
	for key, c := range p.acted {
		if key.kind == k {
			n += c
		}
	}
	return n
}

// Stalled is the number of requests held by a stall right now.
func (p *Proxy) Stalled() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalled
}

// action is what serve does with one request; a zero kind forwards it untouched.
type action struct {
	kind    Kind
	delay   time.Duration
	release <-chan struct{}
}

func (p *Proxy) decide(op string, body []byte) action {
	p.mu.Lock()
	p.seen[op]++
	rules := p.rules
	p.mu.Unlock()
	matched := make([]bool, len(rules))
	for i, r := range rules {
		matched[i] = r.matches(op, body)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range rules {
		if !matched[i] || !r.acts() {
			continue
		}
		r.acted++
		p.acted[actedKey{op, r.Kind}]++
		a := action{kind: r.Kind, delay: r.Delay}
		if r.Kind == Stall {
			// Taken with the count, so a Release that follows a seen Acted or Stalled frees it.
			a.release = p.release
			p.stalled++
		}
		return a
	}
	return action{}
}
