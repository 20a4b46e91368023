package httpx_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	"github.com/trigger-api/trigger-api/pkg/tenant/tenanttest"
)

// readCounter counts the key reads the authenticator makes.
type readCounter struct {
	*tenanttest.Memory
	mu    sync.Mutex
	reads int
}

func (s *readCounter) KeyByHash(ctx context.Context, hash string) (tenant.APIKey, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.Memory.KeyByHash(ctx, hash)
}

func (s *readCounter) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

type authEnv struct {
	auth   *tenant.Authenticator
	store  *readCounter
	router http.Handler
	key    string
}

func newAuthEnv(t *testing.T, cfg tenant.AuthConfig) authEnv {
	t.Helper()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	store := &readCounter{Memory: tenanttest.NewMemory()}
	ctx := context.Background()
	if err := store.CreateTenant(ctx, tenant.Tenant{ID: "acme", Name: "Acme", Status: tenant.StatusActive, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	k, err := apikey.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateKey(ctx, tenant.APIKey{ID: "key_1", TenantID: "acme", Hash: k.Hash(), Prefix: k.Prefix(),
		Scopes: tenant.AllScopes, Status: tenant.KeyActive, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	auth := tenant.NewAuthenticator(store, cfg, func() time.Time { return now })
	r := httpx.NewEngine(zap.NewNop(), func(context.Context) error { return nil })
	r.GET("/things", httpx.RequireKey(auth, tenant.ScopeInboxRead), func(c *gin.Context) { c.Status(http.StatusNoContent) })
	return authEnv{auth: auth, store: store, router: r, key: k.String()}
}

type answer struct {
	status     int
	retryAfter string
	code       string
	message    string
}

// call sends GET /things from remote with key (none when empty) and the given X-Forwarded-For.
func (e authEnv) call(t *testing.T, remote, key string, xff ...string) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/things", nil)
	req.RemoteAddr = remote
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	rec := httptest.NewRecorder()
	e.router.ServeHTTP(rec, req)
	a := answer{status: rec.Code, retryAfter: rec.Header().Get("Retry-After")}
	if rec.Code != http.StatusNoContent {
		var env struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("body %s: %v", rec.Body, err)
		}
		a.code, a.message = env.Error.Code, env.Error.Message
	}
	return a
}

func unknownKey(t *testing.T) string {
	t.Helper()
	k, err := apikey.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	return k.String()
}

const attacker = "198.51.100.7:4711"

func TestRequireKeyLimitsFailuresPerAddress(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, tenant.AuthConfig{FailureBurst: 3, FailureRate: 0.25})
	if a := e.call(t, attacker, e.key); a.status != http.StatusNoContent {
		t.Fatalf("valid key: %+v", a)
	}
	// Every failure within the budget answers the one identical 401.
	var first answer
	for i, key := range []string{unknownKey(t), "malformed", ""} {
		a := e.call(t, attacker, key)
		if i == 0 {
			first = a
		}
		if a.status != http.StatusUnauthorized || a != first {
			t.Fatalf("failure %d: %+v, want the same 401 as %+v", i+1, a, first)
		}
	}
	reads := e.store.count()
	for _, key := range []string{unknownKey(t), unknownKey(t), "malformed", ""} {
		a := e.call(t, attacker, key)
		if a.status != http.StatusTooManyRequests || a.code != "rate_limited" || a.retryAfter != "4" {
			t.Fatalf("over the budget: %+v, want 429 rate_limited with Retry-After 4", a)
		}
	}
	if got := e.store.count(); got != reads {
		t.Fatalf("an address over its budget cost %d key reads, want none", got-reads)
	}
	// The valid key from the same address still works, and so do other addresses' failures.
	if a := e.call(t, attacker, e.key); a.status != http.StatusNoContent {
		t.Fatalf("valid key from a limited address: %+v", a)
	}
	if a := e.call(t, "203.0.113.9:1", unknownKey(t)); a != first {
		t.Fatalf("another address: %+v, want %+v", a, first)
	}
}

func TestRequireKeyIgnoresForwardedForByDefault(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, tenant.AuthConfig{FailureBurst: 2, FailureRate: 1})
	// A client naming a new address in each request still spends its connection's budget.
	var last answer
	for i := range 3 {
		last = e.call(t, attacker, unknownKey(t), "192.0.2."+string(rune('1'+i)))
	}
	if last.status != http.StatusTooManyRequests {
		t.Fatalf("third failure with made-up X-Forwarded-For: %+v, want 429", last)
	}
}

func TestRequireKeyTrustsConfiguredProxies(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, tenant.AuthConfig{FailureBurst: 1, FailureRate: 1, TrustedProxies: 1})
	const lb = "10.0.0.5:80"
	// The client's own entries (on the left) are not read: the load balancer's entry is.
	if a := e.call(t, lb, unknownKey(t), "192.0.2.1, 198.51.100.7"); a.status != http.StatusUnauthorized {
		t.Fatalf("first failure: %+v", a)
	}
	if a := e.call(t, lb, unknownKey(t), "192.0.2.2", "198.51.100.7"); a.status != http.StatusTooManyRequests {
		t.Fatalf("second failure from 198.51.100.7: %+v, want 429", a)
	}
	// Other clients behind the same load balancer have their own budgets.
	if a := e.call(t, lb, unknownKey(t), "198.51.100.8"); a.status != http.StatusUnauthorized {
		t.Fatalf("another client behind the load balancer: %+v, want 401", a)
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		remote  string
		xff     []string
		proxies int
		want    string
	}{
		{"ipv4-remote", "192.0.2.1:5000", nil, 0, "192.0.2.1"},
		{"xff-ignored-without-proxies", "192.0.2.1:5000", []string{"203.0.113.1"}, 0, "192.0.2.1"},
		{"one-proxy-rightmost", "10.0.0.1:80", []string{"203.0.113.1, 198.51.100.2"}, 1, "198.51.100.2"},
		{"two-proxies-second-from-right", "10.0.0.1:80", []string{"203.0.113.1, 198.51.100.2, 10.0.0.9"}, 2, "198.51.100.2"},
		{"headers-read-as-one-list", "10.0.0.1:80", []string{"203.0.113.1", "198.51.100.2"}, 1, "198.51.100.2"},
		{"fewer-hops-than-proxies-leftmost", "10.0.0.1:80", []string{"198.51.100.2"}, 3, "198.51.100.2"},
		{"no-xff-remote", "10.0.0.1:80", nil, 1, "10.0.0.1"},
		{"garbage-entry-remote", "10.0.0.1:80", []string{"not-an-ip"}, 1, "10.0.0.1"},
		{"ipv6-per-64", "[2001:db8:1:2:3:4:5:6]:443", nil, 0, "2001:db8:1:2::/64"},
		{"ipv4-mapped-ipv6", "[::ffff:192.0.2.1]:443", nil, 0, "192.0.2.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if got := httpx.ClientAddr(req, tc.proxies); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
