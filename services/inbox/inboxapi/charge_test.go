package inboxapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// TestSettleCallsChargeEachItem: every call that settles several events costs one of the
// tenant's rate per item, not per request. At a rate of 3 one call on 3 events spends the
// whole second, so the tenant's next call is refused; charged as one request, it would still
// have 2 to spend.
func TestSettleCallsChargeEachItem(t *testing.T) {
	t.Parallel()
	const items = 3
	cases := []struct {
		name string
		dead bool // the call needs dead letters rather than leases
		body func(ids, leases string) string
		path string
	}{
		{name: "ack-ids", path: "/ack", body: func(ids, _ string) string { return `{"event_ids":[` + ids + `]}` }},
		{name: "ack-leases", path: "/ack", body: func(_, leases string) string { return `{"leases":[` + leases + `]}` }},
		{name: "nack-leases", path: "/nack", body: func(_, leases string) string { return `{"leases":[` + leases + `]}` }},
		{name: "extend", path: "/inbox/extend", body: func(_, leases string) string {
			return `{"leases":[` + leases + `],"visibility_timeout_seconds":60}`
		}},
		{name: "redrive-ids", path: "/inbox/redrive", dead: true, body: func(ids, _ string) string { return `{"event_ids":[` + ids + `]}` }},
		{name: "redrive-all", path: "/inbox/redrive", dead: true, body: func(_, _ string) string { return `{"all":true}` }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wf := newWorkFixture(t)
			// Prepared through the setup router while the tenant has no rate of its own.
			maxDeliveries := tenant.DefaultMaxDeliveries
			if tc.dead {
				maxDeliveries = 1
			}
			key := wf.tenantAt(t, "acme", 0, maxDeliveries)
			wf.seedSized(t, "acme", items, 10)
			p := pull(t, wf.setup, key, `{"max_events":10,"visibility_timeout_seconds":1}`)
			if len(p.Events) != items {
				t.Fatalf("setup pull leased %d, want %d", len(p.Events), items)
			}
			var ids, leases []string
			for _, e := range p.Events {
				ids = append(ids, fmt.Sprintf("%q", e.EventID))
				leases = append(leases, fmt.Sprintf(`{"event_id":%q,"lease_id":%q}`, e.EventID, e.LeaseID))
			}
			if tc.dead {
				wf.killLeased(t, key, items)
			}
			rate := items
			if _, err := wf.tenants.UpdateTenant(context.Background(), "acme", tenant.Patch{RateLimit: &rate}, time.Now()); err != nil {
				t.Fatal(err)
			}

			res := call(t, wf.h, key, "POST", tc.path, tc.body(strings.Join(ids, ","), strings.Join(leases, ",")))
			if res.Status != http.StatusOK || strings.Contains(string(res.Body), `"error"`) ||
				tc.name == "redrive-all" && !strings.Contains(string(res.Body), fmt.Sprintf(`"redriven_count":%d`, items)) {
				t.Fatalf("%s of %d events: %d %s; want every item done", tc.name, items, res.Status, res.Body)
			}
			res, _ = wf.inbox(t, key, "?limit=1")
			res.ExpectError(t, http.StatusTooManyRequests, "rate_limited")
		})
	}
}
