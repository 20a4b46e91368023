package contract_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/openapi"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/storage"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	"github.com/trigger-api/trigger-api/pkg/tenant/tenanttest"
	"github.com/trigger-api/trigger-api/services/inbox/inboxapi"
	"github.com/trigger-api/trigger-api/services/ingest/ingestapi"
	"github.com/trigger-api/trigger-api/services/keys-admin/adminapi"
)

// failingEvents is an events store whose every call fails with err, as DynamoDB does when it
// is unreachable or throttling. It embeds the interface so that a method added later compiles
// and, uncalled here, changes nothing.
type failingEvents struct {
	events.Store
	err error
}

func (f failingEvents) Put(context.Context, events.Event) error { return f.err }
func (f failingEvents) PutOnce(context.Context, events.Event, events.Idempotency, time.Time) (events.Event, bool, error) {
	return events.Event{}, false, f.err
}
func (f failingEvents) PutMany(_ context.Context, es []events.Event) []error {
	out := make([]error, len(es))
	for i := range out {
		out[i] = f.err
	}
	return out
}
func (f failingEvents) Get(context.Context, string, string, time.Time) (events.Event, error) {
	return events.Event{}, f.err
}
func (f failingEvents) Inbox(context.Context, events.InboxQuery) (events.InboxPage, error) {
	return events.InboxPage{}, f.err
}
func (f failingEvents) Visible(context.Context, string, int, time.Time) (bool, error) {
	return false, f.err
}
func (f failingEvents) Lease(context.Context, events.LeaseQuery) (events.Leased, error) {
	return events.Leased{}, f.err
}
func (f failingEvents) Extend(context.Context, string, string, string, time.Time, time.Time) (events.Event, error) {
	return events.Event{}, f.err
}
func (f failingEvents) Nack(context.Context, string, string, string, time.Time, time.Time) error {
	return f.err
}
func (f failingEvents) Ack(context.Context, string, string, string, time.Time, time.Time) (events.Event, bool, error) {
	return events.Event{}, false, f.err
}
func (f failingEvents) Dead(context.Context, events.DeadQuery) (events.InboxPage, error) {
	return events.InboxPage{}, f.err
}
func (f failingEvents) Redrive(context.Context, string, string, time.Time) error { return f.err }

// failingTenants is a tenant store whose every call fails with err.
type failingTenants struct {
	tenant.Store
	err error
}

func (f failingTenants) CreateTenant(context.Context, tenant.Tenant) error { return f.err }
func (f failingTenants) KeyAndTenant(context.Context, string, string) (tenant.APIKey, tenant.Tenant, error) {
	return tenant.APIKey{}, tenant.Tenant{}, f.err
}
func (f failingTenants) GetTenant(context.Context, string) (tenant.Tenant, error) {
	return tenant.Tenant{}, f.err
}
func (f failingTenants) ListTenants(context.Context, int, string) ([]tenant.Tenant, string, error) {
	return nil, "", f.err
}
func (f failingTenants) UpdateTenant(context.Context, string, tenant.Patch, time.Time) (tenant.Tenant, error) {
	return tenant.Tenant{}, f.err
}
func (f failingTenants) CreateKey(context.Context, tenant.APIKey) error { return f.err }
func (f failingTenants) KeyByHash(context.Context, string) (tenant.APIKey, error) {
	return tenant.APIKey{}, f.err
}
func (f failingTenants) GetKey(context.Context, string, string) (tenant.APIKey, error) {
	return tenant.APIKey{}, f.err
}
func (f failingTenants) ListKeys(context.Context, string) ([]tenant.APIKey, error) {
	return nil, f.err
}
func (f failingTenants) RevokeKey(context.Context, string, string, time.Time) (tenant.APIKey, error) {
	return tenant.APIKey{}, f.err
}
func (f failingTenants) ExpireKeyBy(context.Context, string, string, time.Time) (tenant.APIKey, error) {
	return tenant.APIKey{}, f.err
}

// fault is a failure of the stores and the answer it must give.
type fault struct {
	name   string
	err    error
	status int
	code   string
}

// faultAnswers sends one conforming request per operation to the real routers whose stores
// fail, and checks the answers against the document: 503 with Retry-After when DynamoDB is
// unavailable, 500 for anything unknown, and the batch calls' per-item errors. A live stack
// cannot be made to fail on cue; the routers, middleware and error mapping are the real ones.
func faultAnswers(t *testing.T, c func(http.Handler) *client) {
	for _, f := range []fault{
		{"dynamodb-unavailable", fmt.Errorf("query: %w", storage.ErrUnavailable), http.StatusServiceUnavailable, "unavailable"},
		{"unexpected-failure", errors.New("a failure nobody mapped"), http.StatusInternalServerError, "internal"},
	} {
		t.Run(f.name, func(t *testing.T) {
			ops, err := openapi.Operations("")
			if err != nil {
				t.Fatal(err)
			}
			t.Run("key-store-fails", func(t *testing.T) { keyStoreFails(t, c, f, ops) })
			t.Run("events-store-fails", func(t *testing.T) { eventsStoreFails(t, c, f, ops) })
		})
	}
}

// faultAdminToken is the admin token the fault routers accept.
const faultAdminToken = "contract:admin-token-0123456789abcdef0123456789"

// keyStoreFails: the request is refused before any handler runs.
func keyStoreFails(t *testing.T, c func(http.Handler) *client, f fault, ops []openapi.Operation) {
	log := zap.NewNop()
	key, err := apikey.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	ready := func(context.Context) error { return f.err }
	auth := tenant.NewAuthenticator(failingTenants{err: f.err}, tenant.AuthConfig{}, nil)
	adminTokens, err := adminapi.ParseAdminTokens([]string{faultAdminToken})
	if err != nil {
		t.Fatal(err)
	}
	routers := map[string]http.Handler{
		openapi.Ingest:    ingestapi.NewRouter(ingestapi.Deps{Log: log, Publisher: queue.NewPublisher(failingEvents{err: f.err}, queue.Options{}), Auth: auth, Ready: ready}),
		openapi.Inbox:     inboxapi.NewRouter(inboxapi.Deps{Log: log, Inbox: queue.NewInbox(failingEvents{err: f.err}, queue.Options{}), Auth: auth, Ready: ready}),
		openapi.KeysAdmin: adminapi.NewRouter(log, failingTenants{err: f.err}, adminTokens, ready, nil),
	}
	samples := sampleRequests(key.String(), faultAdminToken)
	for _, o := range ops {
		s := samples[o.ID]
		s.name = o.ID + "-auth-store-fails"
		switch o.ID {
		case "livez", "getOpenAPI":
			s.status = http.StatusOK
		case "readyz":
			s.status = http.StatusServiceUnavailable
		default:
			s.status, s.code = f.status, f.code
		}
		services := []string{o.Service}
		if o.Service == openapi.Every {
			services = openapi.Services
		}
		for _, svc := range services {
			a := c(routers[svc]).do(t, s)
			if a.Status == http.StatusServiceUnavailable && a.Header.Get("Retry-After") == "" {
				t.Errorf("%s: 503 without Retry-After", s.name)
			}
		}
	}
}

// eventsStoreFails: the key store works and the events store fails, so the handlers meet the
// failure.
func eventsStoreFails(t *testing.T, c func(http.Handler) *client, f fault, ops []openapi.Operation) {
	log := zap.NewNop()
	ready := func(context.Context) error { return f.err }
	mem := tenanttest.NewMemory()
	apitest.SeedTenant(t, mem, "acme", 1)
	good := apitest.SeedKey(t, mem, "acme", apitest.KeyOptions{})
	auth := tenant.NewAuthenticator(mem, tenant.AuthConfig{}, nil)
	routers := map[string]http.Handler{
		openapi.Ingest: ingestapi.NewRouter(ingestapi.Deps{Log: log, Publisher: queue.NewPublisher(failingEvents{err: f.err}, queue.Options{}), Auth: auth, Ready: ready}),
		openapi.Inbox:  inboxapi.NewRouter(inboxapi.Deps{Log: log, Inbox: queue.NewInbox(failingEvents{err: f.err}, queue.Options{}), Auth: auth, Ready: ready}),
	}
	samples := sampleRequests(good, faultAdminToken)
	for _, o := range ops {
		if o.Service != openapi.Ingest && o.Service != openapi.Inbox {
			continue
		}
		s := samples[o.ID]
		s.name = o.ID + "-events-store-fails"
		a := c(routers[o.Service]).do(t, s)
		// Calls that settle or store several items answer 200 and carry the failure per
		// item; the others answer it.
		if a.Status == http.StatusOK {
			if !strings.Contains(string(a.Body), `"code":"`+f.code+`"`) {
				t.Errorf("%s: 200 without the per-item %s error: %s", s.name, f.code, a.Body)
			}
		} else if a.Status != f.status {
			t.Errorf("%s: %d, want %d or a 200 with per-item errors: %s", s.name, a.Status, f.status, a.Body)
		}
	}
}

// rateLimitedAnswers sends every tenant operation for a tenant whose rate is spent: each
// answers 429 rate_limited with Retry-After, as the document says. The clock stands still, so
// the one request the rate allows is the first and no token comes back.
func rateLimitedAnswers(t *testing.T, c func(http.Handler) *client) {
	log := zap.NewNop()
	mem := tenanttest.NewMemory()
	apitest.SeedTenant(t, mem, "acme", 1)
	one := 1
	if _, err := mem.UpdateTenant(t.Context(), "acme", tenant.Patch{RateLimit: &one}, time.Now()); err != nil {
		t.Fatal(err)
	}
	key := apitest.SeedKey(t, mem, "acme", apitest.KeyOptions{})
	frozen := time.Now()
	auth := tenant.NewAuthenticator(mem, tenant.AuthConfig{RateLimit: 1000}, func() time.Time { return frozen })
	ready := func(context.Context) error { return nil }
	store := failingEvents{err: errors.New("a rate-limited request reached the store")}
	routers := map[string]http.Handler{
		openapi.Ingest: ingestapi.NewRouter(ingestapi.Deps{Log: log, Publisher: queue.NewPublisher(store, queue.Options{}), Auth: auth, Ready: ready}),
		openapi.Inbox:  inboxapi.NewRouter(inboxapi.Deps{Log: log, Inbox: queue.NewInbox(store, queue.Options{}), Auth: auth, Ready: ready}),
	}
	if err := auth.Admit(tenant.Principal{TenantID: "acme", RateLimit: 1}); err != nil {
		t.Fatalf("the tenant's one request a second: %v", err)
	}
	ops, err := openapi.Operations("")
	if err != nil {
		t.Fatal(err)
	}
	samples := sampleRequests(key, "")
	for _, o := range ops {
		if o.Service != openapi.Ingest && o.Service != openapi.Inbox {
			continue
		}
		s := samples[o.ID]
		s.name, s.status, s.code = o.ID+"-rate-limited", http.StatusTooManyRequests, "rate_limited"
		if a := c(routers[o.Service]).do(t, s); a.Header.Get("Retry-After") != "1" {
			t.Errorf("%s: Retry-After %q, want 1", s.name, a.Header.Get("Retry-After"))
		}
	}
}
