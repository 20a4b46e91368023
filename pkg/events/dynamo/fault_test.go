package dynamo_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddbfault"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/storage"
)

// faulty is a store whose calls pass a fault proxy, and a store on the same tables that
// reaches DynamoDB directly, to look at or change what the proxied calls did.
type faulty struct {
	store, direct *dynamo.Store
	proxy         *ddbfault.Proxy
}

func newFaulty(t *testing.T, s ddb.Settings) faulty {
	t.Helper()
	p, err := ddbfault.Start(shared.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	s.Endpoint = p.URL()
	client, err := ddblocal.ClientWith(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	tables := shared.Tables(t)
	return faulty{store: dynamo.New(client, tables), direct: dynamo.New(shared.Client, tables), proxy: p}
}

// applyThenDrop makes the first call of op whose body holds marker reach DynamoDB and lose
// its answer, so the SDK sends it again and the retry meets its own write.
func (f faulty) applyThenDrop(op, marker string) {
	f.proxy.Add(ddbfault.Rule{Op: op, Kind: ddbfault.ApplyThenDrop, Times: 1,
		Match: func(b []byte) bool { return bytes.Contains(b, []byte(marker)) }})
}

func (f faulty) wantDropped(t *testing.T, op string) {
	t.Helper()
	if n := f.proxy.Acted(op, ddbfault.ApplyThenDrop); n != 1 {
		t.Fatalf("%s answers dropped: %d, want 1 (the fault never happened)", op, n)
	}
}

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func putOne(t *testing.T, s *dynamo.Store, at time.Time) events.Event {
	t.Helper()
	e := events.New("acme", "a", []byte(`{"event_type":"a"}`), 1, at)
	if err := s.Put(context.Background(), e); err != nil {
		t.Fatalf("put: %v", err)
	}
	return e
}

func leaseOne(t *testing.T, s *dynamo.Store, now time.Time, maxDeliveries int) events.Leased {
	t.Helper()
	got, err := s.Lease(context.Background(), events.LeaseQuery{TenantID: "acme", Partitions: 1, Max: 1,
		Visibility: time.Hour, MaxDeliveries: maxDeliveries, Now: now})
	if err != nil {
		t.Fatalf("lease: %v", err)
	}
	return got
}

// A lease whose answer was lost is the caller's lease: with max_deliveries 1 the event must
// be handed out, not hidden under a lease nobody holds and then buried unprocessed.
func TestLeaseRetryMeetsItsOwnWrite(t *testing.T) {
	t.Parallel()
	f := newFaulty(t, ddb.Settings{})
	e := putOne(t, f.direct, t0)
	f.applyThenDrop("UpdateItem", "delivery_count + :one")
	got := leaseOne(t, f.store, t0, 1)
	f.wantDropped(t, "UpdateItem")
	if len(got.Events) != 1 || got.Events[0].ID != e.ID || got.Events[0].DeliveryCount != 1 || len(got.Buried) != 0 {
		t.Fatalf("leased %+v, buried %v; want the event under the retried lease", got.Events, got.Buried)
	}
	// The lease handed out is the one the event holds: it can be acknowledged.
	if _, already, err := f.direct.Ack(context.Background(), "acme", e.ID, got.Events[0].LeaseID, t0, t0.Add(time.Hour)); err != nil || already {
		t.Fatalf("ack under the retried lease: already %v, %v", already, err)
	}
}

// A put whose answer was lost stored the event: the retry is a success, not a 500 that makes
// the producer send it again.
func TestPutRetryMeetsItsOwnWrite(t *testing.T) {
	t.Parallel()
	f := newFaulty(t, ddb.Settings{})
	f.applyThenDrop("PutItem", "event_id")
	e := putOne(t, f.store, t0)
	f.wantDropped(t, "PutItem")
	if got, err := f.direct.Get(context.Background(), "acme", e.ID, t0); err != nil || got.ID != e.ID {
		t.Fatalf("stored: %+v, %v", got, err)
	}
}

func TestIdempotentPutRetryMeetsItsOwnWrite(t *testing.T) {
	t.Parallel()
	f := newFaulty(t, ddb.Settings{})
	f.applyThenDrop("TransactWriteItems", "idem#")
	e := events.New("acme", "a", []byte(`{"event_type":"a"}`), 1, t0)
	idem := events.Idempotency{KeyHash: "k1", Fingerprint: "f1", ExpiresAt: t0.Add(time.Hour)}
	got, replayed, err := f.store.PutOnce(context.Background(), e, idem, t0)
	f.wantDropped(t, "TransactWriteItems")
	if err != nil || replayed || got.ID != e.ID {
		t.Fatalf("put once: %+v replayed %v, %v; want this request's event, not a replay", got, replayed, err)
	}
}

// A batch's write whose answer was lost must not be written again over what happened to its
// event in between: here the event is acknowledged before the retry lands.
func TestBatchRetryNeverOverwritesALaterState(t *testing.T) {
	t.Parallel()
	f := newFaulty(t, ddb.Settings{})
	e := events.New("acme", "a", []byte(`{"event_type":"a"}`), 1, t0)
	f.applyThenDrop("PutItem", e.ID)
	// The retry of that write waits until the test lets it go.
	f.proxy.Add(ddbfault.Rule{Op: "PutItem", Kind: ddbfault.Stall, Times: 1,
		Match: func(b []byte) bool { return bytes.Contains(b, []byte(e.ID)) }})
	done := make(chan []error, 1)
	go func() { done <- f.store.PutMany(context.Background(), []events.Event{e}) }()
	waitFor(t, "the retry to stall", func() bool { return f.proxy.Acted("PutItem", ddbfault.Stall) == 1 })
	if _, _, err := f.direct.Ack(context.Background(), "acme", e.ID, "", t0, t0.Add(time.Hour)); err != nil {
		t.Fatalf("ack between the attempts: %v", err)
	}
	f.proxy.Release()
	if errs := <-done; errs[0] != nil {
		t.Fatalf("put many: %v", errs[0])
	}
	f.wantDropped(t, "PutItem")
	if got, err := f.direct.Get(context.Background(), "acme", e.ID, t0); err != nil || got.Status != events.StatusDelivered {
		t.Fatalf("after the retry: %+v, %v; want it still delivered", got, err)
	}
}

// Settling calls retried after their own write answer as the first attempt would have.
func TestSettleRetriesMeetTheirOwnWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFaulty(t, ddb.Settings{})
	e := putOne(t, f.direct, t0)
	held := leaseOne(t, f.direct, t0, 10).Events[0]

	f.applyThenDrop("UpdateItem", "inbox_sk = :newsk\"") // extend's update ends with it
	if _, err := f.store.Extend(ctx, "acme", e.ID, held.LeaseID, t0.Add(2*time.Hour), t0); err != nil {
		t.Fatalf("extend: %v", err)
	}
	f.wantDropped(t, "UpdateItem")

	// Put back a minute on: the direct store's claim on the entry it leased from stays with it.
	back := t0.Add(time.Minute)
	f.applyThenDrop("UpdateItem", ":visible")
	if err := f.store.Nack(ctx, "acme", e.ID, held.LeaseID, back, t0); err != nil {
		t.Fatalf("nack: %v", err)
	}
	again := leaseOne(t, f.direct, back, 10)
	if len(again.Events) != 1 {
		t.Fatalf("lease after the nack: %+v, want the event", again)
	}
	held = again.Events[0]

	f.applyThenDrop("UpdateItem", ":delivered")
	if _, _, err := f.store.Ack(ctx, "acme", e.ID, held.LeaseID, t0, t0.Add(time.Hour)); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if n := f.proxy.Acted("UpdateItem", ddbfault.ApplyThenDrop); n != 3 {
		t.Fatalf("dropped answers: %d, want 3", n)
	}
}

func TestRedriveAndReleaseRetriesMeetTheirOwnWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFaulty(t, ddb.Settings{})
	e := putOne(t, f.direct, t0)
	held := leaseOne(t, f.direct, t0, 10).Events[0]
	// Released a minute on: the direct store's claim on the entry it leased from stays with it.
	back := t0.Add(time.Minute)
	f.applyThenDrop("UpdateItem", "released_lease")
	if err := f.store.Release(ctx, "acme", e.ID, held.LeaseID, back); err != nil {
		t.Fatalf("release: %v", err)
	}
	f.wantDropped(t, "UpdateItem")

	if got := leaseOne(t, f.direct, back, 1); len(got.Events) != 1 || got.Events[0].DeliveryCount != 1 {
		t.Fatalf("lease after the release: %+v, want the event at its first delivery", got)
	}
	if got := leaseOne(t, f.direct, t0.Add(2*time.Hour), 1); len(got.Buried) != 1 {
		t.Fatalf("bury: %+v", got)
	}
	f.applyThenDrop("UpdateItem", "redriven_at")
	if err := f.store.Redrive(ctx, "acme", e.ID, t0.Add(3*time.Hour)); err != nil {
		t.Fatalf("redrive: %v", err)
	}
	if n := f.proxy.Acted("UpdateItem", ddbfault.ApplyThenDrop); n != 2 {
		t.Fatalf("dropped answers: %d, want 2", n)
	}
}

// One stalled connection costs one attempt, not the request's whole budget: the SDK gives up
// on it and the retry on a fresh connection succeeds.
func TestStalledAttemptIsAbandonedAndRetried(t *testing.T) {
	t.Parallel()
	f := newFaulty(t, ddb.Settings{AttemptTimeout: 300 * time.Millisecond})
	f.proxy.Add(ddbfault.Rule{Op: "PutItem", Kind: ddbfault.Stall, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := events.New("acme", "a", []byte(`{"event_type":"a"}`), 1, t0)
	if err := f.store.Put(ctx, e); err != nil {
		t.Fatalf("put past a stalled attempt: %v", err)
	}
	if n := f.proxy.Acted("PutItem", ddbfault.Stall); n != 1 {
		t.Fatalf("stalled attempts: %d, want 1", n)
	}
}

// A budget that runs out while DynamoDB stalls is unavailability (503), never a bare deadline
// error that the HTTP layer would call internal.
func TestStallPastTheBudgetIsUnavailable(t *testing.T) {
	t.Parallel()
	f := newFaulty(t, ddb.Settings{})
	f.proxy.Add(ddbfault.Rule{Kind: ddbfault.Stall})
	defer f.proxy.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := f.store.Get(ctx, "acme", events.NewID(), t0)
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("get during a stall: %v, want ErrUnavailable", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
