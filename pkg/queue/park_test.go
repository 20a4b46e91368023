package queue

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/events"
)

// fakeParking is a caller a pull can park: answers go to a channel, gone is set by the test.
type fakeParking struct {
	gone     atomic.Bool
	answers  chan pulled
	caller   chan struct{} // closed once PullOrPark returned to the caller
	early    atomic.Bool   // an answer came before the caller's goroutine returned
	abandons atomic.Int32
}

func newFakeParking() *fakeParking {
	return &fakeParking{answers: make(chan pulled, 1), caller: make(chan struct{})}
}

func (f *fakeParking) Park() bool { return true }
func (f *fakeParking) Gone() bool { return f.gone.Load() }
func (f *fakeParking) Abandon()   { f.abandons.Add(1) }
func (f *fakeParking) Answer(got []events.Event, err error) {
	select {
	case <-f.caller:
	default:
		f.early.Store(true)
	}
	f.answers <- pulled{len(got), err}
}

// parkPull starts a long poll that parks through f and waits until it is queued.
func parkPull(t *testing.T, q *Inbox, f *fakeParking, wait time.Duration) {
	t.Helper()
	before := q.Waiting(acme.TenantID)
	got, parked, err := q.PullOrPark(context.Background(), acme, PullQuery{Max: 1, Visibility: time.Minute, Wait: wait}, f)
	close(f.caller)
	if !parked || got != nil || err != nil {
		t.Fatalf("PullOrPark: %d events, parked %v, %v; want parked", len(got), parked, err)
	}
	waitUntil(t, "the pull to park", func() bool { return q.Waiting(acme.TenantID) >= before+1 })
}

// Parked pulls are answered through their parking: with the event a notice announced, with
// nothing when their wait or the process's drain ends, never in the caller's goroutine.
func TestParkedPullsAnswerThroughTheirParking(t *testing.T) {
	store := &fakeStore{}
	q, _ := newTestInbox(store, time.Hour)
	first, second, short := newFakeParking(), newFakeParking(), newFakeParking()
	parkPull(t, q, first, time.Hour)
	parkPull(t, q, second, time.Hour)
	parkPull(t, q, short, 50*time.Millisecond)
	expect(t, short.answers, 0)

	store.add(time.Now())
	q.Notify(Notice{TenantID: acme.TenantID, Count: 1, VisibleAt: time.Now()})
	expect(t, first.answers, 1)
	// A full batch released the next poll, which found nothing and parked again.
	waitUntil(t, "the next poll to park again", func() bool { return q.Waiting(acme.TenantID) == 1 })

	q.Drain()
	expect(t, second.answers, 0)
	for _, f := range []*fakeParking{first, second, short} {
		if f.early.Load() {
			t.Fatal("a parked pull was answered in its caller's goroutine")
		}
	}
}

// A release for a caller that has gone leases nothing for it: the next waiting pull gets the
// event.
func TestParkedPullOfGoneCallerPassesItsReleaseOn(t *testing.T) {
	store := &fakeStore{}
	q, _ := newTestInbox(store, time.Hour)
	gone, next := newFakeParking(), newFakeParking()
	parkPull(t, q, gone, time.Hour)
	parkPull(t, q, next, time.Hour)
	gone.gone.Store(true)
	before, _ := store.reads()

	store.add(time.Now())
	q.Notify(Notice{TenantID: acme.TenantID, Count: 1, VisibleAt: time.Now()})
	expect(t, next.answers, 1)
	if leases, _ := store.reads(); gone.abandons.Load() != 1 || leases-before != 1 {
		t.Fatalf("abandons %d, leases %d: want the gone caller let go and one lease, the next poll's", gone.abandons.Load(), leases-before)
	}
	if len(gone.answers) != 0 {
		t.Fatal("the gone caller was answered")
	}
}
