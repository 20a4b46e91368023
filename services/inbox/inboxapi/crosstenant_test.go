package inboxapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/events"
)

// TestCrossTenantMatrix: every inbox call globex makes on acme's events answers as if they did
// not exist, and leaves them untouched.
func TestCrossTenantMatrix(t *testing.T) {
	t.Parallel()
	f := newClockFixture(t)
	f.seedTenantWithMaxDeliveries(t, "acme", 1)
	apitest.SeedTenant(t, f.tenants, "globex", 1)
	acme := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	globex := apitest.SeedKey(t, f.tenants, "globex", apitest.KeyOptions{})
	ids := f.seedEvents(t, "acme", "customer.created", 3)
	leased, deadID := ids[0], ids[1]

	held := pull(t, f.h, acme, `{"max_events":1,"visibility_timeout_seconds":60}`)
	if len(held.Events) != 1 || held.Events[0].EventID != leased {
		t.Fatalf("acme's pull %+v", held)
	}
	lease := held.Events[0].LeaseID
	// Bury deadID: one delivery allowed, leased once, then its lease runs out.
	if p := pull(t, f.h, acme, `{"max_events":1,"visibility_timeout_seconds":1}`); len(p.Events) != 1 || p.Events[0].EventID != deadID {
		t.Fatalf("second pull %+v", p)
	}
	f.now = f.now.Add(2 * time.Second)
	if p := pull(t, f.h, acme, `{"max_events":1,"visibility_timeout_seconds":60}`); len(p.Events) != 1 || p.Events[0].EventID != ids[2] {
		t.Fatalf("third pull %+v", p)
	}
	if p := pull(t, f.h, acme, `{}`); len(p.Events) != 0 { // the attempt that buries deadID
		t.Fatalf("fourth pull %+v", p)
	}
	before := snapshot(t, f, ids)

	single := []struct{ name, path, body string }{
		{"ack-404", "/ack", `{"event_id":"` + ids[2] + `"}`},
		{"ack-lease-404", "/ack", `{"event_id":"` + leased + `","lease_id":"` + lease + `"}`},
	}
	for _, tc := range single {
		t.Run(tc.name, func(t *testing.T) {
			call(t, f.h, globex, "POST", tc.path, tc.body).ExpectError(t, 404, "not_found")
		})
	}
	perItem := []struct{ name, path, body string }{
		{"ack-batch", "/ack", fmt.Sprintf(`{"event_ids":[%q,%q]}`, ids[2], deadID)},
		{"ack-leases", "/ack", fmt.Sprintf(`{"leases":[{"event_id":%q,"lease_id":%q}]}`, leased, lease)},
		{"extend", "/inbox/extend", fmt.Sprintf(`{"leases":[{"event_id":%q,"lease_id":%q}],"visibility_timeout_seconds":5}`, leased, lease)},
		{"nack-ids", "/nack", fmt.Sprintf(`{"event_ids":[%q]}`, leased)},
		{"nack-leases", "/nack", fmt.Sprintf(`{"leases":[{"event_id":%q,"lease_id":%q}]}`, leased, lease)},
		{"redrive", "/inbox/redrive", fmt.Sprintf(`{"event_ids":[%q]}`, deadID)},
	}
	for _, tc := range perItem {
		t.Run(tc.name+"-not-found", func(t *testing.T) {
			res := call(t, f.h, globex, "POST", tc.path, tc.body)
			var b batchAnswer
			res.JSON(t, &b)
			if res.Status != 200 || b.Succeeded != 0 || b.Failed != len(b.Results) {
				t.Fatalf("%d %s", res.Status, res.Body)
			}
			for _, r := range b.Results {
				if r.Error == nil || r.Error.Code != "not_found" {
					t.Fatalf("item %+v", r)
				}
			}
		})
	}
	// Lists never show them: not the inbox, not the dead letters, not a pull, not a redrive-all.
	f.now = f.now.Add(time.Hour) // every lease has lapsed: acme's events would all be visible
	for _, path := range []string{"/inbox", "/inbox/dead"} {
		res := call(t, f.h, globex, "GET", path, "")
		for _, id := range ids {
			if res.Status != 200 || strings.Contains(string(res.Body), id) {
				t.Fatalf("globex %s: %d %s", path, res.Status, res.Body)
			}
		}
	}
	if p := pull(t, f.h, globex, `{"max_events":100}`); len(p.Events) != 0 {
		t.Fatalf("globex pulled %+v", p)
	}
	if res := call(t, f.h, globex, "POST", "/inbox/redrive", `{"all":true}`); res.Status != 200 || !strings.Contains(string(res.Body), `"redriven_count":0`) {
		t.Fatalf("globex redrive all: %d %s", res.Status, res.Body)
	}
	after := snapshot(t, f, ids)
	for i := range ids {
		if before[i] != after[i] {
			t.Fatalf("acme's event changed:\n before %+v\n after  %+v", before[i], after[i])
		}
	}
	if before[1].Status != events.StatusDead {
		t.Fatalf("the matrix needs a dead event, got %+v", before[1])
	}
}

type eventState struct {
	Status        events.Status
	DeliveryCount int
	VisibleAt     time.Time
	LeaseID       string
}

func snapshot(t *testing.T, f *clockFixture, ids []string) []eventState {
	t.Helper()
	out := make([]eventState, len(ids))
	for i, id := range ids {
		e, err := f.events.Get(context.Background(), "acme", id, f.now)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = eventState{e.Status, e.DeliveryCount, e.VisibleAt, e.LeaseID}
	}
	return out
}
