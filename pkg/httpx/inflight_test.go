package httpx_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// A tenant's requests past the cap answer 429 with Retry-After while its others are still in
// progress, another tenant's are served meanwhile, and once they end it is served again.
func TestInFlightCapsEachTenant(t *testing.T) {
	e := newAuthEnv(t, tenant.AuthConfig{})
	apitest.SeedTenant(t, e.store, "globex", 1)
	globex := apitest.SeedKey(t, e.store, "globex", apitest.KeyOptions{})
	engine := httpx.NewEngine(zap.NewNop(), func(context.Context) error { return nil })
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(2)
	f := httpx.NewInFlight(2)
	auth := httpx.RequireKey(e.auth, tenant.ScopeInboxRead)
	engine.GET("/slow", auth, f.Limit, func(c *gin.Context) {
		started.Done()
		<-release
		c.Status(http.StatusOK)
	})
	engine.GET("/fast", auth, f.Limit, func(c *gin.Context) { c.Status(http.StatusOK) })
	do := func(path, key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		engine.ServeHTTP(rec, req)
		return rec
	}
	var done sync.WaitGroup
	for range 2 {
		done.Go(func() {
			if rec := do("/slow", e.key); rec.Code != http.StatusOK {
				t.Errorf("a request within the cap: %d", rec.Code)
			}
		})
	}
	started.Wait()
	if rec := do("/fast", e.key); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("past the cap: %d (Retry-After %q), want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	// The cap is the tenant's own: a full one holds no other tenant back.
	if rec := do("/fast", globex); rec.Code != http.StatusOK {
		t.Fatalf("another tenant while acme is at its cap: %d, want 200", rec.Code)
	}
	close(release)
	done.Wait()
	if rec := do("/fast", e.key); rec.Code != http.StatusOK {
		t.Fatalf("after the others ended: %d", rec.Code)
	}
}

// A tenant's requests share DynamoDB call slots sized by its rate on this replica.
func TestInFlightGivesRequestsTheirTenantsCallSlots(t *testing.T) {
	for _, tc := range []struct{ rate, want int }{{50, httpx.MinTenantCalls}, {100, 1}, {101, 2}, {350, 4}, {100_000, httpx.MaxTenantCalls}} {
		e := newAuthEnv(t, tenant.AuthConfig{RateLimit: tc.rate})
		r := httpx.NewEngine(zap.NewNop(), func(context.Context) error { return nil })
		f := httpx.NewInFlight(10)
		r.GET("/things", httpx.RequireKey(e.auth, tenant.ScopeInboxRead), f.Limit, func(c *gin.Context) {
			c.Header("X-Slots", strconv.Itoa(ddb.CallSlots(c.Request.Context())))
			c.Status(http.StatusNoContent)
		})
		req := httptest.NewRequest(http.MethodGet, "/things", nil)
		req.Header.Set("Authorization", "Bearer "+e.key)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent || rec.Header().Get("X-Slots") != strconv.Itoa(tc.want) {
			t.Errorf("rate %d: %d, %q call slots; want %d", tc.rate, rec.Code, rec.Header().Get("X-Slots"), tc.want)
		}
	}
	if got := httpx.TenantCalls(0); got != httpx.MaxTenantCalls {
		t.Errorf("no rate limit: %d call slots, want %d", got, httpx.MaxTenantCalls)
	}
}
