package noisy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
)

// prepareTimeout bounds each step of Prepare: a step that takes longer is a broken stack.
const prepareTimeout = 3 * time.Minute

// tenantSpec is one tenant the scenario creates and the limits it is created with.
type tenantSpec struct {
	id            string
	rateLimit     int
	maxDeliveries int
}

func (s *Scenario) tenantSpecs() []tenantSpec {
	return []tenantSpec{
		{id: neighbourTenant},
		// Two deliveries: A's 1 s leases lapse, and its big events soon fill the dead letters
		// too, so both of its listings stay full while its redrives bring them back.
		{id: readsTenant, maxDeliveries: 2},
		{id: burstTenant, rateLimit: s.cfg.BurstRateLimit},
		{id: parkedTenant},
		{id: deadTenant, maxDeliveries: 1},
	}
}

// createTenants creates each tenant with its limits and one key with every scope. The limits
// are set at creation, before any key is used: a changed limit would take up to the key
// cache's TTL to apply.
func (s *Scenario) createTenants(ctx context.Context) error {
	admin, err := client.NewAdmin(s.target.GatewayURL, s.target.AdminToken, client.WithHTTPClient(&http.Client{Timeout: callTimeout}))
	if err != nil {
		return err
	}
	for _, t := range s.tenantSpecs() {
		req := api.CreateTenantRequest{TenantID: t.id, Name: t.id}
		if t.rateLimit > 0 {
			req.RateLimit = &t.rateLimit
		}
		if t.maxDeliveries > 0 {
			req.MaxDeliveries = &t.maxDeliveries
		}
		if _, err := admin.CreateTenant(ctx, req); err != nil {
			return fmt.Errorf("create tenant %s: %w", t.id, err)
		}
		k, err := admin.IssueKey(ctx, t.id, api.IssueKeyRequest{Label: "noisy"})
		if err != nil {
			return fmt.Errorf("issue a key for %s: %w", t.id, err)
		}
		s.keys[t.id] = k.APIKey
	}
	return nil
}

// setupClient is for Prepare's own calls, which are not part of what either actor is judged
// on: they fail Prepare instead. Loading goes as fast as the machine allows, which on a quick
// one is faster than a tenant's default rate: its calls wait out each 429 for as long as
// prepareTimeout leaves them.
func (s *Scenario) setupClient(tenantID string) (*client.Client, error) {
	return client.New(s.target.GatewayURL, s.keys[tenantID], client.WithHTTPClient(&http.Client{Timeout: callTimeout}),
		client.WithRetries(setupRetries))
}

// setupRetries is more refusals than prepareTimeout has room for, at a second each.
const setupRetries = 1000

// refusedFor reports whether err is the tenant's rate limit refusing a call, which stored
// nothing, and how long the API asked to wait before the next.
func refusedFor(err error) (time.Duration, bool) {
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusTooManyRequests {
		return 0, false
	}
	return max(e.RetryAfter, 100*time.Millisecond), true
}

// bigEvent is an event padded to size bytes, under the API's 256 KiB.
func bigEvent(size int) json.RawMessage {
	const head, tail = `{"event_type":"abuser.big","pad":"`, `"}`
	return json.RawMessage(head + strings.Repeat("x", max(size-len(head)-len(tail), 0)) + tail)
}

// loadBig fills A's read inbox with the largest events the API accepts.
func (s *Scenario) loadBig(ctx context.Context) error {
	c, err := s.setupClient(readsTenant)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, prepareTimeout)
	defer cancel()
	body := bigEvent(s.cfg.BigEventBytes)
	jobs := make(chan int)
	errs := make([]error, s.cfg.BigEvents)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range jobs {
				_, _, errs[i] = c.Publish(ctx, body, fmt.Sprintf("big-%d", i))
			}
		})
	}
	for i := range s.cfg.BigEvents {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("load A's big events: %w", err)
	}
	return nil
}

// loadDead publishes DeadEvents small events to A's dead tenant and kills them all: each is
// leased for 1 s and let lapse, and with max_deliveries 1 the next pull buries it.
func (s *Scenario) loadDead(ctx context.Context) error {
	if s.cfg.DeadEvents == 0 {
		return nil
	}
	c, err := s.setupClient(deadTenant)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, prepareTimeout)
	defer cancel()
	small := json.RawMessage(`{"event_type":"abuser.dead","n":1}`)
	for left := s.cfg.DeadEvents; left > 0; {
		k := min(left, api.MaxBatchEvents)
		batch := make([]json.RawMessage, k)
		for i := range batch {
			batch[i] = small
		}
		out, err := c.PublishBatch(ctx, batch)
		if wait, refused := refusedFor(err); refused {
			// A batch is never retried by the client; a refused one stored nothing.
			if err := client.Sleep(ctx, wait); err != nil {
				return fmt.Errorf("load A's dead letters: %w", err)
			}
			continue
		}
		if err != nil || out.FailedCount > 0 {
			return fmt.Errorf("load A's dead letters: %d failed: %v", out.FailedCount, err)
		}
		left -= k
	}
	return s.killAll(ctx, c)
}

// killAll pulls with 1 s leases until every event of the dead tenant is dead: pulls lease the
// visible ones, and those whose lease lapsed are buried by the next pull.
func (s *Scenario) killAll(ctx context.Context, c *client.Client) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		page, err := c.Pull(ctx, api.PullRequest{MaxEvents: ptr(api.MaxPullEvents), VisibilityTimeoutSeconds: ptr(1)})
		if err != nil && !client.Transient(err) {
			return fmt.Errorf("kill A's dead letters: %w", err)
		}
		if err == nil && len(page.Events) > 0 {
			continue
		}
		n := 0
		if err == nil {
			if n, err = countDead(ctx, c); err != nil {
				return err
			}
			if n >= s.cfg.DeadEvents {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kill A's dead letters: %d of %d dead: %w", n, s.cfg.DeadEvents, ctx.Err())
		case <-tick.C:
		}
	}
}

func countDead(ctx context.Context, c *client.Client) (int, error) {
	n, cursor := 0, ""
	for {
		page, err := c.Dead(ctx, api.MaxListLimit, cursor)
		if err != nil {
			return 0, fmt.Errorf("count A's dead letters: %w", err)
		}
		n += len(page.Events)
		if cursor = page.NextCursor; cursor == "" {
			return n, nil
		}
	}
}

// warmKeys makes one call with each key to each service, so every service has resolved every
// key before the flood of made-up keys spends the shared address's budget: a key a service
// knows is never refused for that budget, one it has not seen yet waits for it as a guess
// would (docs/api.md).
func (s *Scenario) warmKeys(ctx context.Context) error {
	for _, t := range s.tenantSpecs() {
		c, err := s.setupClient(t.id)
		if err != nil {
			return err
		}
		if _, err := c.Inbox(ctx, client.InboxQuery{Limit: 1}); err != nil {
			return fmt.Errorf("warm %s's key on inbox: %w", t.id, err)
		}
		_, err = c.GetEvent(ctx, "evt_00000000000000000000000000000000")
		if e, ok := errors.AsType[*client.Error](err); err != nil && (!ok || (e.Status != http.StatusNotFound && e.Status != http.StatusBadRequest)) {
			return fmt.Errorf("warm %s's key on ingest: %w", t.id, err)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// limitAbuser gives A's loaded tenants their AbuserRateLimit and new keys: a key the services
// have never seen is resolved afresh, so the new rate applies from its first call rather than
// after the key cache's TTL.
func (s *Scenario) limitAbuser(ctx context.Context) error {
	if s.cfg.AbuserRateLimit <= 0 {
		return nil
	}
	admin, err := client.NewAdmin(s.target.GatewayURL, s.target.AdminToken, client.WithHTTPClient(&http.Client{Timeout: callTimeout}))
	if err != nil {
		return err
	}
	rate := s.cfg.AbuserRateLimit
	for _, id := range []string{readsTenant, parkedTenant, deadTenant} {
		if _, err := admin.PatchTenant(ctx, id, api.PatchTenantRequest{RateLimit: &rate}); err != nil {
			return fmt.Errorf("limit tenant %s: %w", id, err)
		}
		k, err := admin.IssueKey(ctx, id, api.IssueKeyRequest{Label: "noisy-limited"})
		if err != nil {
			return fmt.Errorf("issue a key for %s: %w", id, err)
		}
		s.keys[id] = k.APIKey
	}
	return nil
}
