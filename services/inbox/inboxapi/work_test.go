package inboxapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/events"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/services/inbox/inboxapi"
)

// workFixture serves the inbox as the binary wires it (the queue's work budget is the
// tenant's rate) on a clock that moves only when the test moves it, so no token comes back
// unless the test says so. setup serves the same tables through an authenticator of its own,
// which keeps what it first read of a tenant.
type workFixture struct {
	*fixture
	setup http.Handler
	now   time.Time
}

func newWorkFixture(t *testing.T) *workFixture {
	t.Helper()
	tables := shared.Tables(t)
	wf := &workFixture{fixture: &fixture{tenants: tenantdb.New(shared.Client, tables), events: eventsdb.New(shared.Client, tables)}, now: time.Now()}
	clock := func() time.Time { return wf.now }
	router := func(auth *tenant.Authenticator) http.Handler {
		return inboxapi.NewRouter(inboxapi.Deps{
			Log:   zap.NewNop(),
			Inbox: queue.NewInbox(wf.events, queue.Options{Now: clock, WorkBudget: auth.Rate}),
			Auth:  auth,
			Ready: func(context.Context) error { return nil },
		})
	}
	wf.h = router(tenant.NewAuthenticator(wf.tenants, tenant.AuthConfig{}, clock))
	wf.setup = router(tenant.NewAuthenticator(wf.tenants, tenant.AuthConfig{}, clock))
	return wf
}

// tenantAt seeds a tenant with its own rate and returns a key.
func (wf *workFixture) tenantAt(t *testing.T, id string, rate, maxDeliveries int) string {
	t.Helper()
	wf.seedTenantWithLimits(t, id, maxDeliveries, rate)
	return apitest.SeedKey(t, wf.tenants, id, apitest.KeyOptions{})
}

// seedSized stores n events of about size bytes each, oldest first.
func (wf *workFixture) seedSized(t *testing.T, tenantID string, n, size int) {
	t.Helper()
	putSized(t, wf.events, tenantID, n, size, wf.now.Add(-time.Minute))
}

// putSized stores n events of about size bytes each for tenantID, received a millisecond apart
// from at, and returns their payloads in that order.
func putSized(t *testing.T, store events.Store, tenantID string, n, size int, at time.Time) [][]byte {
	t.Helper()
	bodies := make([][]byte, n)
	for i := range n {
		bodies[i] = []byte(fmt.Sprintf(`{"event_type":"big","i":%d,"pad":%q}`, i, strings.Repeat("x", size)))
		e := events.New(tenantID, "big", bodies[i], 1, at.Add(time.Duration(i)*time.Millisecond))
		if err := store.Put(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	return bodies
}

// A listing of large events is paid for by its payload: one more of the rate per full 4 KiB
// of each event, and no more payload than a second of the rate pays for in one answer (at
// least one event). Small events cost the request alone.
func TestReadsCostTheirPayload(t *testing.T) {
	t.Parallel()
	wf := newWorkFixture(t)
	big := wf.tenantAt(t, "big", 10, tenant.DefaultMaxDeliveries)
	small := wf.tenantAt(t, "small", 2, tenant.DefaultMaxDeliveries)
	wf.seedSized(t, "big", 6, 20<<10)
	wf.seedSized(t, "small", 6, 100)

	res, page := wf.inbox(t, big, "")
	if res.Status != 200 {
		t.Fatalf("listing: %d %s", res.Status, res.Body)
	}
	// 10/s pays for 40 KiB a second: two events of 20 KiB, then the page ends with a cursor.
	payload := 0
	for _, e := range page.Events {
		payload += len(e.Payload)
	}
	if len(page.Events) == 0 || page.NextCursor == "" || payload > 40<<10+21<<10 {
		t.Fatalf("a page at 10/s held %d events, %d payload bytes, cursor %q; want at most 40 KiB and one event more, and a cursor",
			len(page.Events), payload, page.NextCursor)
	}
	// Each 20 KiB event cost 5 more: the rate's second is spent, so the next call waits.
	res, _ = wf.inbox(t, big, "")
	res.ExpectError(t, http.StatusTooManyRequests, "rate_limited")
	if ra := res.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}

	for i := range 2 {
		if res, page := wf.inbox(t, small, ""); res.Status != 200 || len(page.Events) != 6 {
			t.Fatalf("small listing %d: %d %s", i+1, res.Status, res.Body)
		}
	}
	res, _ = wf.inbox(t, small, "")
	res.ExpectError(t, http.StatusTooManyRequests, "rate_limited")

	// Paid off in time: a second later the big tenant reads again.
	wf.now = wf.now.Add(3 * time.Second)
	if res, _ := wf.inbox(t, big, ""); res.Status != 200 {
		t.Fatalf("after the debt was paid: %d %s", res.Status, res.Body)
	}
}

// A pull leases no more events than a second of its tenant's rate pays for, each lease
// counting one.
func TestPullLeasesWhatItsRatePays(t *testing.T) {
	t.Parallel()
	wf := newWorkFixture(t)
	key := wf.tenantAt(t, "acme", 3, tenant.DefaultMaxDeliveries)
	wf.seedSized(t, "acme", 10, 10)

	p := pull(t, wf.h, key, `{"max_events":10}`)
	if len(p.Events) != 3 {
		t.Fatalf("a pull at 3/s leased %d events, want 3", len(p.Events))
	}
	res := call(t, wf.h, key, "POST", "/inbox/pull", `{"max_events":10}`)
	res.ExpectError(t, http.StatusTooManyRequests, "rate_limited")
}

// redrive {"all":true} moves no more than a second of its tenant's rate pays for, and says
// that more remain.
func TestRedriveAllMovesWhatItsRatePays(t *testing.T) {
	t.Parallel()
	wf := newWorkFixture(t)
	// Dead letters are made through the setup router before the tenant has a rate at all.
	key := wf.tenantAt(t, "acme", 0, 1)
	wf.seedSized(t, "acme", 8, 10)
	if p := pull(t, wf.setup, key, `{"max_events":10,"visibility_timeout_seconds":1}`); len(p.Events) != 8 {
		t.Fatalf("setup pull leased %d, want 8", len(p.Events))
	}
	wf.killLeased(t, key, 8)
	five := 5
	if _, err := wf.tenants.UpdateTenant(context.Background(), "acme", tenant.Patch{RateLimit: &five}, time.Now()); err != nil {
		t.Fatal(err)
	}

	res := call(t, wf.h, key, "POST", "/inbox/redrive", `{"all":true}`)
	if res.Status != 200 || !strings.Contains(string(res.Body), `"redriven_count":5`) || !strings.Contains(string(res.Body), `"more":true`) {
		t.Fatalf("redrive all at 5/s: %d %s; want 5 moved and more", res.Status, res.Body)
	}
	call(t, wf.h, key, "POST", "/inbox/redrive", `{"all":true}`).ExpectError(t, http.StatusTooManyRequests, "rate_limited")
}

// killLeased lets the tenant's leases lapse and pulls again until its n events, at
// max_deliveries 1, are dead letters.
func (wf *workFixture) killLeased(t *testing.T, key string, n int) {
	t.Helper()
	for range 3 {
		wf.now = wf.now.Add(2 * time.Second)
		pull(t, wf.setup, key, `{"max_events":10,"visibility_timeout_seconds":1}`)
	}
	var dead inboxAnswer
	res := call(t, wf.setup, key, "GET", "/inbox/dead", "")
	if res.JSON(t, &dead); len(dead.Events) != n {
		t.Fatalf("%d dead letters after the lapsed leases, want %d: %s", len(dead.Events), n, res.Body)
	}
}
