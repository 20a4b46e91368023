package eventstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/events"
)

// payloadSizes covers payloads a store may keep with the event's state and payloads it may
// keep apart, and the sizes between.
var payloadSizes = []int{40, 500, 900, 1200, 5 << 10, 70 << 10}

func bodyOf(size int, tag string) []byte {
	head := fmt.Sprintf(`{"event_type":"sized","tag":%q,"pad":"`, tag)
	return []byte(head + strings.Repeat("p", max(size-len(head)-2, 0)) + `"}`)
}

// payloadsThroughLife: every way in and every way out gives back each payload byte for byte.
func payloadsThroughLife(t *testing.T, s events.Store) {
	ctx := context.Background()
	all, want := putEveryWay(t, s)
	check := func(step string, got []events.Event) {
		t.Helper()
		for _, e := range got {
			if !bytes.Equal(e.Payload, want[e.ID]) {
				t.Fatalf("%s: %s has %d payload bytes, want %d", step, e.ID, len(e.Payload), len(want[e.ID]))
			}
		}
	}
	now := base.Add(time.Second)
	for _, e := range all {
		got, err := s.Get(ctx, "acme", e.ID, now)
		if err != nil {
			t.Fatal(err)
		}
		check("get", []events.Event{got})
	}
	page, err := s.Inbox(ctx, events.InboxQuery{TenantID: "acme", Partitions: 1, Limit: 100, Now: now})
	if err != nil || len(page.Events) != len(all) {
		t.Fatalf("inbox: %d events of %d, %v", len(page.Events), len(all), err)
	}
	check("inbox", page.Events)

	// Two deliveries each; the third pull buries every event (max deliveries 2).
	for n := range 2 {
		leased := leaseAll(t, s, "acme", 1, 100, time.Second, 2, now)
		if len(leased.Events) != len(all) {
			t.Fatalf("lease %d: %d events of %d", n+1, len(leased.Events), len(all))
		}
		check("lease", leased.Events)
		for _, e := range leased.Events[:3] {
			if err := s.Nack(ctx, "acme", e.ID, e.LeaseID, now, now); err != nil {
				t.Fatal(err)
			}
		}
		now = now.Add(2 * time.Second)
	}
	buried := leaseAll(t, s, "acme", 1, 100, time.Second, 2, now)
	if len(buried.Buried) != len(all) {
		t.Fatalf("buried %d of %d", len(buried.Buried), len(all))
	}
	dead, err := s.Dead(ctx, events.DeadQuery{TenantID: "acme", Limit: 100, Now: now})
	if err != nil || len(dead.Events) != len(all) {
		t.Fatalf("dead: %d events of %d, %v", len(dead.Events), len(all), err)
	}
	check("dead", dead.Events)
	for _, e := range all {
		if err := s.Redrive(ctx, "acme", e.ID, now); err != nil {
			t.Fatal(err)
		}
	}
	leased := leaseAll(t, s, "acme", 1, 100, time.Minute, 2, now)
	check("lease after redrive", leased.Events)
	for _, e := range leased.Events {
		if _, _, err := s.Ack(ctx, "acme", e.ID, e.LeaseID, now, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "acme", e.ID, now)
		if err != nil || got.Status != events.StatusDelivered {
			t.Fatalf("after ack: %+v %v", got, err)
		}
		check("get after ack", []events.Event{got})
	}
}

// putEveryWay stores an event of each payload size through Put, PutOnce (and its replay) and
// PutMany, and returns them with their payloads by id.
func putEveryWay(t *testing.T, s events.Store) ([]events.Event, map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	want := map[string][]byte{}
	var all []events.Event
	for i, size := range payloadSizes {
		at := base.Add(time.Duration(i) * time.Millisecond)
		one := events.New("acme", "sized", bodyOf(size, "put"), 1, at)
		once := events.New("acme", "sized", bodyOf(size, "once"), 1, at)
		many := events.New("acme", "sized", bodyOf(size, "many"), 1, at)
		if err := s.Put(ctx, one); err != nil {
			t.Fatal(err)
		}
		idem := events.Idempotency{KeyHash: fmt.Sprintf("sized-%d", size), Fingerprint: "f", ExpiresAt: at.Add(time.Hour)}
		if _, _, err := s.PutOnce(ctx, once, idem, at); err != nil {
			t.Fatal(err)
		}
		replay := events.New("acme", "sized", bodyOf(size, "once"), 1, at)
		if orig, replayed, err := s.PutOnce(ctx, replay, idem, at); err != nil || !replayed || orig.ID != once.ID {
			t.Fatalf("replay at %d bytes: %+v %v %v", size, orig, replayed, err)
		}
		if errs := s.PutMany(ctx, []events.Event{many}); errs[0] != nil {
			t.Fatal(errs[0])
		}
		for _, e := range []events.Event{one, once, many} {
			want[e.ID] = e.Payload
			all = append(all, e)
		}
	}
	return all, want
}

// maxAge: an event nobody acknowledged is gone MaxAge after it was received, whatever state
// it is in, and an acknowledgement cannot bring it back.
func maxAge(t *testing.T, s events.Store) {
	ctx := context.Background()
	waiting := put(t, s, "acme", "a", 1, base)
	big := events.New("acme", "a", bodyOf(8<<10, "big"), 1, base)
	if err := s.Put(ctx, big); err != nil {
		t.Fatal(err)
	}
	held := put(t, s, "acme", "a", 1, base.Add(time.Millisecond))
	lease(t, s, "acme", 1, 3, 30*24*time.Hour, 5, base.Add(time.Second)) // leases all three
	late := base.Add(events.MaxAge)
	for _, e := range []events.Event{waiting, big, held} {
		if _, err := s.Get(ctx, "acme", e.ID, late.Add(-time.Second)); err != nil {
			t.Fatalf("before max age: %v", err)
		}
		if _, err := s.Get(ctx, "acme", e.ID, late); !errors.Is(err, events.ErrNotFound) {
			t.Fatalf("get at max age: %v", err)
		}
		if _, _, err := s.Ack(ctx, "acme", e.ID, "", late, late.Add(time.Hour)); !errors.Is(err, events.ErrNotFound) {
			t.Fatalf("ack at max age: %v", err)
		}
	}
	page, err := s.Inbox(ctx, events.InboxQuery{TenantID: "acme", Partitions: 1, Limit: 10, Now: late.Add(31 * 24 * time.Hour)})
	if err != nil || len(page.Events) != 0 {
		t.Fatalf("inbox past max age: %d events, %v", len(page.Events), err)
	}
	if got := lease(t, s, "acme", 1, 10, time.Minute, 5, late.Add(31*24*time.Hour)); len(got) != 0 {
		t.Fatalf("leased %d events past their max age", len(got))
	}
}

// ackKeptWithinPayload: an acknowledgement whose retention reaches past the payload's expiry
// (the tenant's retention grew after publishing) keeps the event only as long as its payload.
func ackKeptWithinPayload(t *testing.T, s events.Store) {
	ctx := context.Background()
	for _, size := range []int{100, 8 << 10} {
		e := events.New("acme", "a", bodyOf(size, "kept"), 1, base)
		e.KeepFor(time.Hour)
		if err := s.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
		keepUntil := e.ExpiresAt.Add(time.Hour)
		if _, _, err := s.Ack(ctx, "acme", e.ID, "", base, keepUntil.Add(30*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, "acme", e.ID, keepUntil.Add(-time.Second)); err != nil || !bytes.Equal(got.Payload, e.Payload) {
			t.Fatalf("%d bytes, before the payload's expiry: %v", size, err)
		}
		if _, err := s.Get(ctx, "acme", e.ID, keepUntil); !errors.Is(err, events.ErrNotFound) {
			t.Fatalf("%d bytes, at the payload's expiry: %v", size, err)
		}
	}
}
