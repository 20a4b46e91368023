package ingestapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/events"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/services/ingest/ingestapi"
)

// TestTenantOverItsRateGets429: a tenant with its own rate_limit of 2 gets two events in,
// then 429 with Retry-After and nothing stored; another tenant, on the service's default, is
// not held back by it. The clock stands still, so no token comes back mid-test.
func TestTenantOverItsRateGets429(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tables := shared.Tables(t)
	store, stored := tenantdb.New(shared.Client, tables), eventsdb.New(shared.Client, tables)
	apitest.SeedTenant(t, store, "acme", 1)
	apitest.SeedTenant(t, store, "globex", 1)
	two := 2
	if _, err := store.UpdateTenant(ctx, "acme", tenant.Patch{RateLimit: &two}, time.Now()); err != nil {
		t.Fatal(err)
	}
	acme := apitest.SeedKey(t, store, "acme", apitest.KeyOptions{})
	globex := apitest.SeedKey(t, store, "globex", apitest.KeyOptions{})
	frozen := time.Now()
	h := ingestapi.NewRouter(ingestapi.Deps{
		Log:       zap.NewNop(),
		Publisher: queue.NewPublisher(stored, queue.Options{}),
		Auth:      tenant.NewAuthenticator(store, tenant.AuthConfig{RateLimit: 3}, func() time.Time { return frozen }),
		Ready:     func(context.Context) error { return nil },
	})

	for i := range 2 {
		if res := apitest.Do(t, h, apitest.Request{Method: "POST", Path: "/events", Key: acme, Body: seedBody}); res.Status != http.StatusAccepted {
			t.Fatalf("acme event %d: %d %s", i+1, res.Status, res.Body)
		}
	}
	res := apitest.Do(t, h, apitest.Request{Method: "POST", Path: "/events", Key: acme, Body: seedBody})
	res.ExpectError(t, http.StatusTooManyRequests, "rate_limited")
	if res.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want 1", res.Header.Get("Retry-After"))
	}
	// Reads share the tenant's rate too.
	apitest.Do(t, h, apitest.Request{Method: "GET", Path: "/events/evt_00000000000000000000000000000000", Key: acme}).
		ExpectError(t, http.StatusTooManyRequests, "rate_limited")

	// A refused key is refused before any rate is checked.
	apitest.Do(t, h, apitest.Request{Method: "POST", Path: "/events", Key: "tenant_acme_live_nope", Body: seedBody}).
		ExpectError(t, http.StatusUnauthorized, "unauthenticated")

	// globex runs on the service's default of 3.
	for i := range 3 {
		if res := apitest.Do(t, h, apitest.Request{Method: "POST", Path: "/events", Key: globex, Body: seedBody}); res.Status != http.StatusAccepted {
			t.Fatalf("globex event %d: %d %s", i+1, res.Status, res.Body)
		}
	}
	apitest.Do(t, h, apitest.Request{Method: "POST", Path: "/events", Key: globex, Body: seedBody}).
		ExpectError(t, http.StatusTooManyRequests, "rate_limited")

	for tenantID, want := range map[string]int{"acme": 2, "globex": 3} {
		page, err := stored.Inbox(ctx, events.InboxQuery{TenantID: tenantID, Partitions: 1, Limit: 10, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != want {
			t.Errorf("%s has %d events stored, want %d: a limited request stored something", tenantID, len(page.Events), want)
		}
	}
}

// A batch counts as many requests as it holds events: after a batch of 3 on a rate of 3 the
// tenant's next call waits, though only one request was made.
func TestBatchItemsCountAgainstTheRate(t *testing.T) {
	t.Parallel()
	tables := shared.Tables(t)
	store, stored := tenantdb.New(shared.Client, tables), eventsdb.New(shared.Client, tables)
	apitest.SeedTenant(t, store, "acme", 1)
	acme := apitest.SeedKey(t, store, "acme", apitest.KeyOptions{})
	frozen := time.Now()
	h := ingestapi.NewRouter(ingestapi.Deps{
		Log:       zap.NewNop(),
		Publisher: queue.NewPublisher(stored, queue.Options{}),
		Auth:      tenant.NewAuthenticator(store, tenant.AuthConfig{RateLimit: 3}, func() time.Time { return frozen }),
		Ready:     func(context.Context) error { return nil },
	})
	batch := `{"events":[{"event_type":"a"},{"event_type":"b"},{"event_type":"c"}]}`
	if res := apitest.Do(t, h, apitest.Request{Method: "POST", Path: "/events/batch", Key: acme, Body: batch}); res.Status != http.StatusOK {
		t.Fatalf("batch: %d %s", res.Status, res.Body)
	}
	apitest.Do(t, h, apitest.Request{Method: "POST", Path: "/events", Key: acme, Body: seedBody}).
		ExpectError(t, http.StatusTooManyRequests, "rate_limited")
}
