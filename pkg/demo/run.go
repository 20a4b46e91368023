package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
	"github.com/trigger-api/trigger-api/pkg/logging"
)

// Config is `worker demo`'s configuration, read from TRIGGER_* variables.
type Config struct {
	logging.Options
	AdminURL  string `envconfig:"ADMIN_URL" required:"true" desc:"base URL of keys-admin, e.g. http://trigger-api-keys-admin:8083"`
	IngestURL string `envconfig:"INGEST_URL" required:"true" desc:"base URL of ingest, e.g. http://trigger-api-ingest:8081"`
	InboxURL  string `envconfig:"INBOX_URL" required:"true" desc:"base URL of the inbox, e.g. http://trigger-api-inbox:8082"`
	// The Secret's admin-tokens as the chart stores them, so the value can come straight from it.
	AdminTokens  string        `envconfig:"ADMIN_TOKENS" required:"true" secret:"true" desc:"admin tokens (id:secret), comma- or newline-separated as in the Secret's admin-tokens; the first is used"`
	TenantPrefix string        `envconfig:"DEMO_TENANT_PREFIX" default:"demo" desc:"the demo's two tenants are <prefix>-acme-<random> and <prefix>-globex-<random>; both are suspended at the end"`
	Timeout      time.Duration `envconfig:"DEMO_TIMEOUT" default:"3m" desc:"the most the whole demo may take"`
}

// Validate rejects settings the demo cannot run with.
func (c Config) Validate() error {
	if c.adminToken() == "" {
		return errors.New("TRIGGER_ADMIN_TOKENS holds no token")
	}
	if c.Timeout <= 0 {
		return errors.New("TRIGGER_DEMO_TIMEOUT must be positive")
	}
	return nil
}

func (c Config) adminToken() string {
	first, _, _ := strings.Cut(strings.TrimSpace(strings.ReplaceAll(c.AdminTokens, "\n", ",")), ",")
	return strings.TrimSpace(first)
}

// Run replays the demo against the three services, printing every call to out, and consumes
// the events itself: it leases them with a long poll and acknowledges them under their leases.
// At the end it suspends both tenants, so their keys stop working. Any answer other than the
// expected one ends it with an error.
func Run(ctx context.Context, out io.Writer, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	ep := Endpoints{Admin: cfg.AdminURL, Ingest: cfg.IngestURL, Inbox: cfg.InboxURL}
	suffix := RandomSuffix()
	res := Result{TenantA: cfg.TenantPrefix + "-acme-" + suffix, TenantB: cfg.TenantPrefix + "-globex-" + suffix}

	Step(out, "1. Tenants and API keys: %s (A) and %s (B), created through the admin API", res.TenantA, res.TenantB)
	a, b, err := NewTenants(ctx, out, ep, cfg.adminToken(), res.TenantA, res.TenantB)
	if err != nil {
		return res, err
	}
	defer retire(out, ep, cfg.adminToken(), a, b)
	if err := PublishAndList(ctx, out, &a, &b, &res); err != nil {
		return res, err
	}
	Step(out, "   Isolation: tenant B's key on tenant A's event → 404, as if it did not exist")
	if err := Isolated(ctx, b, a.Event); err != nil {
		return res, err
	}
	Step(out, "6. POST /inbox/pull and POST /ack as each tenant → leased, processed and acknowledged")
	tenants := []Tenant{a, b}
	for _, t := range tenants {
		if err := consume(ctx, t); err != nil {
			return res, err
		}
		res.Processed = append(res.Processed, t.Event)
	}
	if err := Settled(ctx, out, tenants); err != nil {
		return res, err
	}
	fmt.Fprintf(out, "\nDemo passed: each tenant saw only its own event, and both were leased, acknowledged and delivered.\n")
	return res, nil
}

// consume leases the tenant's event with long polls until it comes or ctx ends, failing on anything else
// leased, and acknowledges it under its lease.
func consume(ctx context.Context, t Tenant) error {
	// Short long polls: each call is bounded by CallTimeout, which a 20 s wait would outlast.
	// The event is listed already, so the first pull takes it unless the index lags.
	wait, most := 5, 10
	for {
		page, err := t.Printed.Inbox.Pull(ctx, api.PullRequest{MaxEvents: &most, WaitSeconds: &wait})
		if err != nil {
			return err
		}
		for _, e := range page.Events {
			if e.EventID != t.Event {
				return fmt.Errorf("tenant %s leased %s, which it never posted", t.Name, e.EventID)
			}
			if e.LeaseID == "" || e.DeliveryCount < 1 {
				return fmt.Errorf("tenant %s: pull answered %s without a lease", t.Name, e.EventID)
			}
			ans, err := t.Printed.Inbox.AckLeases(ctx, []api.LeaseRef{{EventID: e.EventID, LeaseID: e.LeaseID}})
			if err != nil {
				return err
			}
			if ans.SucceededCount != 1 || ans.FailedCount != 0 {
				return fmt.Errorf("tenant %s: ack of %s under its lease: %+v", t.Name, e.EventID, ans)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("tenant %s: no pull leased %s: %w", t.Name, t.Event, ctx.Err())
		}
	}
}

// retire suspends the demo's tenants, so the keys it printed the prefixes of stop working. It
// runs whatever happened before, on a budget of its own.
func retire(out io.Writer, ep Endpoints, adminToken string, tenants ...Tenant) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*CallTimeout)
	defer cancel()
	admin, err := client.NewAdmin(ep.Admin, adminToken, client.WithHTTPClient(&http.Client{Timeout: CallTimeout}), client.WithRetries(0))
	if err != nil {
		return
	}
	suspended := "suspended"
	var done []string
	for _, t := range tenants {
		if t.Key == "" {
			continue
		}
		if _, err := admin.PatchTenant(ctx, t.ID, api.PatchTenantRequest{Status: &suspended}); err != nil {
			fmt.Fprintf(out, "\nsuspend tenant %s: %v\n", t.ID, err)
			continue
		}
		done = append(done, t.ID)
	}
	if len(done) > 0 {
		slices.Sort(done)
		fmt.Fprintf(out, "\nSuspended the demo's tenants %s: their keys no longer work.\n", strings.Join(done, ", "))
	}
}
