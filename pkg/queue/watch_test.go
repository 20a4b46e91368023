package queue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// fakeStore is an inbox of event visibility times, counting the reads the watcher and pulls
// make. Only the calls a pull makes are implemented.
type fakeStore struct {
	events.Store
	mu      sync.Mutex
	pending []time.Time // when each stored event becomes visible
	leases  int
	checks  int
}

func (s *fakeStore) add(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, at)
}

func (s *fakeStore) reads() (leases, checks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leases, s.checks
}

func (s *fakeStore) Visible(_ context.Context, _ string, _ int, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks++
	for _, at := range s.pending {
		if !at.After(now) {
			return true, nil
		}
	}
	return false, nil
}

func (s *fakeStore) Lease(_ context.Context, q events.LeaseQuery) (events.Leased, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leases++
	var out events.Leased
	kept := s.pending[:0]
	for _, at := range s.pending {
		if len(out.Events) < q.Max && !at.After(q.Now) {
			out.Events = append(out.Events, events.Event{TenantID: q.TenantID, ID: events.NewID(), LeaseID: events.NewLeaseID(), ReceivedAt: at, VisibleAt: q.Now.Add(q.Visibility)})
			continue
		}
		kept = append(kept, at)
	}
	s.pending = kept
	return out, nil
}

// wakes records the watcher's releases by cause.
type wakes struct {
	mu      sync.Mutex
	byCause map[string]int
}

func (w *wakes) record(cause string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.byCause[cause] += n
}

func (w *wakes) of(cause string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byCause[cause]
}

func newTestInbox(store events.Store, backstop time.Duration) (*Inbox, *wakes) {
	q := NewInbox(store, Options{LongPollBackstop: backstop})
	w := &wakes{byCause: map[string]int{}}
	q.watch.woke = w.record
	return q, w
}

var acme = tenant.Principal{TenantID: "acme", Partitions: 1}

type pulled struct {
	n   int
	err error
}

// park starts a long poll and waits until it is parked behind those already waiting.
func park(t *testing.T, q *Inbox, max int) <-chan pulled {
	t.Helper()
	before := q.Waiting(acme.TenantID)
	done := make(chan pulled, 1)
	go func() {
		got, err := q.Pull(context.Background(), acme, PullQuery{Max: max, Visibility: time.Minute, Wait: time.Hour})
		done <- pulled{len(got), err}
	}()
	waitUntil(t, "the pull to park", func() bool { return q.Waiting(acme.TenantID) == before+1 })
	return done
}

// waitUntil polls cond until it holds, failing after ten seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func expect(t *testing.T, done <-chan pulled, n int) {
	t.Helper()
	select {
	case p := <-done:
		if p.err != nil || p.n != n {
			t.Fatalf("pull answered %d events, %v; want %d", p.n, p.err, n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the pull did not answer")
	}
}

// A notice of one event releases one waiting pull, the one that waited longest; the others
// stay parked without a read.
func TestNoticeReleasesOneWaiterPerEvent(t *testing.T) {
	store := &fakeStore{}
	q, w := newTestInbox(store, time.Hour)
	first := park(t, q, 10)
	park(t, q, 10)
	park(t, q, 10)
	if leases, _ := store.reads(); leases != 1 {
		t.Fatalf("%d lease reads to park three pulls, want 1: the inbox was known empty after the first", leases)
	}
	store.add(time.Now())
	q.Notify(Notice{TenantID: "acme", Count: 1, VisibleAt: time.Now()})
	if n := q.Waiting("acme"); n != 2 {
		t.Fatalf("%d pulls still waiting after a notice of one event, want 2", n)
	}
	expect(t, first, 1)
	if leases, checks := store.reads(); leases != 2 || checks != 0 || w.of(causeNotice) != 1 {
		t.Fatalf("leases %d, checks %d, notice wake-ups %d; want 2, 0, 1", leases, checks, w.of(causeNotice))
	}
}

// A pull that leases a full batch releases the next: a notice that undercounts (or was
// coalesced) still empties the inbox.
func TestFullBatchReleasesTheNextWaiter(t *testing.T) {
	store := &fakeStore{}
	q, w := newTestInbox(store, time.Hour)
	polls := []<-chan pulled{park(t, q, 1), park(t, q, 1), park(t, q, 1)}
	for range 3 {
		store.add(time.Now())
	}
	q.Notify(Notice{TenantID: "acme", Count: 1, VisibleAt: time.Now()})
	for _, p := range polls {
		expect(t, p, 1)
	}
	if w.of(causeNotice) != 1 || w.of(causeChain) != 2 {
		t.Fatalf("wake-ups %v, want one by notice and two chained", w.byCause)
	}
}

// Back-to-back long polls of an idle tenant read nothing after the first: the watch outlives
// each poll and remembers the inbox was empty.
func TestBackToBackLongPollsOfAnIdleInboxReadOnce(t *testing.T) {
	store := &fakeStore{}
	q, _ := newTestInbox(store, time.Hour)
	for range 50 {
		got, err := q.Pull(context.Background(), acme, PullQuery{Max: 10, Visibility: time.Minute, Wait: 2 * time.Millisecond})
		if err != nil || len(got) != 0 {
			t.Fatalf("pull: %d events, %v", len(got), err)
		}
	}
	if leases, checks := store.reads(); leases+checks != 1 {
		t.Fatalf("%d leases and %d checks for 50 idle long polls, want one read", leases, checks)
	}
	// A notice ends what the watch knows: the next poll reads.
	store.add(time.Now())
	q.Notify(Notice{TenantID: "acme", Count: 1, VisibleAt: time.Now()})
	got, err := q.Pull(context.Background(), acme, PullQuery{Max: 10, Visibility: time.Minute, Wait: time.Millisecond})
	if err != nil || len(got) != 1 {
		t.Fatalf("pull after a notice: %d events, %v", len(got), err)
	}
}

// A notice of events visible later (a nack's delay, a lease running out) sets a timer; its
// check releases the waiting pull once they are visible.
func TestFutureVisibilitySetsATimer(t *testing.T) {
	store := &fakeStore{}
	q, w := newTestInbox(store, time.Hour)
	done := park(t, q, 10)
	at := time.Now().Add(100 * time.Millisecond)
	store.add(at)
	q.Notify(Notice{TenantID: "acme", Count: 1, VisibleAt: at})
	if q.Waiting("acme") != 1 {
		t.Fatal("a notice of a future visibility released a pull at once")
	}
	expect(t, done, 1)
	if time.Now().Before(at) || w.of(causeTimer) != 1 {
		t.Fatalf("released by %v before %v", w.byCause, at)
	}
}

// An event no notice announced is found by the backstop check.
func TestBackstopFindsALostNotice(t *testing.T) {
	store := &fakeStore{}
	q, w := newTestInbox(store, 200*time.Millisecond)
	done := park(t, q, 10)
	store.add(time.Now())
	expect(t, done, 1)
	if w.of(causeBackstop) != 1 {
		t.Fatalf("wake-ups %v, want one by the backstop", w.byCause)
	}
}

// A known-empty inbox is trusted only for the backstop interval: past it a new poll reads.
func TestKnownEmptyLapsesAfterTheBackstop(t *testing.T) {
	store := &fakeStore{}
	q, _ := newTestInbox(store, 50*time.Millisecond)
	if got, _ := q.Pull(context.Background(), acme, PullQuery{Max: 10, Wait: time.Millisecond}); len(got) != 0 {
		t.Fatal("events from an empty inbox")
	}
	store.add(time.Now())
	start := time.Now()
	got, err := q.Pull(context.Background(), acme, PullQuery{Max: 10, Visibility: time.Minute, Wait: time.Hour})
	if err != nil || len(got) != 1 {
		t.Fatalf("pull: %d events, %v", len(got), err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("found the unannounced event after %v", waited)
	}
}

// Drain answers parked polls at once and makes later ones answer without waiting.
func TestDrainEndsEveryWait(t *testing.T) {
	store := &fakeStore{}
	q, _ := newTestInbox(store, time.Hour)
	done := park(t, q, 10)
	q.Drain()
	expect(t, done, 0)
	got, err := q.Pull(context.Background(), acme, PullQuery{Max: 10, Wait: time.Hour})
	if err != nil || len(got) != 0 {
		t.Fatalf("pull after drain: %d events, %v", len(got), err)
	}
}

// Past maxParkedPerTenant a tenant's next long poll is refused at once, without touching
// another tenant's.
func TestParkedLongPollsAreCappedPerTenant(t *testing.T) {
	w := newWatcher(nil, nil, time.Now, time.Hour, func(string, int) {})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	deadline := time.Now().Add(time.Hour)
	seq, _ := w.look("noisy", 1)
	ended := make(chan error, maxParkedPerTenant)
	for range maxParkedPerTenant {
		go func() { ended <- w.wait(ctx, "noisy", 1, deadline, seq) }()
	}
	for w.waiters("noisy") < maxParkedPerTenant {
		select {
		case err := <-ended:
			t.Fatalf("a poll within the cap ended: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	var rl *tenant.RateLimitedError
	if err := w.wait(ctx, "noisy", 1, deadline, seq); !errors.As(err, &rl) {
		t.Fatalf("a poll past the cap: %v, want a rate-limit answer", err)
	}
	// Already ended: the poll is admitted, then answers its caller's end, not a refusal.
	other, stop := context.WithCancel(ctx)
	stop()
	quiet, _ := w.look("quiet", 1)
	if err := w.wait(other, "quiet", 1, deadline, quiet); !errors.Is(err, context.Canceled) {
		t.Fatalf("another tenant's poll: %v, want it parked until its caller left", err)
	}
	cancel()
	for range maxParkedPerTenant {
		<-ended
	}
}
