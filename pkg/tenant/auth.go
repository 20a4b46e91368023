package tenant

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/trigger-api/trigger-api/pkg/apikey"
)

// Principal is who a request acts for: resolved from the key and only from the key.
type Principal struct {
	TenantID      string
	KeyID         string
	KeyPrefix     string
	Scopes        []Scope
	Partitions    int
	MaxDeliveries int
	RetentionDays int
	RateLimit     int // the tenant's own; 0: the service's default
	expiresAt     time.Time
}

// Can reports whether the principal's key grants scope.
func (p Principal) Can(scope Scope) bool { return slices.Contains(p.Scopes, scope) }

// AuthConfig sets the resolution cache. Revocation, expiry set by a roll and suspension take
// effect within PositiveTTL; a key's own expiry time is checked on every request.
type AuthConfig struct {
	PositiveTTL time.Duration `envconfig:"KEY_CACHE_TTL" default:"30s" desc:"how long a resolved key is trusted before it is read again (at most 30s)"`
	NegativeTTL time.Duration `envconfig:"KEY_CACHE_NEGATIVE_TTL" default:"5s" desc:"how long a refused key is remembered, sparing the database from repeated bad keys"`
	MaxEntries  int           `envconfig:"KEY_CACHE_MAX_ENTRIES" default:"100000" desc:"upper bound on cached keys"`
	// RateLimit is per replica: a tenant's traffic spread over n replicas may reach n times it.
	RateLimit int `envconfig:"TENANT_RATE_LIMIT" default:"1000" desc:"requests per second one tenant may make to this replica, bursts of up to a second's worth, unless the tenant has its own rate_limit; over it: 429 with Retry-After. 0 turns the default off"`
}

// CacheStats counts cache outcomes.
type CacheStats struct{ Hits, Misses uint64 }

// Authenticator resolves bearer keys to principals, caching both answers so that a known key
// costs no database read on the hot path.
type Authenticator struct {
	store Store
	cfg   AuthConfig
	now   func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
	stats   CacheStats
	limits  *limiter
}

type cacheEntry struct {
	principal Principal
	ok        bool
	until     time.Time
}

// NewAuthenticator returns an authenticator over store; now may be nil for the wall clock.
func NewAuthenticator(store Store, cfg AuthConfig, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	if cfg.PositiveTTL <= 0 || cfg.PositiveTTL > 30*time.Second {
		cfg.PositiveTTL = 30 * time.Second
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = 5 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100000
	}
	return &Authenticator{store: store, cfg: cfg, now: now, entries: make(map[string]cacheEntry), limits: newLimiter(cfg.MaxEntries)}
}

// Admit spends one request of p's tenant's rate, or answers *RateLimitedError.
func (a *Authenticator) Admit(p Principal) error {
	rate := p.RateLimit
	if rate == 0 {
		rate = a.cfg.RateLimit
	}
	if wait, ok := a.limits.take(p.TenantID, rate, a.now()); !ok {
		return &RateLimitedError{RetryAfter: wait}
	}
	return nil
}

// Stats returns the cache counters so far.
func (a *Authenticator) Stats() CacheStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// Authenticate resolves raw to a principal. Every refusal is ErrUnauthenticated; a database
// failure is returned as it is so the caller can answer 503 rather than 401.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (Principal, error) {
	key, err := apikey.Parse(raw)
	if err != nil {
		return Principal{}, ErrUnauthenticated
	}
	hash := key.Hash()
	now := a.now()

	a.mu.Lock()
	e, found := a.entries[hash]
	if found && now.Before(e.until) {
		a.stats.Hits++
		a.mu.Unlock()
		if !e.ok || (!e.principal.expiresAt.IsZero() && !now.Before(e.principal.expiresAt)) {
			return Principal{}, ErrUnauthenticated
		}
		return e.principal, nil
	}
	a.stats.Misses++
	a.mu.Unlock()

	p, err := a.resolve(ctx, hash, key.TenantID, now)
	switch {
	case err == nil:
		a.remember(hash, cacheEntry{principal: p, ok: true, until: now.Add(a.cfg.PositiveTTL)})
		return p, nil
	case errors.Is(err, ErrUnauthenticated):
		a.remember(hash, cacheEntry{until: now.Add(a.cfg.NegativeTTL)})
		return Principal{}, ErrUnauthenticated
	default:
		return Principal{}, err
	}
}

func (a *Authenticator) resolve(ctx context.Context, hash, tenantID string, now time.Time) (Principal, error) {
	k, err := a.store.KeyByHash(ctx, hash)
	if errors.Is(err, ErrKeyNotFound) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	// The tenant in the key string must be the one the key was issued to.
	if k.TenantID != tenantID || !k.Usable(now) {
		return Principal{}, ErrUnauthenticated
	}
	t, err := a.store.GetTenant(ctx, k.TenantID)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	if t.Status != StatusActive {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{
		TenantID:      t.ID,
		KeyID:         k.ID,
		KeyPrefix:     k.Prefix,
		Scopes:        k.Scopes,
		Partitions:    t.Partitions,
		MaxDeliveries: t.MaxDeliveries,
		RetentionDays: t.RetentionDays,
		RateLimit:     t.RateLimit,
		expiresAt:     k.ExpiresAt,
	}, nil
}

func (a *Authenticator) remember(hash string, e cacheEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.entries) >= a.cfg.MaxEntries {
		now := a.now()
		for h, old := range a.entries {
			if !now.Before(old.until) {
				delete(a.entries, h)
			}
		}
		// Still full: drop arbitrary entries; they are only a cache.
		for h := range a.entries {
			if len(a.entries) < a.cfg.MaxEntries {
				break
			}
			delete(a.entries, h)
		}
	}
	a.entries[hash] = e
}
