package dynamo_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/events/dynamo"
)

// Pages of large events end at the byte budget with a cursor that continues exactly where they
// stopped; a pull leases fewer events; small events are not cut short.
func TestReadsStopAtTheirByteBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := dynamo.New(shared.Client, shared.Tables(t))
	const n, size, budget = 20, 200 << 10, 1 << 20
	at := time.Now().Add(-time.Minute)
	var want []string
	for i := range n {
		body := fmt.Sprintf(`{"event_type":"big","n":%d,"pad":"%s"}`, i, strings.Repeat("x", size))
		e := events.New("acme", "big", []byte(body), 2, at.Add(time.Duration(i)*time.Millisecond))
		if err := s.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.ID)
	}
	now := time.Now()

	t.Run("listing", func(t *testing.T) {
		var got []string
		q := events.InboxQuery{TenantID: "acme", Partitions: 2, Limit: 100, Now: now, MaxBytes: budget}
		for pages := 1; ; pages++ {
			page, err := s.Inbox(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			held := 0
			for _, e := range page.Events {
				held += len(e.Payload)
				got = append(got, e.ID)
			}
			// One chunk of events may take a page past the budget, never further.
			if held > budget+8*(size+100) {
				t.Fatalf("page %d holds %d payload bytes", pages, held)
			}
			if page.Next.IsZero() {
				if pages < 2 {
					t.Fatalf("%d events of %d KiB came in one page under a %d KiB budget", n, size>>10, budget>>10)
				}
				break
			}
			q.After = page.Next
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("pages together hold %d events, want the %d in order", len(got), len(want))
		}
	})
	t.Run("small-events-uncut", func(t *testing.T) {
		page, err := s.Inbox(ctx, events.InboxQuery{TenantID: "acme", Partitions: 2, Limit: 100, Now: now, MaxBytes: 64 << 20})
		if err != nil || len(page.Events) != n || !page.Next.IsZero() {
			t.Fatalf("under a large budget: %d events, next %v, %v", len(page.Events), page.Next, err)
		}
	})
	t.Run("pull", func(t *testing.T) {
		got, err := s.Lease(ctx, events.LeaseQuery{TenantID: "acme", Partitions: 2, Max: 100, Visibility: time.Minute,
			MaxDeliveries: 10, Now: now, MaxBytes: budget})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Events) == 0 || len(got.Events) >= n {
			t.Fatalf("a budgeted pull leased %d of %d large events", len(got.Events), n)
		}
	})
	t.Run("pull-under-a-small-budget", func(t *testing.T) {
		// A budget below one event at the size limit: the pull cannot know sizes before it
		// leases, so it leases one event, however many it may take.
		got, err := s.Lease(ctx, events.LeaseQuery{TenantID: "acme", Partitions: 2, Max: 100, Visibility: time.Minute,
			MaxDeliveries: 10, Now: now, MaxBytes: 200 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Events) != 1 {
			t.Fatalf("a pull under a %d KiB budget leased %d events of %d KiB", 200, len(got.Events), size>>10)
		}
	})
}

// Redriving every dead letter needs their ids, not their payloads: an ids-only page reads the
// dead-letter index alone, however large the payloads, and names the events a full page does.
func TestDeadIDsOnlyReadsNoItem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFaulty(t, ddb.Settings{})
	at := time.Now().Add(-time.Minute)
	var want []string
	for i := range 6 {
		body := fmt.Sprintf(`{"event_type":"big","n":%d,"pad":"%s"}`, i, strings.Repeat("x", 100<<10))
		e := events.New("acme", "big", []byte(body), 1, at.Add(time.Duration(i)*time.Millisecond))
		if err := f.store.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.ID)
	}
	// Deliver each once, let the leases lapse: the next pull buries them all.
	lq := events.LeaseQuery{TenantID: "acme", Partitions: 1, Max: 10, Visibility: time.Second, MaxDeliveries: 1, Now: time.Now()}
	if got, err := f.store.Lease(ctx, lq); err != nil || len(got.Events) != len(want) {
		t.Fatalf("first delivery: %d events, %v", len(got.Events), err)
	}
	lq.Now = lq.Now.Add(time.Minute)
	if got, err := f.store.Lease(ctx, lq); err != nil || len(got.Events) != 0 {
		t.Fatalf("the pull past max_deliveries leased %d events, %v", len(got.Events), err)
	}
	dq := events.DeadQuery{TenantID: "acme", Limit: 100, Now: lq.Now}
	full, err := f.store.Dead(ctx, dq)
	if err != nil || len(full.Events) != len(want) || len(full.Events[0].Payload) == 0 {
		t.Fatalf("dead letters: %d, %v", len(full.Events), err)
	}
	gets, queries := f.proxy.Seen("BatchGetItem"), f.proxy.Seen("Query")
	dq.IDsOnly = true
	ids, err := f.store.Dead(ctx, dq)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.proxy.Seen("BatchGetItem") - gets; n != 0 {
		t.Fatalf("an ids-only page made %d BatchGetItem calls, want none", n)
	}
	if n := f.proxy.Seen("Query") - queries; n != 1 {
		t.Fatalf("an ids-only page made %d queries, want 1", n)
	}
	var got []string
	for i, e := range ids.Events {
		got = append(got, e.ID)
		if e.ID != full.Events[i].ID || e.TenantID != "acme" || e.Payload != nil {
			t.Fatalf("ids-only event %d: %+v, want the id of %s alone", i, e, full.Events[i].ID)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ids-only page %v, want %v", got, want)
	}
}
