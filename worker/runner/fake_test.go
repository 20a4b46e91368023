package runner_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/apikey"
)

// fakeInbox is the inbox API's consumer contract in memory: POST /inbox/pull leases visible
// events oldest first (long-polling when asked), and /ack, /inbox/extend and /nack settle them
// only under the lease that holds them, answering lease_lost otherwise, as the real service
// does. It records every call so tests can check what the worker sent, and it rejects any
// other request shape, so a worker falling back to GET /inbox or unleased acks fails loudly.
type fakeInbox struct {
	mu      sync.Mutex
	tenants map[string]string     // key → tenant
	events  map[string]*fakeEvent // by id
	order   map[string][]string   // tenant → event ids, oldest first
	calls   []fakeCall
	leases  int // lease ids issued
	// parked counts long polls that found nothing and began to wait; gone counts those the
	// client abandoned while they waited.
	parked, gone int
	changed      chan struct{} // closed and replaced on every change, for waitFor
	// fail, when set, may answer a request with an error status instead (0: serve it). It runs
	// under mu, so it may keep its own counters without locking.
	fail func(r *http.Request) int
	// retryAfter, when set, is the Retry-After of the answers fail injects.
	retryAfter string
	// refuseItemContexts answers, as an inbox older than the field would, 400 to any ack or
	// nack item carrying a trace_context.
	refuseItemContexts bool
}

type fakeEvent struct {
	id, tenant, typ string
	state           string // visible, leased, acked, delayed
	lease           string
	deliveries      int
	traceparent     string // sent as trace_context when set
}

// fakeCall is one request as the fake understood it.
type fakeCall struct {
	path   string
	tenant string
	at     time.Time
	pull   pullBody
	leases []lease
	vis    int // extend's visibility_timeout_seconds
	delay  int // nack's delay_seconds
	// results are the answer's per-item outcomes: a status or an error code, by event id.
	results map[string]string
	served  []lease // leases a pull granted
	// traceparent is the request's header: the context the worker's client span sent.
	traceparent string
	refused     bool // answered 400 for its items' trace contexts
}

type pullBody struct {
	MaxEvents                *int `json:"max_events"`
	VisibilityTimeoutSeconds *int `json:"visibility_timeout_seconds"`
	WaitSeconds              *int `json:"wait_seconds"`
}

type lease struct {
	EventID      string        `json:"event_id"`
	LeaseID      string        `json:"lease_id"`
	TraceContext *traceContext `json:"trace_context,omitempty"`
}

type traceContext struct {
	Traceparent string `json:"traceparent"`
}

func newFakeInbox() *fakeInbox {
	return &fakeInbox{
		tenants: map[string]string{}, events: map[string]*fakeEvent{}, order: map[string][]string{},
		changed: make(chan struct{}),
	}
}

// tenant registers a tenant with n visible events and returns its key.
func (f *fakeInbox) tenant(t *testing.T, id string, n int) string {
	t.Helper()
	k, err := apikey.New(id)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tenants[k.String()] = id
	for i := range n {
		ev := &fakeEvent{id: fmt.Sprintf("evt_%s_%02d", id, i), tenant: id, typ: "type." + id, state: "visible"}
		f.events[ev.id] = ev
		f.order[id] = append(f.order[id], ev.id)
	}
	return k.String()
}

// notify wakes every waitFor and parked long poll; mu must be held.
func (f *fakeInbox) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeInbox) envelope(w http.ResponseWriter, status int, code string) {
	f.envelopeMessage(w, status, code, http.StatusText(status))
}

func (f *fakeInbox) envelopeMessage(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", "req_fake")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
		"code": code, "message": message, "request_id": "req_fake"}})
}

// refusesContexts answers the old inbox's 400 when it is set and an item carries a context.
func (f *fakeInbox) refusesContexts(w http.ResponseWriter, c fakeCall, ls []lease) bool {
	if !f.refuseItemContexts || !slices.ContainsFunc(ls, func(l lease) bool { return l.TraceContext != nil }) {
		return false
	}
	c.refused = true
	f.calls = append(f.calls, c)
	f.envelopeMessage(w, http.StatusBadRequest, "invalid_request", `unknown field "trace_context"`)
	return true
}

func (f *fakeInbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.notify()
	if f.fail != nil {
		if status := f.fail(r); status != 0 {
			if f.retryAfter != "" {
				w.Header().Set("Retry-After", f.retryAfter)
			}
			f.envelope(w, status, "injected")
			return
		}
	}
	tenant, ok := f.tenants[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if !ok {
		f.envelope(w, http.StatusUnauthorized, "unauthenticated")
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		f.envelope(w, http.StatusNotFound, "not_found")
		return
	}
	c := fakeCall{path: r.URL.Path, tenant: tenant, results: map[string]string{}, traceparent: r.Header.Get("Traceparent")}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	switch r.URL.Path {
	case "/inbox/pull":
		if dec.Decode(&c.pull) != nil || !c.pull.valid() {
			f.envelope(w, http.StatusBadRequest, "invalid_request")
			return
		}
		f.pull(w, r, c)
		return
	case "/ack":
		var body struct {
			Leases []lease `json:"leases"`
		}
		if dec.Decode(&body) != nil || !validLeases(body.Leases) {
			f.envelope(w, http.StatusBadRequest, "invalid_request")
			return
		}
		c.leases = body.Leases
		if f.refusesContexts(w, c, body.Leases) {
			return
		}
		f.settle(w, c, "acknowledged", func(ev *fakeEvent, l lease) string {
			switch {
			case ev.state == "acked" && ev.lease == l.LeaseID:
				return "acknowledged"
			case ev.state == "leased" && ev.lease == l.LeaseID:
				ev.state = "acked"
				return "acknowledged"
			}
			return "lease_lost"
		})
	case "/inbox/extend":
		var body struct {
			Leases []lease `json:"leases"`
			Vis    *int    `json:"visibility_timeout_seconds"`
		}
		if dec.Decode(&body) != nil || !validLeases(body.Leases) || body.Vis == nil || *body.Vis < 0 || *body.Vis > 43200 {
			f.envelope(w, http.StatusBadRequest, "invalid_request")
			return
		}
		c.leases, c.vis = body.Leases, *body.Vis
		f.settle(w, c, "extended", func(ev *fakeEvent, l lease) string {
			if ev.state == "leased" && ev.lease == l.LeaseID {
				return "extended"
			}
			return "lease_lost"
		})
	case "/nack":
		var body struct {
			Leases []lease `json:"leases"`
			Delay  *int    `json:"delay_seconds"`
		}
		if dec.Decode(&body) != nil || !validLeases(body.Leases) || body.Delay == nil || *body.Delay < 0 || *body.Delay > 43200 {
			f.envelope(w, http.StatusBadRequest, "invalid_request")
			return
		}
		c.leases, c.delay = body.Leases, *body.Delay
		if f.refusesContexts(w, c, body.Leases) {
			return
		}
		f.settle(w, c, "nacked", func(ev *fakeEvent, l lease) string {
			if ev.state != "leased" || ev.lease != l.LeaseID {
				return "lease_lost"
			}
			ev.state, ev.lease = "visible", ""
			if c.delay > 0 {
				ev.state = "delayed" // never visible again within a test
			}
			return "nacked"
		})
	default:
		f.envelope(w, http.StatusNotFound, "not_found")
	}
}

func (p pullBody) valid() bool {
	in := func(v *int, lo, hi int) bool { return v == nil || (*v >= lo && *v <= hi) }
	return in(p.MaxEvents, 1, 100) && in(p.VisibilityTimeoutSeconds, 1, 43200) && in(p.WaitSeconds, 0, 20)
}

// validLeases is the API's rule for a list of leases: 1 to 100, each complete, no event twice.
func validLeases(ls []lease) bool {
	seen := map[string]bool{}
	for _, l := range ls {
		if l.EventID == "" || l.LeaseID == "" || seen[l.EventID] {
			return false
		}
		seen[l.EventID] = true
	}
	return len(ls) >= 1 && len(ls) <= 100
}

// pull leases what is visible; with nothing visible and wait_seconds > 0 it waits for a change,
// the wait's end or the client going away. mu is held on entry and exit.
func (f *fakeInbox) pull(w http.ResponseWriter, r *http.Request, c fakeCall) {
	max, wait := 10, 0
	if c.pull.MaxEvents != nil {
		max = *c.pull.MaxEvents
	}
	if c.pull.WaitSeconds != nil {
		wait = *c.pull.WaitSeconds
	}
	deadline := time.After(time.Duration(wait) * time.Second)
	var got []*fakeEvent
	for {
		got = got[:0]
		for _, id := range f.order[c.tenant] {
			if ev := f.events[id]; ev.state == "visible" && len(got) < max {
				got = append(got, ev)
			}
		}
		if len(got) > 0 || wait == 0 {
			break
		}
		f.parked++
		f.notify()
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
			f.mu.Lock()
			continue
		case <-r.Context().Done():
			f.mu.Lock()
			f.gone++
			return
		case <-deadline:
			f.mu.Lock()
		}
		break
	}
	out := make([]map[string]any, 0, len(got))
	for _, ev := range got {
		f.leases++
		ev.state, ev.lease = "leased", fmt.Sprintf("lease_%04d", f.leases)
		ev.deliveries++
		c.served = append(c.served, lease{EventID: ev.id, LeaseID: ev.lease})
		item := map[string]any{
			"event_id": ev.id, "event_type": ev.typ, "timestamp": 1732140249123, "received_at": 1732140249123,
			"status": "undelivered", "delivery_count": ev.deliveries, "lease_id": ev.lease, "lease_expires_at": 1732140279123,
			"payload": map[string]string{"event_type": ev.typ, "secret": "PAYLOAD-" + ev.id},
		}
		if ev.traceparent != "" {
			item["trace_context"] = traceContext{Traceparent: ev.traceparent}
		}
		out = append(out, item)
	}
	c.at = time.Now()
	f.calls = append(f.calls, c)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"events": out})
}

// settle answers a batch call: op decides each held event's outcome; events of other tenants
// or unknown ones are not_found.
func (f *fakeInbox) settle(w http.ResponseWriter, c fakeCall, okStatus string, op func(*fakeEvent, lease) string) {
	results := make([]map[string]any, 0, len(c.leases))
	for _, l := range c.leases {
		res := map[string]any{"event_id": l.EventID}
		outcome := "not_found"
		if ev, ok := f.events[l.EventID]; ok && ev.tenant == c.tenant {
			outcome = op(ev, l)
		}
		if outcome == okStatus {
			res["status"] = outcome
			if okStatus == "extended" {
				res["lease_id"], res["lease_expires_at"] = l.LeaseID, 1732140279123
			}
		} else {
			res["error"] = map[string]string{"code": outcome, "message": outcome}
		}
		c.results[l.EventID] = outcome
		results = append(results, res)
	}
	c.at = time.Now()
	f.calls = append(f.calls, c)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"results": results})
}

// steal stands for the event's lease running out and another consumer leasing it.
func (f *fakeInbox) steal(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.notify()
	ev := f.events[id]
	f.leases++
	ev.state, ev.lease = "leased", fmt.Sprintf("lease_stolen_%04d", f.leases)
	ev.deliveries++
}

// waitFor returns once cond (run under the fake's lock) holds, failing the test if it does
// not within the deadline. It wakes on every change, so it never guesses with a sleep.
func (f *fakeInbox) waitFor(t *testing.T, what string, cond func(f *fakeInbox) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		ok, changed := cond(f), f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// callsTo lists the recorded calls of one path, oldest first.
func (f *fakeInbox) callsTo(path string) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if c.path == path {
			out = append(out, c)
		}
	}
	return out
}

// countCalls is callsTo's length, for use inside waitFor's condition (lock held).
func (f *fakeInbox) countCalls(path string) int {
	n := 0
	for _, c := range f.calls {
		if c.path == path {
			n++
		}
	}
	return n
}

// countState counts a tenant's events in a state (lock held).
func (f *fakeInbox) countState(tenant, state string) int {
	n := 0
	for _, id := range f.order[tenant] {
		if f.events[id].state == state {
			n++
		}
	}
	return n
}

func (f *fakeInbox) state(id string) (state, leaseID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.events[id].state, f.events[id].lease
}

// granted maps each event to the leases pulls granted it, in order.
func (f *fakeInbox) granted() map[string][]string {
	out := map[string][]string{}
	for _, c := range f.callsTo("/inbox/pull") {
		for _, l := range c.served {
			out[l.EventID] = append(out[l.EventID], l.LeaseID)
		}
	}
	return out
}

// acked maps each event to the number of ack items the fake answered "acknowledged" for it.
func (f *fakeInbox) acked() map[string]int {
	out := map[string]int{}
	for _, c := range f.callsTo("/ack") {
		for id, outcome := range c.results {
			if outcome == "acknowledged" {
				out[id]++
			}
		}
	}
	return out
}

func (f *fakeInbox) pending(tenant string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, id := range f.order[tenant] {
		if f.events[id].state != "acked" {
			out = append(out, id)
		}
	}
	return out
}

// ackSizes lists how many leases each ack call carried.
func (f *fakeInbox) ackSizes() []int {
	var out []int
	for _, c := range f.callsTo("/ack") {
		out = append(out, len(c.leases))
	}
	return out
}

// checkAcksCarryGrantedLeases fails t unless every acked item named the lease its event was
// last granted: the worker acknowledges under the lease it holds, never an invented one.
func (f *fakeInbox) checkAcksCarryGrantedLeases(t *testing.T) {
	t.Helper()
	granted := f.granted()
	for _, c := range f.callsTo("/ack") {
		for _, l := range c.leases {
			if g := granted[l.EventID]; !slices.Contains(g, l.LeaseID) {
				t.Errorf("ack of %s under %s, which no pull granted it (granted %v)", l.EventID, l.LeaseID, g)
			}
		}
	}
}

// receive waits for a value or fails the test at the deadline; the deadline only bounds a
// broken test, it never paces a passing one.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
