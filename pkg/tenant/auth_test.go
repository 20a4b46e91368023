package tenant_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/storage"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	"github.com/trigger-api/trigger-api/pkg/tenant/tenanttest"
)

// clock is a manual clock shared by the code under test and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingStore counts the reads and last-use writes the authenticator makes, can fail them
// and can hold them until a gate opens.
type countingStore struct {
	*tenanttest.Memory
	mu                    sync.Mutex
	keyReads, tenantReads int
	failKeys, failTenants error
	keyGate               chan struct{} // when set, key reads wait for it to close
	useWrites             int
	usesInFlight, maxUses int
	useGate               chan struct{} // when set, last-use writes wait for it to close
	failUses              error
	panicReads            bool // key reads panic once their gate opens
}

func (s *countingStore) KeyByHash(ctx context.Context, hash string) (tenant.APIKey, error) {
	s.mu.Lock()
	s.keyReads++
	gate := s.keyGate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if err := ctx.Err(); err != nil {
		return tenant.APIKey{}, err
	}
	s.mu.Lock()
	err := s.failKeys
	s.mu.Unlock()
	if err != nil {
		return tenant.APIKey{}, err
	}
	return s.Memory.KeyByHash(ctx, hash)
}

func (s *countingStore) GetTenant(ctx context.Context, id string) (tenant.Tenant, error) {
	s.mu.Lock()
	s.tenantReads++
	err := s.failTenants
	s.mu.Unlock()
	if err != nil {
		return tenant.Tenant{}, err
	}
	return s.Memory.GetTenant(ctx, id)
}

// KeyAndTenant counts what one combined read does as a key read and, when the key exists,
// a tenant read, so the tests speak of both.
func (s *countingStore) KeyAndTenant(ctx context.Context, hash, tenantID string) (tenant.APIKey, tenant.Tenant, error) {
	k, err := s.KeyByHash(ctx, hash)
	s.mu.Lock()
	panicking := s.panicReads
	s.mu.Unlock()
	if panicking {
		panic("store bug")
	}
	if err != nil {
		return tenant.APIKey{}, tenant.Tenant{}, err
	}
	t, err := s.GetTenant(ctx, tenantID)
	return k, t, err
}

func (s *countingStore) RecordKeyUse(ctx context.Context, hash string, at, since time.Time) error {
	s.mu.Lock()
	s.useWrites++
	s.usesInFlight++
	s.maxUses = max(s.maxUses, s.usesInFlight)
	gate, err := s.useGate, s.failUses
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.usesInFlight--
		s.mu.Unlock()
	}()
	if gate != nil {
		<-gate
	}
	if err != nil {
		return err
	}
	return s.Memory.RecordKeyUse(ctx, hash, at, since)
}

// uses returns the last-use writes so far and the most that were in flight at once.
func (s *countingStore) uses() (writes, maxInFlight int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.useWrites, s.maxUses
}

func (s *countingStore) reads() (keys, tenants int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keyReads, s.tenantReads
}

func (s *countingStore) fail(keys, tenants error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failKeys, s.failTenants = keys, tenants
}

type authFixture struct {
	store *countingStore
	clock *clock
	raw   string
	key   tenant.APIKey
}

// newAuthFixture stores an active tenant "acme" with one active key and returns the key string.
func newAuthFixture(t *testing.T) authFixture {
	t.Helper()
	f := authFixture{store: &countingStore{Memory: tenanttest.NewMemory()}, clock: newClock()}
	ctx := context.Background()
	err := f.store.CreateTenant(ctx, tenant.Tenant{
		ID: "acme", Name: "Acme", Status: tenant.StatusActive,
		Partitions: 4, MaxDeliveries: 5, RetentionDays: 6, CreatedAt: f.clock.Now(), UpdatedAt: f.clock.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.raw, f.key = f.addKey(t, "acme", "acme")
	return f
}

// addKey stores a key issued to owner whose string names tenantInKey.
func (f authFixture) addKey(t *testing.T, tenantInKey, owner string) (string, tenant.APIKey) {
	t.Helper()
	k, err := apikey.New(tenantInKey)
	if err != nil {
		t.Fatal(err)
	}
	stored := tenant.APIKey{
		ID: "key_" + k.Hash()[:24], TenantID: owner, Hash: k.Hash(), Prefix: k.Prefix(),
		Scopes: []tenant.Scope{tenant.ScopeEventsWrite, tenant.ScopeInboxRead},
		Status: tenant.KeyActive, CreatedAt: f.clock.Now(),
	}
	if err := f.store.CreateKey(context.Background(), stored); err != nil {
		t.Fatal(err)
	}
	return k.String(), stored
}

func (f authFixture) auth(cfg tenant.AuthConfig) *tenant.Authenticator {
	return tenant.NewAuthenticator(f.store, cfg, f.clock.Now)
}

func mustAuth(t *testing.T, a *tenant.Authenticator, raw string) tenant.Principal {
	t.Helper()
	p, err := a.Authenticate(context.Background(), raw)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return p
}

func mustRefuse(t *testing.T, a *tenant.Authenticator, raw string) {
	t.Helper()
	_, err := a.Authenticate(context.Background(), raw)
	// Identical, unwrapped: nothing may tell a caller why a key was refused.
	if err != tenant.ErrUnauthenticated {
		t.Fatalf("authenticate: got %v, want exactly ErrUnauthenticated", err)
	}
}

func TestAuthenticateResolvesPrincipal(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	p := mustAuth(t, f.auth(tenant.AuthConfig{}), f.raw)
	if p.TenantID != "acme" || p.KeyID != f.key.ID || p.KeyPrefix != f.key.Prefix ||
		p.Partitions != 4 || p.MaxDeliveries != 5 || p.RetentionDays != 6 {
		t.Fatalf("principal %+v", p)
	}
	if !p.Can(tenant.ScopeEventsWrite) || !p.Can(tenant.ScopeInboxRead) || p.Can(tenant.ScopeInboxAck) {
		t.Fatalf("principal scopes %v, want events:write and inbox:read only", p.Scopes)
	}
}

func TestAuthenticateCacheHitMakesNoStoreCall(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	a := f.auth(tenant.AuthConfig{})
	mustAuth(t, a, f.raw)
	f.clock.Advance(29 * time.Second)
	mustAuth(t, a, f.raw)
	if keys, tenants := f.store.reads(); keys != 1 || tenants != 1 {
		t.Fatalf("store read %d keys and %d tenants for two calls, want 1 and 1", keys, tenants)
	}
	if s := a.Stats(); s.Hits != 1 || s.Misses != 1 {
		t.Fatalf("stats %+v, want 1 hit and 1 miss", s)
	}
}

func TestAuthenticatePositiveTTLAtMost30s(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		ttl  time.Duration
		want time.Duration
	}{
		{"unset-means-30s", 0, 30 * time.Second},
		{"hour-capped-to-30s", time.Hour, 30 * time.Second},
		{"negative-means-30s", -time.Second, 30 * time.Second},
		{"10s-kept", 10 * time.Second, 10 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newAuthFixture(t)
			a := f.auth(tenant.AuthConfig{PositiveTTL: tc.ttl})
			mustAuth(t, a, f.raw)
			if _, err := f.store.RevokeKey(context.Background(), "acme", f.key.ID, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			// The cached answer stands until the TTL ends, and not a moment longer.
			f.clock.Advance(tc.want - time.Millisecond)
			mustAuth(t, a, f.raw)
			f.clock.Advance(time.Millisecond)
			mustRefuse(t, a, f.raw)
			if keys, _ := f.store.reads(); keys != 2 {
				t.Fatalf("store read the key %d times, want 2", keys)
			}
		})
	}
}

func TestAuthenticateRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// setup returns the key to present; it may change the store.
		setup func(t *testing.T, f authFixture) string
		// storeRead says whether the refusal needs a database read at all.
		storeRead bool
	}{
		{"unknown-key", func(t *testing.T, f authFixture) string {
			k, _ := apikey.New("acme")
			return k.String()
		}, true},
		{"revoked-key", func(t *testing.T, f authFixture) string {
			if _, err := f.store.RevokeKey(context.Background(), "acme", f.key.ID, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			return f.raw
		}, true},
		{"expired-key", func(t *testing.T, f authFixture) string {
			if _, err := f.store.ExpireKeyBy(context.Background(), "acme", f.key.ID, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			return f.raw
		}, true},
		{"suspended-tenant", func(t *testing.T, f authFixture) string {
			if _, err := f.store.UpdateTenant(context.Background(), "acme", tenant.StatusPatch(tenant.StatusSuspended), f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			return f.raw
		}, true},
		{"tenant-gone", func(t *testing.T, f authFixture) string {
			raw, _ := f.addKey(t, "ghost", "ghost")
			return raw
		}, true},
		{"wrong-tenant-in-key", func(t *testing.T, f authFixture) string {
			// A key string naming globex whose stored record belongs to acme.
			raw, _ := f.addKey(t, "globex", "acme")
			return raw
		}, true},
		{"malformed", func(*testing.T, authFixture) string { return "not-a-key" }, false},
		{"empty", func(*testing.T, authFixture) string { return "" }, false},
		{"bad-checksum", func(_ *testing.T, f authFixture) string {
			last := f.raw[len(f.raw)-1]
			swap := byte('A')
			if last == 'A' {
				swap = 'B'
			}
			return f.raw[:len(f.raw)-1] + string(swap)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newAuthFixture(t)
			raw := tc.setup(t, f)
			mustRefuse(t, f.auth(tenant.AuthConfig{}), raw)
			keys, _ := f.store.reads()
			if tc.storeRead && keys != 1 {
				t.Fatalf("store read %d keys, want 1", keys)
			}
			if !tc.storeRead && keys != 0 {
				t.Fatalf("a malformed key cost %d database reads, want none", keys)
			}
		})
	}
}

func TestAuthenticateNegativeCaching(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	a := f.auth(tenant.AuthConfig{NegativeTTL: 2 * time.Second})
	k, err := apikey.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, a, k.String())
	// The key comes into existence; the remembered refusal still stands until its TTL ends.
	if err := f.store.CreateKey(context.Background(), tenant.APIKey{
		ID: "key_000000000000000000000001", TenantID: "acme", Hash: k.Hash(), Prefix: k.Prefix(),
		Scopes: tenant.AllScopes, Status: tenant.KeyActive, CreatedAt: f.clock.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2*time.Second - time.Millisecond)
	mustRefuse(t, a, k.String())
	if keys, _ := f.store.reads(); keys != 1 {
		t.Fatalf("a remembered refusal read the store: %d key reads, want 1", keys)
	}
	f.clock.Advance(time.Millisecond)
	mustAuth(t, a, k.String())
	if keys, _ := f.store.reads(); keys != 2 {
		t.Fatalf("after the negative TTL: %d key reads, want 2", keys)
	}
}

func TestAuthenticateStoreFailurePassedThroughNotCached(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		keys, tenants error
	}{
		{"key-read-fails", storage.ErrUnavailable, nil},
		{"tenant-read-fails", nil, storage.ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newAuthFixture(t)
			a := f.auth(tenant.AuthConfig{})
			f.store.fail(tc.keys, tc.tenants)
			_, err := a.Authenticate(context.Background(), f.raw)
			if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, tenant.ErrUnauthenticated) {
				t.Fatalf("got %v, want the store's ErrUnavailable and not a refusal", err)
			}
			// Same instant, store healthy again: a cached failure would still answer here.
			f.store.fail(nil, nil)
			mustAuth(t, a, f.raw)
			if keys, _ := f.store.reads(); keys != 2 {
				t.Fatalf("store read the key %d times, want 2", keys)
			}
		})
	}
}

func TestAuthenticateExpiryWhileCachedRefused(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	if _, err := f.store.ExpireKeyBy(context.Background(), "acme", f.key.ID, f.clock.Now().Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	a := f.auth(tenant.AuthConfig{PositiveTTL: 30 * time.Second})
	mustAuth(t, a, f.raw)
	f.clock.Advance(10*time.Second - time.Millisecond)
	mustAuth(t, a, f.raw)
	f.clock.Advance(time.Millisecond)
	mustRefuse(t, a, f.raw)
	if keys, _ := f.store.reads(); keys != 1 {
		t.Fatalf("store read the key %d times, want 1: the expiry must be checked on the cached entry", keys)
	}
}

func TestAuthenticateBoundedCacheStaysCorrect(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	a := f.auth(tenant.AuthConfig{MaxEntries: 2})
	raws := []string{f.raw}
	for range 3 {
		raw, _ := f.addKey(t, "acme", "acme")
		raws = append(raws, raw)
	}
	unknown, _ := apikey.New("acme")
	for round := range 3 {
		for _, raw := range raws {
			if p := mustAuth(t, a, raw); p.TenantID != "acme" {
				t.Fatalf("round %d: principal %+v", round, p)
			}
		}
		mustRefuse(t, a, unknown.String())
	}
}

func TestAuthenticateConcurrent(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	a := f.auth(tenant.AuthConfig{})
	unknown, _ := apikey.New("acme")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			for range 50 {
				if i%2 == 0 {
					if _, err := a.Authenticate(context.Background(), f.raw); err != nil {
						errs <- err
						return
					}
				} else if _, err := a.Authenticate(context.Background(), unknown.String()); err != tenant.ErrUnauthenticated {
					errs <- errors.Join(errors.New("unknown key not refused"), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
