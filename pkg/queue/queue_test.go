package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/events"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

// fixture is both use cases over one fresh Events table, on a clock the test moves.
type fixture struct {
	tables    ddb.Tables
	publisher *queue.Publisher
	inbox     *queue.Inbox
	now       time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{tables: shared.Tables(t), now: time.UnixMilli(1_732_140_249_000).UTC()}
	store := eventsdb.New(shared.Client, f.tables)
	opts := queue.Options{Now: func() time.Time { return f.now }}
	f.publisher, f.inbox = queue.NewPublisher(store, opts), queue.NewInbox(store, opts)
	return f
}

func (f *fixture) publish(t *testing.T, p tenant.Principal, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		out, err := f.publisher.Publish(context.Background(), p, []byte(`{"event_type":"a","i":`+strconv.Itoa(i)+`}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = out.Event.ID
		f.now = f.now.Add(time.Millisecond)
	}
	return ids
}

// TestTenantDefaultsGovernDeliveries: a tenant without its own max_deliveries gets the
// default; one with its own is held to it, and the pull that would exceed it buries the event.
func TestTenantDefaultsGovernDeliveries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		own  int
		want int
	}{{"default", 0, tenant.DefaultMaxDeliveries}, {"own-setting", 2, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			p := tenant.Principal{TenantID: "acme", Partitions: 1, MaxDeliveries: tc.own}
			id := f.publish(t, p, 1)[0]
			for n := 1; n <= tc.want; n++ {
				got, err := f.inbox.Pull(context.Background(), p, queue.PullQuery{Max: 1, Visibility: time.Second})
				if err != nil || len(got) != 1 || got[0].ID != id || got[0].DeliveryCount != n {
					t.Fatalf("delivery %d: %+v %v", n, got, err)
				}
				f.now = f.now.Add(2 * time.Second)
			}
			got, err := f.inbox.Pull(context.Background(), p, queue.PullQuery{Max: 1, Visibility: time.Second})
			if err != nil || len(got) != 0 {
				t.Fatalf("pull past the last delivery: %+v %v", got, err)
			}
			dead, err := f.inbox.Dead(context.Background(), p, 10, "")
			if err != nil || len(dead.Events) != 1 || dead.Events[0].ID != id {
				t.Fatalf("dead letters: %+v %v", dead, err)
			}
		})
	}
}

// TestAckExpiresAfterTheTenantsRetention: an acknowledged event's TTL is the tenant's
// retention from the ack, the default where it has none.
func TestAckExpiresAfterTheTenantsRetention(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		days int
		want int
	}{{"default", 0, tenant.DefaultRetentionDays}, {"own-setting", 30, 30}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			p := tenant.Principal{TenantID: "acme", Partitions: 1, RetentionDays: tc.days}
			id := f.publish(t, p, 1)[0]
			out := f.inbox.Ack(context.Background(), p, []queue.Ref{{EventID: id}})
			if out[0].Err != nil {
				t.Fatal(out[0].Err)
			}
			item, err := shared.Client.GetItem(context.Background(), &dynamodb.GetItemInput{
				TableName: aws.String(f.tables.Events), Key: ddb.Item{"tenant_id": ddb.S("acme"), "event_id": ddb.S(id)},
			})
			if err != nil {
				t.Fatal(err)
			}
			want := f.now.Add(time.Duration(tc.want) * 24 * time.Hour).Unix()
			if got := ddb.GetN(item.Item, ddb.EventsTTLAttribute); got != want {
				t.Fatalf("expires_at %d, want %d", got, want)
			}
		})
	}
}

// TestSettleAnswersEachRefInOrder: one call's outcomes come back in the order asked, each
// with its own error, and a malformed id is as absent as an unknown one.
func TestSettleAnswersEachRefInOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := tenant.Principal{TenantID: "acme", Partitions: 1}
	ids := f.publish(t, p, 3)
	leased, err := f.inbox.Pull(context.Background(), p, queue.PullQuery{Max: 1, Visibility: time.Minute})
	if err != nil || len(leased) != 1 || leased[0].ID != ids[0] {
		t.Fatalf("pull: %+v %v", leased, err)
	}
	refs := []queue.Ref{
		{EventID: ids[2]},
		{EventID: "evt_short"},
		{EventID: ids[0], LeaseID: events.NewLeaseID()}, // not the lease that holds it
		{EventID: events.NewID()},
		{EventID: ids[0], LeaseID: leased[0].LeaseID},
	}
	want := []error{nil, events.ErrNotFound, events.ErrLeaseLost, events.ErrNotFound, nil}
	// Two calls, so the right lease acks after the wrong one has been refused.
	out := append(f.inbox.Ack(context.Background(), p, refs[:4]), f.inbox.Ack(context.Background(), p, refs[4:])...)
	for i, o := range out {
		if o.EventID != refs[i].EventID || !errors.Is(o.Err, want[i]) || (want[i] == nil) != (o.Err == nil) {
			t.Errorf("outcome %d: %+v, want %v", i, o, want[i])
		}
	}
	nacked := f.inbox.Nack(context.Background(), p, []queue.Ref{{EventID: ids[1]}}, 10*time.Second)
	if nacked[0].Err != nil || !nacked[0].VisibleAt.Equal(f.now.Add(10*time.Second)) {
		t.Fatalf("nack: %+v", nacked[0])
	}
}

// TestPublishIdempotency: the same key and body replay the original event; the same key
// with another body is a conflict; a batch item's own key works the same way.
func TestPublishIdempotency(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := tenant.Principal{TenantID: "acme", Partitions: 1}
	key := "order-42"
	first, err := f.publisher.Publish(context.Background(), p, []byte(`{"event_type":"a"}`), &key)
	if err != nil || first.Replayed {
		t.Fatalf("first: %+v %v", first, err)
	}
	again, err := f.publisher.Publish(context.Background(), p, []byte(`{"event_type":"a"}`), &key)
	if err != nil || !again.Replayed || again.Event.ID != first.Event.ID {
		t.Fatalf("replay: %+v %v", again, err)
	}
	if _, err := f.publisher.Publish(context.Background(), p, []byte(`{"event_type":"b"}`), &key); !errors.Is(err, events.ErrIdempotencyConflict) {
		t.Fatalf("other body: %v", err)
	}
	items := f.publisher.PublishBatch(context.Background(), p, []json.RawMessage{
		json.RawMessage(`{"event_type":"a","idempotency_key":"k1"}`),
		json.RawMessage(`{"event_type":"a","idempotency_key":"k1"}`),
		json.RawMessage(`{"event_type":"a","idempotency_key":""}`),
		json.RawMessage(`{"no_type":1}`),
		json.RawMessage(`{"event_type":"a"}`),
	})
	var ve *events.ValidationError
	switch {
	case items[0].Err != nil || items[1].Err != nil || items[0].Event.ID != items[1].Event.ID || items[0].Replayed == items[1].Replayed:
		t.Fatalf("keyed items: %+v %+v", items[0], items[1])
	case !errors.As(items[2].Err, &ve) || !errors.As(items[3].Err, &ve):
		t.Fatalf("bad items: %v %v", items[2].Err, items[3].Err)
	case items[4].Err != nil || !events.ValidID(items[4].Event.ID):
		t.Fatalf("plain item: %+v", items[4])
	}
	got, err := f.publisher.Get(context.Background(), p, items[4].Event.ID)
	if err != nil || string(got.Payload) != `{"event_type":"a"}` {
		t.Fatalf("get: %+v %v", got, err)
	}
}

// A payload-bearing read that gets its turn while its tenant owes for work does not read:
// listings, dead-letter pages and pulls answer the debt instead, and lease nothing. Once the
// tenant has paid, they read again.
func TestReadsWaitUntilTheTenantHasPaid(t *testing.T) {
	t.Parallel()
	f := &fixture{tables: shared.Tables(t), now: time.UnixMilli(1_732_140_249_000).UTC()}
	store := eventsdb.New(shared.Client, f.tables)
	owes := true
	debt := &tenant.RateLimitedError{RetryAfter: 2 * time.Second}
	opts := queue.Options{Now: func() time.Time { return f.now }, Paid: func(tenant.Principal) error {
		if owes {
			return debt
		}
		return nil
	}}
	f.publisher, f.inbox = queue.NewPublisher(store, opts), queue.NewInbox(store, opts)
	p := tenant.Principal{TenantID: "acme", Partitions: 1}
	f.publish(t, p, 3)
	ctx := context.Background()
	if _, err := f.inbox.List(ctx, p, queue.ListQuery{Limit: 10}); !errors.Is(err, debt) {
		t.Fatalf("listing while owing: %v, want the debt", err)
	}
	if _, err := f.inbox.Dead(ctx, p, 10, ""); !errors.Is(err, debt) {
		t.Fatalf("dead letters while owing: %v, want the debt", err)
	}
	if got, err := f.inbox.Pull(ctx, p, queue.PullQuery{Max: 3, Visibility: time.Minute}); !errors.Is(err, debt) || len(got) != 0 {
		t.Fatalf("pull while owing: %d events, %v; want none and the debt", len(got), err)
	}
	owes = false
	page, err := f.inbox.List(ctx, p, queue.ListQuery{Limit: 10})
	if err != nil || len(page.Events) != 3 {
		t.Fatalf("listing once paid: %d events, %v; want the 3, none leased by the refused pull", len(page.Events), err)
	}
	if got, err := f.inbox.Pull(ctx, p, queue.PullQuery{Max: 3, Visibility: time.Minute}); err != nil || len(got) != 3 {
		t.Fatalf("pull once paid: %d events, %v", len(got), err)
	}
}

// deadQueries is the real store, recording each dead-letter query it is asked.
type deadQueries struct {
	events.Store
	mu   sync.Mutex
	seen []events.DeadQuery
}

func (s *deadQueries) Dead(ctx context.Context, q events.DeadQuery) (events.InboxPage, error) {
	s.mu.Lock()
	s.seen = append(s.seen, q)
	s.mu.Unlock()
	return s.Store.Dead(ctx, q)
}

// TestRedriveAllReadsNoPayload: redriving every dead letter asks only for their ids, so it
// reads no payload it would throw away, and it still moves them all.
func TestRedriveAllReadsNoPayload(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	store := &deadQueries{Store: eventsdb.New(shared.Client, f.tables)}
	opts := queue.Options{Now: func() time.Time { return f.now }}
	inbox := queue.NewInbox(store, opts)
	p := tenant.Principal{TenantID: "acme", Partitions: 1, MaxDeliveries: 1}
	ids := f.publish(t, p, 3)
	ctx := context.Background()
	if got, err := inbox.Pull(ctx, p, queue.PullQuery{Max: 10, Visibility: time.Second}); err != nil || len(got) != len(ids) {
		t.Fatalf("first delivery: %d events, %v", len(got), err)
	}
	f.now = f.now.Add(2 * time.Second)
	if got, err := inbox.Pull(ctx, p, queue.PullQuery{Max: 10, Visibility: time.Second}); err != nil || len(got) != 0 {
		t.Fatalf("the pull past max_deliveries: %d events, %v", len(got), err)
	}
	n, more, err := inbox.RedriveAll(ctx, p)
	if err != nil || n != len(ids) || more {
		t.Fatalf("redrive all: %d moved, more %v, %v; want %d", n, more, err, len(ids))
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.seen) == 0 {
		t.Fatal("redrive all never listed the dead letters")
	}
	for _, q := range store.seen {
		if !q.IDsOnly {
			t.Fatalf("redrive all asked for whole dead letters: %+v", q)
		}
	}
}

// TestHeldReadsKeepTheirTurnsUntilReleased: a listing that answered events under HoldReads keeps
// its tenant's read turn until the answer is written and released, so answers on their way to
// slow clients count against the gate; a listing that answered nothing keeps no turn.
func TestHeldReadsKeepTheirTurnsUntilReleased(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	busy, quiet := tenant.Principal{TenantID: "busy", Partitions: 1}, tenant.Principal{TenantID: "quiet", Partitions: 1}
	f.publish(t, busy, 1)
	// A listing that finds its tenant's turns all kept waits the gate's own queue time (5 s),
	// then is refused; the caller's deadline is far beyond it, so a slow read is never taken
	// for a refusal.
	list := func(p tenant.Principal, held context.Context) (queue.Page, error) {
		ctx, cancel := context.WithTimeout(held, 30*time.Second)
		defer cancel()
		return f.inbox.List(ctx, p, queue.ListQuery{Limit: 10})
	}
	var releases []func()
	defer func() {
		for _, r := range releases {
			r()
		}
	}()
	for range 10 {
		held, release := queue.HoldReads(context.Background())
		releases = append(releases, release)
		if page, err := list(quiet, held); err != nil || len(page.Events) != 0 {
			t.Fatalf("an empty listing: %d events, %v", len(page.Events), err)
		}
	}
	var rl *tenant.RateLimitedError
	refused := -1
	for i := range 10 {
		held, release := queue.HoldReads(context.Background())
		releases = append(releases, release)
		page, err := list(busy, held)
		if errors.As(err, &rl) {
			refused = i
			break
		}
		if err != nil || len(page.Events) != 1 {
			t.Fatalf("listing %d: %d events, %v", i, len(page.Events), err)
		}
	}
	if refused < 1 {
		t.Fatalf("listings whose answers were never released: refused at %d, want some held first and then a refusal", refused)
	}
	releases[len(releases)-2]() // an answer written: its turn comes back
	held, release := queue.HoldReads(context.Background())
	defer release()
	if page, err := list(busy, held); err != nil || len(page.Events) != 1 {
		t.Fatalf("a listing after an answer was released: %d events, %v", len(page.Events), err)
	}
}
