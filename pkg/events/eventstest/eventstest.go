// Package eventstest is the conformance suite every events.Store must pass.
package eventstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/events"
)

// Run exercises store behaviour that callers rely on. newStore returns an empty store.
func Run(t *testing.T, newStore func(t *testing.T) events.Store) {
	t.Run("put-get-exact-payload", func(t *testing.T) { t.Parallel(); putGet(t, newStore(t)) })
	t.Run("get-other-tenant-not-found", func(t *testing.T) { t.Parallel(); otherTenant(t, newStore(t)) })
	t.Run("ack-lifecycle", func(t *testing.T) { t.Parallel(); ackLifecycle(t, newStore(t)) })
	t.Run("inbox-order-and-pages-p1", func(t *testing.T) { t.Parallel(); inboxPages(t, newStore(t), 1) })
	t.Run("inbox-order-and-pages-p4", func(t *testing.T) { t.Parallel(); inboxPages(t, newStore(t), 4) })
	t.Run("inbox-type-filter-sparse", func(t *testing.T) { t.Parallel(); sparseFilter(t, newStore(t)) })
	t.Run("inbox-hides-invisible", func(t *testing.T) { t.Parallel(); invisible(t, newStore(t)) })
	t.Run("expired-is-gone", func(t *testing.T) { t.Parallel(); expiredGone(t, newStore(t)) })
	t.Run("lease-oldest-first-p1", func(t *testing.T) { t.Parallel(); leaseOrder(t, newStore(t), 1) })
	t.Run("lease-oldest-first-p4", func(t *testing.T) { t.Parallel(); leaseOrder(t, newStore(t), 4) })
	t.Run("lease-expires-and-returns", func(t *testing.T) { t.Parallel(); leaseExpiry(t, newStore(t)) })
	t.Run("lease-extend", func(t *testing.T) { t.Parallel(); leaseExtend(t, newStore(t)) })
	t.Run("lease-release", func(t *testing.T) { t.Parallel(); leaseRelease(t, newStore(t)) })
	t.Run("nack-with-delay", func(t *testing.T) { t.Parallel(); nackDelay(t, newStore(t)) })
	t.Run("dead-letter-and-redrive", func(t *testing.T) { t.Parallel(); deadLetters(t, newStore(t)) })
	t.Run("idempotent-put", func(t *testing.T) { t.Parallel(); idempotentPut(t, newStore(t)) })
	t.Run("put-many", func(t *testing.T) { t.Parallel(); putMany(t, newStore(t)) })
	t.Run("payloads-through-life", func(t *testing.T) { t.Parallel(); payloadsThroughLife(t, newStore(t)) })
	t.Run("max-age", func(t *testing.T) { t.Parallel(); maxAge(t, newStore(t)) })
	t.Run("ack-kept-within-payload", func(t *testing.T) { t.Parallel(); ackKeptWithinPayload(t, newStore(t)) })
}

var base = time.UnixMilli(1_732_140_249_123).UTC()

func put(t *testing.T, s events.Store, tenantID, typ string, partitions int, at time.Time) events.Event {
	t.Helper()
	body := []byte(fmt.Sprintf(`{"event_type":%q,"n":"%s"}`, typ, at.Format(time.RFC3339Nano)))
	e := events.New(tenantID, typ, body, partitions, at)
	if err := s.Put(context.Background(), e); err != nil {
		t.Fatalf("put: %v", err)
	}
	return e
}

func putGet(t *testing.T, s events.Store) {
	ctx := context.Background()
	// Odd spacing, key order and escapes must survive byte for byte.
	body := []byte("{ \"z\":1,\"event_type\" :\"customer.created\", \"s\":\"caf\\u00e9 \u00e9\" }")
	e := events.New("acme", "customer.created", body, 1, base)
	if err := s.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "acme", e.ID, base)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Payload, body) {
		t.Fatalf("payload changed:\n got %q\nwant %q", got.Payload, body)
	}
	if got.Status != events.StatusUndelivered || got.Type != "customer.created" || !got.ReceivedAt.Equal(base) || got.DeliveryCount != 0 {
		t.Fatalf("got %+v", got)
	}
	if _, err := s.Get(ctx, "acme", events.NewID(), base); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

func otherTenant(t *testing.T, s events.Store) {
	ctx := context.Background()
	e := put(t, s, "acme", "a", 1, base)
	if _, err := s.Get(ctx, "globex", e.ID, base); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("other tenant get: %v", err)
	}
	if _, _, err := s.Ack(ctx, "globex", e.ID, "", base, base.Add(time.Hour)); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("other tenant ack: %v", err)
	}
	page, err := s.Inbox(ctx, events.InboxQuery{TenantID: "globex", Partitions: 1, Limit: 10, Now: base})
	if err != nil || len(page.Events) != 0 {
		t.Fatalf("other tenant inbox: %+v, %v", page, err)
	}
	if got, err := s.Get(ctx, "acme", e.ID, base); err != nil || got.Status != events.StatusUndelivered {
		t.Fatalf("owner's event changed: %+v, %v", got, err)
	}
}

func ackLifecycle(t *testing.T, s events.Store) {
	ctx := context.Background()
	e := put(t, s, "acme", "a", 1, base)
	keep := put(t, s, "acme", "a", 1, base.Add(time.Millisecond))
	at := base.Add(time.Second)
	acked, already, err := s.Ack(ctx, "acme", e.ID, "", at, at.Add(7*24*time.Hour))
	if err != nil || already || acked.ID != e.ID || acked.Type != e.Type || !acked.ReceivedAt.Equal(e.ReceivedAt) || acked.Payload != nil {
		t.Fatalf("first ack: %+v already=%v err=%v", acked, already, err)
	}
	acked, already, err = s.Ack(ctx, "acme", e.ID, "", at, at.Add(7*24*time.Hour))
	if err != nil || !already || acked.ID != e.ID || acked.Type != e.Type || acked.Payload != nil {
		t.Fatalf("second ack: %+v already=%v err=%v", acked, already, err)
	}
	got, err := s.Get(ctx, "acme", e.ID, at)
	if err != nil || got.Status != events.StatusDelivered || !got.DeliveredAt.Equal(at) {
		t.Fatalf("after ack: %+v, %v", got, err)
	}
	if _, _, err := s.Ack(ctx, "acme", events.NewID(), "", at, at); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("unknown ack: %v", err)
	}
	page, err := s.Inbox(ctx, events.InboxQuery{TenantID: "acme", Partitions: 1, Limit: 10, Now: at})
	if err != nil || len(page.Events) != 1 || page.Events[0].ID != keep.ID {
		t.Fatalf("inbox after ack: %+v, %v", page, err)
	}
}

// inboxPages walks the inbox page by page and expects every event once, oldest first.
func inboxPages(t *testing.T, s events.Store, partitions int) {
	ctx := context.Background()
	var want []string
	for i := range 23 {
		want = append(want, put(t, s, "acme", "a", partitions, base.Add(time.Duration(i)*time.Millisecond)).ID)
	}
	put(t, s, "globex", "a", partitions, base) // never visible to acme
	var got []string
	q := events.InboxQuery{TenantID: "acme", Partitions: partitions, Limit: 5, Now: base.Add(time.Hour)}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		page, err := s.Inbox(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) > q.Limit {
			t.Fatalf("page of %d over limit %d", len(page.Events), q.Limit)
		}
		for _, e := range page.Events {
			got = append(got, e.ID)
		}
		if page.Next.IsZero() {
			break
		}
		q.After = page.Next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("inbox order:\n got %v\nwant %v", got, want)
	}
}

func sparseFilter(t *testing.T, s events.Store) {
	ctx := context.Background()
	for i := range 620 {
		put(t, s, "acme", "noise", 1, base.Add(time.Duration(i)*time.Millisecond))
	}
	rare := put(t, s, "acme", "rare", 1, base.Add(time.Second))
	q := events.InboxQuery{TenantID: "acme", Partitions: 1, Limit: 10, EventType: "rare", Now: base.Add(time.Hour)}
	var found []events.Event
	for calls := 0; ; calls++ {
		if calls > 20 {
			t.Fatal("filtered pagination does not end")
		}
		page, err := s.Inbox(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, page.Events...)
		if page.Next.IsZero() {
			break
		}
		q.After = page.Next
	}
	if len(found) != 1 || found[0].ID != rare.ID || found[0].Type != "rare" {
		t.Fatalf("filter found %+v", found)
	}
}

func invisible(t *testing.T, s events.Store) {
	ctx := context.Background()
	now := put(t, s, "acme", "a", 1, base)
	put(t, s, "acme", "a", 1, base.Add(time.Minute))
	page, err := s.Inbox(ctx, events.InboxQuery{TenantID: "acme", Partitions: 1, Limit: 10, Now: base})
	if err != nil || len(page.Events) != 1 || page.Events[0].ID != now.ID {
		t.Fatalf("inbox at base: %+v, %v", page, err)
	}
}

func expiredGone(t *testing.T, s events.Store) {
	ctx := context.Background()
	e := put(t, s, "acme", "a", 1, base)
	if _, _, err := s.Ack(ctx, "acme", e.ID, "", base, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "acme", e.ID, base.Add(time.Hour-time.Second)); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	if _, err := s.Get(ctx, "acme", e.ID, base.Add(time.Hour)); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("after expiry: %v", err)
	}
}
