package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/apikey"
)

// fakeInbox is the inbox API's contract in memory: GET /inbox serves a tenant's unacknowledged
// events oldest first and POST /ack removes one. It counts every ack so tests can tell a
// double ack from a single one.
type fakeInbox struct {
	mu      sync.Mutex
	tenants map[string]string   // key → tenant
	queue   map[string][]string // tenant → unacknowledged event ids, oldest first
	types   map[string]string   // event id → event type
	owner   map[string]string   // event id → tenant
	acks    map[string]int      // event id → acks answered 200
	reads   map[string][]int    // tenant → size of each page served
	// fail, when set, may answer a request with an error status instead (0: serve it). It runs
	// under mu, so it may keep its own counters without locking.
	fail func(r *http.Request) int
	// onAck, when set, is told of every event acknowledged.
	onAck func(id string)
}

func newFakeInbox() *fakeInbox {
	return &fakeInbox{
		tenants: map[string]string{}, queue: map[string][]string{}, types: map[string]string{},
		owner: map[string]string{}, acks: map[string]int{}, reads: map[string][]int{},
	}
}

// tenant registers a tenant with n events and returns its key.
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
		ev := fmt.Sprintf("evt_%s_%02d", id, i)
		f.queue[id] = append(f.queue[id], ev)
		f.types[ev] = "type." + id
		f.owner[ev] = id
	}
	return k.String()
}

func (f *fakeInbox) envelope(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", "req_fake")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
		"code": code, "message": http.StatusText(status), "request_id": "req_fake"}})
}

func (f *fakeInbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if status := f.fail(r); status != 0 {
			f.envelope(w, status, "injected")
			return
		}
	}
	tenant, ok := f.tenants[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if !ok {
		f.envelope(w, http.StatusUnauthorized, "unauthenticated")
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/inbox":
		limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil || limit < 1 || limit > 100 {
			f.envelope(w, http.StatusBadRequest, "invalid_request")
			return
		}
		ids := f.queue[tenant][:min(limit, len(f.queue[tenant]))]
		f.reads[tenant] = append(f.reads[tenant], len(ids))
		events := make([]map[string]any, 0, len(ids))
		for _, id := range ids {
			events = append(events, map[string]any{
				"event_id": id, "event_type": f.types[id], "timestamp": 1732140249123, "received_at": 1732140249123,
				"delivery_count": 0,
				"payload":        map[string]string{"event_type": f.types[id], "secret": "PAYLOAD-" + id},
			})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"events": events})
	case r.Method == http.MethodPost && r.URL.Path == "/ack":
		var body struct {
			EventID string `json:"event_id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("Content-Type") != "application/json" {
			f.envelope(w, http.StatusBadRequest, "invalid_request")
			return
		}
		if f.owner[body.EventID] != tenant {
			f.envelope(w, http.StatusNotFound, "not_found")
			return
		}
		f.acks[body.EventID]++
		q := f.queue[tenant]
		for i, id := range q {
			if id == body.EventID {
				f.queue[tenant] = append(q[:i:i], q[i+1:]...)
				break
			}
		}
		if f.onAck != nil {
			f.onAck(body.EventID)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"acknowledged"}`))
	default:
		f.envelope(w, http.StatusNotFound, "not_found")
	}
}

func (f *fakeInbox) ackCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.acks {
		out[k] = v
	}
	return out
}

func (f *fakeInbox) readSizes(tenant string) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.reads[tenant]...)
}

func (f *fakeInbox) pending(tenant string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queue[tenant]...)
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
