package noisy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// maxFindings bounds the unexpected answers kept with their bodies: the first ones say what
// went wrong, the counts say how often.
const maxFindings = 20

// maxFindingBody is how much of an unexpected answer's body a finding keeps.
const maxFindingBody = 512

// Finding is one answer (or failure to answer) an actor should not have had.
type Finding struct {
	Phase  string `json:"phase"`
	Actor  string `json:"actor"`
	Route  string `json:"route"`
	Status int    `json:"status,omitempty"` // 0: no answer at all
	Body   string `json:"body,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (f Finding) String() string {
	if f.Status == 0 {
		return fmt.Sprintf("[%s] %s %s: no answer: %s", f.Phase, f.Actor, f.Route, f.Error)
	}
	return fmt.Sprintf("[%s] %s %s: %d %s", f.Phase, f.Actor, f.Route, f.Status, f.Body)
}

// recorder is the transport of every client an actor uses. The typed client may retry inside
// a call, so only the transport sees each raw answer; the scenario's clients do not retry,
// but the raw count is what the assertions read all the same.
type recorder struct {
	actor    string
	next     http.RoundTripper
	phase    func() string
	expected func(*http.Response) bool

	mu         sync.Mutex
	statuses   map[string]map[int]int // "METHOD /path" → status → answers
	unexpected int
	findings   []Finding
	cancelled  int // calls the scenario itself gave up on while stopping
}

func newRecorder(actor string, next http.RoundTripper, phase func() string, expected func(*http.Response) bool) *recorder {
	return &recorder{actor: actor, next: next, phase: phase, expected: expected, statuses: map[string]map[int]int{}}
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	route := req.Method + " " + req.URL.Path
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		if req.Context().Err() != nil {
			r.mu.Lock()
			r.cancelled++
			r.mu.Unlock()
			return nil, err
		}
		r.note(Finding{Route: route, Error: err.Error()})
		return nil, err
	}
	r.mu.Lock()
	if r.statuses[route] == nil {
		r.statuses[route] = map[int]int{}
	}
	r.statuses[route][resp.StatusCode]++
	r.mu.Unlock()
	if !r.expected(resp) {
		// The body is read here to keep it as evidence, and handed on whole to the client.
		head, _ := io.ReadAll(io.LimitReader(resp.Body, maxFindingBody))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
		r.note(Finding{Route: route, Status: resp.StatusCode, Body: strings.TrimSpace(string(head))})
	}
	return resp, nil
}

func (r *recorder) note(f Finding) {
	f.Phase, f.Actor = r.phase(), r.actor
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unexpected++
	if len(r.findings) < maxFindings {
		r.findings = append(r.findings, f)
	}
}

// Statuses are an actor's raw answers by route and status.
type Statuses map[string]map[int]int

// Total counts every answer with status.
func (s Statuses) Total(status int) int {
	n := 0
	for _, by := range s {
		n += by[status]
	}
	return n
}

// Calls counts every answer.
func (s Statuses) Calls() int {
	n := 0
	for _, by := range s {
		for _, c := range by {
			n += c
		}
	}
	return n
}

// String lists the routes in order, each with its statuses: "GET /inbox 200×12 429×3".
func (s Statuses) String() string {
	routes := make([]string, 0, len(s))
	for r := range s {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	var b strings.Builder
	for i, r := range routes {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r)
		codes := make([]int, 0, len(s[r]))
		for c := range s[r] {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		for _, c := range codes {
			fmt.Fprintf(&b, " %d×%d", c, s[r][c])
		}
	}
	return b.String()
}

// actorView is what a recorder saw, copied.
type actorView struct {
	Statuses   Statuses  `json:"statuses"`
	Unexpected int       `json:"unexpected"`
	Findings   []Finding `json:"findings,omitempty"`
	Cancelled  int       `json:"cancelled_by_scenario"`
}

func (r *recorder) view() actorView {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := make(Statuses, len(r.statuses))
	for route, by := range r.statuses {
		s[route] = make(map[int]int, len(by))
		for c, n := range by {
			s[route][c] = n
		}
	}
	return actorView{Statuses: s, Unexpected: r.unexpected, Findings: append([]Finding(nil), r.findings...), Cancelled: r.cancelled}
}

// neighbourExpects: the neighbour's every call must succeed.
func neighbourExpects(resp *http.Response) bool {
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

// abuserExpects are the statuses the API documents for what the abuser sends, and 503 with
// Retry-After: on 2 shared cores A's load saturates DynamoDB Local itself, and its own calls
// past their DynamoDB budget answer as DynamoDB trouble must. Any other 5xx, or a 503 without
// Retry-After, is a finding.
func abuserExpects(resp *http.Response) bool {
	switch resp.StatusCode {
	case 200, 202, 400, 401, 403, 404, 409, 413, 429:
		return true
	case 503:
		return resp.Header.Get("Retry-After") != ""
	}
	return false
}

// add counts what another recorder of the same actor saw (A's own process) as seen here.
func (r *recorder) add(v actorView) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for route, by := range v.Statuses {
		if r.statuses[route] == nil {
			r.statuses[route] = map[int]int{}
		}
		for c, n := range by {
			r.statuses[route][c] += n
		}
	}
	r.unexpected += v.Unexpected
	r.cancelled += v.Cancelled
	for _, f := range v.Findings {
		if len(r.findings) < maxFindings {
			r.findings = append(r.findings, f)
		}
	}
}
