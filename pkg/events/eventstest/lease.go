package eventstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/events"
)

func lease(t *testing.T, s events.Store, tenantID string, partitions, n int, vis time.Duration, maxDeliveries int, now time.Time) []events.Event {
	t.Helper()
	return leaseAll(t, s, tenantID, partitions, n, vis, maxDeliveries, now).Events
}

// leaseAll is lease with what the call buried too.
func leaseAll(t *testing.T, s events.Store, tenantID string, partitions, n int, vis time.Duration, maxDeliveries int, now time.Time) events.Leased {
	t.Helper()
	got, err := s.Lease(context.Background(), events.LeaseQuery{
		TenantID: tenantID, Partitions: partitions, Max: n, Visibility: vis, MaxDeliveries: maxDeliveries, Now: now,
	})
	if err != nil {
		t.Fatalf("lease: %v", err)
	}
	for _, e := range got.Events {
		if !events.ValidLeaseID(e.LeaseID) || e.Status != events.StatusUndelivered || len(e.Payload) == 0 {
			t.Fatalf("leased event %+v", e)
		}
	}
	return got
}

func idsOf(es []events.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func leaseOrder(t *testing.T, s events.Store, partitions int) {
	var want []string
	for i := range 9 {
		want = append(want, put(t, s, "acme", "a", partitions, base.Add(time.Duration(i)*time.Millisecond)).ID)
	}
	now := base.Add(time.Minute)
	first := lease(t, s, "acme", partitions, 4, time.Minute, 10, now)
	second := lease(t, s, "acme", partitions, 10, time.Minute, 10, now)
	if fmt.Sprint(idsOf(first)) != fmt.Sprint(want[:4]) || fmt.Sprint(idsOf(second)) != fmt.Sprint(want[4:]) {
		t.Fatalf("leases %v then %v, want %v", idsOf(first), idsOf(second), want)
	}
	for _, e := range append(first, second...) {
		if e.DeliveryCount != 1 || !e.VisibleAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("leased %+v", e)
		}
	}
	if more := lease(t, s, "acme", partitions, 10, time.Minute, 10, now); len(more) != 0 {
		t.Fatalf("leased held events again: %v", idsOf(more))
	}
	page, err := s.Inbox(context.Background(), events.InboxQuery{TenantID: "acme", Partitions: partitions, Limit: 100, Now: now})
	if err != nil || len(page.Events) != 0 {
		t.Fatalf("leased events still listed: %d %v", len(page.Events), err)
	}
}

func leaseExpiry(t *testing.T, s events.Store) {
	ctx := context.Background()
	e := put(t, s, "acme", "a", 1, base)
	first := lease(t, s, "acme", 1, 1, 30*time.Second, 10, base)
	if len(first) != 1 {
		t.Fatal("nothing leased")
	}
	if got := lease(t, s, "acme", 1, 1, 30*time.Second, 10, base.Add(29*time.Second)); len(got) != 0 {
		t.Fatal("leased while the first lease held")
	}
	// The first puller died: after the visibility timeout the event comes back.
	second := lease(t, s, "acme", 1, 1, 30*time.Second, 10, base.Add(31*time.Second))
	if len(second) != 1 || second[0].ID != e.ID || second[0].DeliveryCount != 2 || second[0].LeaseID == first[0].LeaseID {
		t.Fatalf("redelivery %+v", second)
	}
	at := base.Add(32 * time.Second)
	if _, _, err := s.Ack(ctx, "acme", e.ID, first[0].LeaseID, at, at.Add(time.Hour)); !errors.Is(err, events.ErrLeaseLost) {
		t.Fatalf("ack with the lost lease: %v", err)
	}
	if _, already, err := s.Ack(ctx, "acme", e.ID, second[0].LeaseID, at, at.Add(time.Hour)); err != nil || already {
		t.Fatalf("ack with the holding lease: %v %v", already, err)
	}
	if _, already, err := s.Ack(ctx, "acme", e.ID, second[0].LeaseID, at, at.Add(time.Hour)); err != nil || !already {
		t.Fatalf("repeated ack: %v %v", already, err)
	}
	if _, _, err := s.Ack(ctx, "acme", e.ID, first[0].LeaseID, at, at.Add(time.Hour)); !errors.Is(err, events.ErrLeaseLost) {
		t.Fatalf("late ack with the lost lease: %v", err)
	}
	if _, _, err := s.Ack(ctx, "acme", e.ID, events.NewLeaseID(), at, at.Add(time.Hour)); !errors.Is(err, events.ErrLeaseLost) {
		t.Fatalf("ack with a made-up lease: %v", err)
	}
}

func leaseExtend(t *testing.T, s events.Store) {
	ctx := context.Background()
	e := put(t, s, "acme", "a", 1, base)
	held := lease(t, s, "acme", 1, 1, 30*time.Second, 10, base)
	if len(held) != 1 {
		t.Fatal("nothing leased")
	}
	got, err := s.Extend(ctx, "acme", e.ID, held[0].LeaseID, base.Add(2*time.Minute), base.Add(10*time.Second))
	if err != nil || !got.VisibleAt.Equal(base.Add(2*time.Minute)) {
		t.Fatalf("extend: %+v %v", got, err)
	}
	if again := lease(t, s, "acme", 1, 1, 30*time.Second, 10, base.Add(time.Minute)); len(again) != 0 {
		t.Fatal("leased during an extended lease")
	}
	if _, err := s.Extend(ctx, "acme", e.ID, events.NewLeaseID(), base.Add(time.Hour), base); !errors.Is(err, events.ErrLeaseLost) {
		t.Fatalf("extend with another lease: %v", err)
	}
	if _, err := s.Extend(ctx, "globex", e.ID, held[0].LeaseID, base.Add(time.Hour), base); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("extend by another tenant: %v", err)
	}
	if again := lease(t, s, "acme", 1, 1, 30*time.Second, 10, base.Add(121*time.Second)); len(again) != 1 {
		t.Fatal("not leasable after the extension ran out")
	}
}

func nackDelay(t *testing.T, s events.Store) {
	ctx := context.Background()
	e := put(t, s, "acme", "a", 1, base)
	held := lease(t, s, "acme", 1, 1, time.Minute, 10, base)
	if err := s.Nack(ctx, "acme", e.ID, held[0].LeaseID, base.Add(10*time.Second), base); err != nil {
		t.Fatalf("nack: %v", err)
	}
	// A nack repeated under the lease it dropped (a retry whose first answer was lost) answers
	// as the first did, and changes nothing.
	if err := s.Nack(ctx, "acme", e.ID, held[0].LeaseID, base, base); err != nil {
		t.Fatalf("second nack with the dropped lease: %v", err)
	}
	if got := lease(t, s, "acme", 1, 1, time.Minute, 10, base.Add(5*time.Second)); len(got) != 0 {
		t.Fatal("leased before the nack delay passed")
	}
	if err := s.Nack(ctx, "acme", e.ID, events.NewLeaseID(), base, base); !errors.Is(err, events.ErrLeaseLost) {
		t.Fatalf("nack with a lease that never held it: %v", err)
	}
	again := lease(t, s, "acme", 1, 1, time.Minute, 10, base.Add(11*time.Second))
	if len(again) != 1 || again[0].DeliveryCount != 2 {
		t.Fatalf("after the delay: %+v", again)
	}
	if _, _, err := s.Ack(ctx, "acme", e.ID, again[0].LeaseID, base, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Nack(ctx, "acme", e.ID, "", base, base); !errors.Is(err, events.ErrSettled) {
		t.Fatalf("nack of an acknowledged event: %v", err)
	}
	if err := s.Nack(ctx, "globex", e.ID, "", base, base); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("nack by another tenant: %v", err)
	}
}

// leaseRelease: a released lease gives its event back at once with the delivery it counted,
// once; a lease that does not hold the event releases nothing.
func leaseRelease(t *testing.T, s events.Store) {
	ctx := context.Background()
	e := put(t, s, "acme", "a", 1, base)
	held := lease(t, s, "acme", 1, 1, time.Hour, 10, base)
	if len(held) != 1 || held[0].DeliveryCount != 1 {
		t.Fatalf("leased %+v", held)
	}
	if err := s.Release(ctx, "acme", e.ID, events.NewLeaseID(), base); !errors.Is(err, events.ErrLeaseLost) {
		t.Fatalf("release under a lease that never held it: %v", err)
	}
	for i := range 2 { // the second is a retry of the first
		if err := s.Release(ctx, "acme", e.ID, held[0].LeaseID, base.Add(time.Second)); err != nil {
			t.Fatalf("release %d: %v", i+1, err)
		}
	}
	got, err := s.Get(ctx, "acme", e.ID, base.Add(time.Second))
	if err != nil || got.DeliveryCount != 0 || got.LeaseID != "" || got.VisibleAt.After(base.Add(time.Second)) {
		t.Fatalf("after release: %+v, %v", got, err)
	}
	again := lease(t, s, "acme", 1, 1, time.Hour, 10, base.Add(time.Second))
	if len(again) != 1 || again[0].DeliveryCount != 1 {
		t.Fatalf("leased again after release: %+v", again)
	}
	if err := s.Release(ctx, "globex", e.ID, again[0].LeaseID, base); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("release by another tenant: %v", err)
	}
}

func deadLetters(t *testing.T, s events.Store) {
	ctx := context.Background()
	e := put(t, s, "acme", "a", 1, base)
	now := base
	for n := 1; n <= 2; n++ {
		got := lease(t, s, "acme", 1, 1, time.Second, 2, now)
		if len(got) != 1 || got[0].ID != e.ID || got[0].DeliveryCount != n {
			t.Fatalf("delivery %d: %+v", n, got)
		}
		now = now.Add(2 * time.Second)
	}
	keep := put(t, s, "acme", "a", 1, now) // younger than e's last lease expiry
	// The third lease would exceed max_deliveries 2: the event dies and the next one is leased.
	got := leaseAll(t, s, "acme", 1, 1, time.Second, 2, now)
	if len(got.Events) != 1 || got.Events[0].ID != keep.ID || len(got.Buried) != 1 || got.Buried[0] != e.ID {
		t.Fatalf("after burial leased %v, buried %v", idsOf(got.Events), got.Buried)
	}
	dead, err := s.Get(ctx, "acme", e.ID, now)
	if err != nil || dead.Status != events.StatusDead || dead.DeadAt.IsZero() {
		t.Fatalf("buried: %+v %v", dead, err)
	}
	page, err := s.Dead(ctx, events.DeadQuery{TenantID: "acme", Limit: 10, Now: now})
	if err != nil || len(page.Events) != 1 || page.Events[0].ID != e.ID {
		t.Fatalf("dead list: %+v %v", page, err)
	}
	if other, _ := s.Dead(ctx, events.DeadQuery{TenantID: "globex", Limit: 10, Now: now}); len(other.Events) != 0 {
		t.Fatal("another tenant sees the dead letter")
	}
	if err := s.Redrive(ctx, "globex", e.ID, now); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("redrive by another tenant: %v", err)
	}
	if err := s.Redrive(ctx, "acme", keep.ID, now); !errors.Is(err, events.ErrNotDead) {
		t.Fatalf("redrive of a live event: %v", err)
	}
	if err := s.Redrive(ctx, "acme", e.ID, now); err != nil {
		t.Fatalf("redrive: %v", err)
	}
	back := lease(t, s, "acme", 1, 1, time.Second, 2, now)
	if len(back) != 1 || back[0].ID != e.ID || back[0].DeliveryCount != 1 {
		t.Fatalf("after redrive: %+v", back)
	}
	if page, _ := s.Dead(ctx, events.DeadQuery{TenantID: "acme", Limit: 10, Now: now}); len(page.Events) != 0 {
		t.Fatal("redriven event still listed as dead")
	}
}

func idempotentPut(t *testing.T, s events.Store) {
	ctx := context.Background()
	idem := events.Idempotency{KeyHash: "k1", Fingerprint: "body-a", ExpiresAt: base.Add(24 * time.Hour)}
	first := events.New("acme", "a", []byte(`{"event_type":"a"}`), 1, base)
	got, replayed, err := s.PutOnce(ctx, first, idem, base)
	if err != nil || replayed || got.ID != first.ID {
		t.Fatalf("first put: %+v %v %v", got, replayed, err)
	}
	again := events.New("acme", "a", []byte(`{"event_type":"a"}`), 1, base.Add(time.Second))
	got, replayed, err = s.PutOnce(ctx, again, idem, base.Add(time.Second))
	if err != nil || !replayed || got.ID != first.ID || !got.ReceivedAt.Equal(first.ReceivedAt) {
		t.Fatalf("replay: %+v %v %v", got, replayed, err)
	}
	if _, err := s.Get(ctx, "acme", again.ID, base); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("a replay stored a second event: %v", err)
	}
	conflict := idem
	conflict.Fingerprint = "body-b"
	if _, _, err := s.PutOnce(ctx, events.New("acme", "a", []byte(`{"event_type":"b"}`), 1, base), conflict, base); !errors.Is(err, events.ErrIdempotencyConflict) {
		t.Fatalf("different body: %v", err)
	}
	// The same key is another tenant's own key.
	other := events.New("globex", "a", []byte(`{"event_type":"a"}`), 1, base)
	if got, replayed, err := s.PutOnce(ctx, other, idem, base); err != nil || replayed || got.ID != other.ID {
		t.Fatalf("other tenant: %+v %v %v", got, replayed, err)
	}
	// Past its expiry the key is free again.
	late := events.New("acme", "a", []byte(`{"event_type":"a"}`), 1, base.Add(25*time.Hour))
	lateIdem := idem
	lateIdem.ExpiresAt = base.Add(49 * time.Hour)
	if got, replayed, err := s.PutOnce(ctx, late, lateIdem, base.Add(25*time.Hour)); err != nil || replayed || got.ID != late.ID {
		t.Fatalf("after expiry: %+v %v %v", got, replayed, err)
	}

	// Twenty concurrent requests with one key create exactly one event.
	race := events.Idempotency{KeyHash: "race", Fingerprint: "same", ExpiresAt: base.Add(time.Hour)}
	var mu sync.Mutex
	ids := map[string]int{}
	created := 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := events.New("race", "a", []byte(`{"event_type":"a"}`), 1, base)
			got, replayed, err := s.PutOnce(ctx, e, race, base)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("racing put: %v", err)
				return
			}
			ids[got.ID]++
			if !replayed {
				created++
			}
		}()
	}
	wg.Wait()
	page, err := s.Inbox(ctx, events.InboxQuery{TenantID: "race", Partitions: 1, Limit: 100, Now: base})
	if err != nil || created != 1 || len(ids) != 1 || len(page.Events) != 1 {
		t.Fatalf("race: created %d, ids %v, stored %d (%v)", created, ids, len(page.Events), err)
	}
}

func putMany(t *testing.T, s events.Store) {
	ctx := context.Background()
	var es []events.Event
	for i := range 60 {
		es = append(es, events.New("acme", "a", []byte(`{"event_type":"a"}`), 1, base.Add(time.Duration(i)*time.Millisecond)))
	}
	for i, err := range s.PutMany(ctx, es) {
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	page, err := s.Inbox(ctx, events.InboxQuery{TenantID: "acme", Partitions: 1, Limit: 100, Now: base.Add(time.Minute)})
	if err != nil || len(page.Events) != 60 || page.Events[0].ID != es[0].ID || page.Events[59].ID != es[59].ID {
		t.Fatalf("stored %d events (%v)", len(page.Events), err)
	}
}

// ConcurrentPullers has k pullers lease and acknowledge m events and checks every event was
// leased and acknowledged exactly once. It is exported so adapters can run it at a size that
// suits them.
func ConcurrentPullers(t *testing.T, s events.Store, k, m int) {
	ctx := context.Background()
	es := make([]events.Event, m)
	for i := range es {
		es[i] = events.New("busy", "a", []byte(`{"event_type":"a"}`), 4, base.Add(time.Duration(i)*time.Microsecond))
	}
	for i, err := range s.PutMany(ctx, es) {
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	now := base.Add(time.Minute)
	var mu sync.Mutex
	leases := map[string]int{}
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				leased, err := s.Lease(ctx, events.LeaseQuery{TenantID: "busy", Partitions: 4, Max: 10, Visibility: time.Hour, MaxDeliveries: 10, Now: now})
				got := leased.Events
				if err != nil {
					t.Errorf("lease: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				for _, e := range got {
					mu.Lock()
					leases[e.ID]++
					mu.Unlock()
					if _, already, err := s.Ack(ctx, "busy", e.ID, e.LeaseID, now, now.Add(time.Hour)); err != nil || already {
						t.Errorf("ack %s: already=%v err=%v", e.ID, already, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(leases) != m {
		t.Fatalf("%d of %d events leased", len(leases), m)
	}
	for id, n := range leases {
		if n != 1 {
			t.Fatalf("event %s leased %d times", id, n)
		}
	}
	if left, err := s.Visible(ctx, "busy", 4, now.Add(2*time.Hour)); err != nil || left {
		t.Fatalf("events left in the inbox: %v %v", left, err)
	}
}
