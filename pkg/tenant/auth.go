package tenant

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
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

// AuthConfig sets the resolution cache and the failure budget. Revocation, expiry set by a roll
// and suspension take effect within PositiveTTL; a key's own expiry time is checked on every
// request.
type AuthConfig struct {
	PositiveTTL time.Duration `envconfig:"KEY_CACHE_TTL" default:"30s" desc:"how long a resolved key is trusted before it is read again (at most 30s)"`
	NegativeTTL time.Duration `envconfig:"KEY_CACHE_NEGATIVE_TTL" default:"5s" desc:"how long a refused key is remembered, sparing the database from repeated bad keys"`
	MaxEntries  int           `envconfig:"KEY_CACHE_MAX_ENTRIES" default:"100000" desc:"upper bound on cached known keys; refused keys have a room of their own and cannot push them out"`
	// NegativeMaxEntries is smaller than MaxEntries: refused keys are cheap to forget, since a
	// forgotten one only costs a read that the failure budget already bounds.
	NegativeMaxEntries int `envconfig:"KEY_CACHE_NEGATIVE_MAX_ENTRIES" default:"10000" desc:"upper bound on remembered refused keys; the least recently seen is forgotten first"`
	// RateLimit is per replica unless RateReplicas names the replicas: a tenant's traffic spread
	// over n replicas may otherwise reach n times it.
	RateLimit int `envconfig:"TENANT_RATE_LIMIT" default:"1000" desc:"requests per second one tenant may make to this replica, bursts of up to a second's worth, unless the tenant has its own rate_limit; over it: 429 with Retry-After. 0 turns the default off"`
	// RateReplicas makes the rate the fleet's: each replica admits its share, which holds as
	// long as the load balancer spreads a tenant's requests evenly (an ALB and kube-proxy do so
	// per request or connection; a tenant on one long-lived connection gets one share).
	RateReplicas string `envconfig:"TENANT_RATE_REPLICAS" desc:"a host name that resolves to every replica of this service (a headless Service's name): a tenant's rate is then for all replicas together, each admitting the rate divided by the number of addresses, re-resolved every 5s. Empty: the rate holds per replica"`
	// The failure budget is per replica too, and per address: an address behind a shared NAT
	// shares its budget, but never for keys already known to be good.
	FailureBurst        int     `envconfig:"AUTH_FAILURE_BURST" default:"20" desc:"failed authentications one client address may make to this replica before its requests with keys not known to be good are answered 429 rate_limited with Retry-After, without a database read; an address also has at most 2 such reads in flight, the rest waiting their turn. 0 turns both off"`
	FailureRate         float64 `envconfig:"AUTH_FAILURE_RATE" default:"1" desc:"failed authentications per second a client address regains once it has spent TRIGGER_AUTH_FAILURE_BURST"`
	FailureMaxAddresses int     `envconfig:"AUTH_FAILURE_MAX_ADDRESSES" default:"100000" desc:"client addresses whose failures are remembered; beyond it the one that failed least recently is forgotten"`
	// A client that ignores Retry-After and asks again at once makes each refusal cost more
	// than the work it is refused: answering late slows such a client to its own pace of
	// connections, and the slots bound what the waiting refusals hold.
	RefusalDelay   time.Duration `envconfig:"TENANT_REFUSAL_DELAY" default:"1s" desc:"how long a 429 for the tenant's own limits (rate, requests in progress, parked polls, reads at once) waits before it is answered, so that a client retrying at once cannot spin; each waits up to half as long again at random, so refusals held together are not answered together; 0 answers at once"`
	RefusalSlots   int           `envconfig:"TENANT_REFUSAL_SLOTS" default:"256" desc:"refusals this replica holds back at once for TRIGGER_TENANT_REFUSAL_DELAY; past them refusals are answered at once"`
	TrustedProxies int           `envconfig:"TRUSTED_PROXIES" default:"0" desc:"proxies or load balancers in front of the service that append to X-Forwarded-For; the client address is the one the outermost of them saw. 0: X-Forwarded-For is ignored and the connection's address is the client"`
}

// maxUseWriters bounds the goroutines recording last uses: under a burst of first uses the
// writes wait for a later request rather than pile up.
const maxUseWriters = 8

// recordUseTimeout bounds one last-use write, which no request waits for.
const recordUseTimeout = 5 * time.Second

// CacheStats counts cache outcomes.
type CacheStats struct{ Hits, Misses uint64 }

// Authenticator resolves bearer keys to principals, caching both answers so that a known key
// costs no database read on the hot path, and limits the failed authentications of each client
// address before they reach the database.
type Authenticator struct {
	store Store
	cfg   AuthConfig
	now   func() time.Time

	cache        *keyCache
	failures     *failureLimiter
	hits, misses atomic.Uint64
	limits       *limiter
	writes       sync.WaitGroup
	// replicas shares each tenant's rate: 1 until FollowReplicas counts them.
	replicas atomic.Int64
	// held are the refusals waiting out RefusalDelay.
	held chan struct{}
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
	if cfg.NegativeMaxEntries <= 0 {
		cfg.NegativeMaxEntries = 10000
	}
	if cfg.FailureMaxAddresses <= 0 {
		cfg.FailureMaxAddresses = 100000
	}
	cfg.TrustedProxies = max(cfg.TrustedProxies, 0)
	a := &Authenticator{
		store: store, cfg: cfg, now: now,
		cache:    newKeyCache(cfg.MaxEntries, cfg.NegativeMaxEntries, maxUseWriters),
		failures: newFailureLimiter(cfg.FailureBurst, cfg.FailureRate, cfg.FailureMaxAddresses),
		limits:   newLimiter(cfg.MaxEntries),
		held:     make(chan struct{}, max(cfg.RefusalSlots, 0)),
	}
	a.replicas.Store(1)
	return a
}

// TrustedProxies is how many proxies' X-Forwarded-For entries name the client.
func (a *Authenticator) TrustedProxies() int { return a.cfg.TrustedProxies }

// Admit spends one request of p's tenant's rate, or answers *RateLimitedError.
func (a *Authenticator) Admit(p Principal) error {
	if wait, ok := a.limits.take(p.TenantID, a.Rate(p), a.now()); !ok {
		return &RateLimitedError{RetryAfter: wait}
	}
	return nil
}

// Paid answers *RateLimitedError while p's tenant still owes for work charged since it was
// admitted: a request that waited for its turn (a payload-bearing read) goes ahead only once
// the work done before it is paid for, or many admitted at once would each add a second's worth.
func (a *Authenticator) Paid(p Principal) error {
	if wait, owes := a.limits.owes(p.TenantID, a.Rate(p), a.now()); owes {
		return &RateLimitedError{RetryAfter: wait}
	}
	return nil
}

// Hold delays the answer to err when it is the tenant's own rate or cap (*RateLimitedError) and
// a slot is free: it returns after RefusalDelay, or once ctx ends. Anything else returns at once.
func (a *Authenticator) Hold(ctx context.Context, err error) {
	if _, ok := errors.AsType[*RateLimitedError](err); !ok || a.cfg.RefusalDelay <= 0 {
		return
	}
	select {
	case a.held <- struct{}{}:
	default:
		return
	}
	defer func() { <-a.held }()
	t := time.NewTimer(refusalWait(a.cfg.RefusalDelay, rand.Float64()))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// refusalWait is the delay of one refusal, r in [0, 1) drawn for it. A client that fires many
// requests at once (a pool of long polls, say) is refused many at once; answered after one
// fixed delay, they would all come back together, each burst costing every replica's CPU a
// spike that other tenants' requests wait behind, and the client's retries would stay in step.
func refusalWait(delay time.Duration, r float64) time.Duration {
	return delay + time.Duration(r*float64(delay)/2)
}

// Holding is how many refusals wait out RefusalDelay right now.
func (a *Authenticator) Holding() int { return len(a.held) }

// Charge counts work beyond the one token Admit took: a request of n items (a batch's events,
// a settle call's ids, the events a redrive moved) costs n in all. The request goes on; the
// tenant's next ones wait until the work is paid for.
func (a *Authenticator) Charge(p Principal, n int) {
	a.limits.charge(p.TenantID, a.Rate(p), float64(n-1), a.now())
}

// Rate is p's tenant's requests per second on this replica (0: no limit): its share of the
// fleet's when the replicas are counted, rounded up so that no tenant is refused everything.
func (a *Authenticator) Rate(p Principal) int {
	r := p.RateLimit
	if r == 0 {
		r = a.cfg.RateLimit
	}
	if n := int(a.replicas.Load()); n > 1 && r > 0 {
		r = (r + n - 1) / n
	}
	return r
}

// Stats returns the cache counters so far.
func (a *Authenticator) Stats() CacheStats {
	return CacheStats{Hits: a.hits.Load(), Misses: a.misses.Load()}
}

// WaitWrites waits for the last-use writes in flight, for a clean stop. Call it once no more
// requests are being authenticated.
func (a *Authenticator) WaitWrites() { a.writes.Wait() }

// Authenticate resolves raw to a principal for a caller whose address is unknown, which no
// failure budget limits.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (Principal, error) {
	return a.AuthenticateClient(ctx, raw, "")
}

// AuthenticateClient resolves raw to a principal for the client at address client. Every
// refusal is ErrUnauthenticated; a client over its failure budget gets *TooManyFailuresError
// instead unless the key is known to be good; a database failure is returned as it is so the
// caller can answer 503 rather than 401.
func (a *Authenticator) AuthenticateClient(ctx context.Context, raw, client string) (Principal, error) {
	now := a.now()
	key, err := apikey.Parse(raw)
	if err != nil {
		return Principal{}, a.refuse(client, now)
	}
	hash := key.Hash()
	shard := a.cache.shard(hash)
	p, state, recordUse := a.cache.lookup(shard, hash, now)
	switch state {
	case lookupFresh:
		a.hits.Add(1)
		if recordUse {
			a.recordUse(ctx, hash, now)
		}
		return p, nil
	case lookupRefused:
		a.hits.Add(1)
		return Principal{}, a.refuse(client, now)
	case lookupUnknown:
		// The read is charged before it is made, so concurrent guesses cannot overdraw.
		if err := a.failures.take(client, now); err != nil {
			return Principal{}, err
		}
	}
	// A stale known key is read again whatever the address's budget: it was good a moment ago.
	a.misses.Add(1)
	readAs := ""
	if state == lookupUnknown {
		readAs = client
	}
	p, err = a.resolveShared(ctx, shard, hash, key.TenantID, readAs, now)
	switch {
	case err == nil && state == lookupUnknown:
		a.failures.give(client, now)
	case err == nil:
	case errors.Is(err, ErrUnauthenticated) && state == lookupStale:
		// Charged after the read; the answer stays the 401 the read earned.
		_ = a.failures.take(client, now)
	case !errors.Is(err, ErrUnauthenticated) && state == lookupUnknown:
		a.failures.give(client, now)
	}
	return p, err
}

// refuse charges one failure to client: ErrUnauthenticated, or *TooManyFailuresError once its
// budget is spent.
func (a *Authenticator) refuse(client string, now time.Time) error {
	if err := a.failures.take(client, now); err != nil {
		return err
	}
	return ErrUnauthenticated
}

// resolveShared reads hash from the store once for all the requests that want it at the same
// time. A request whose wait is cut short by its own context stops waiting; when the one that
// read was cut short by its context, the others read again rather than inherit its failure.
// A read for address readAs ("": none) waits for one of that address's reads of unknown keys;
// requests for the same key from elsewhere wait on it too, as they would on any read in flight.
func (a *Authenticator) resolveShared(ctx context.Context, s *cacheShard, hash, tenantID, readAs string, now time.Time) (Principal, error) {
	for {
		f, leader := s.join(hash)
		if leader {
			return a.lead(ctx, s, f, hash, tenantID, readAs, now)
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return Principal{}, ctx.Err()
		}
		if isContextErr(f.err) && ctx.Err() == nil {
			continue
		}
		return f.principal, f.err
	}
}

// lead reads hash for every request waiting on flight f. If the read panics, the flight still
// lands, with an error nothing caches, before the panic goes on: the waiters would otherwise
// wait for an answer that never comes.
func (a *Authenticator) lead(ctx context.Context, s *cacheShard, f *flight, hash, tenantID, readAs string, now time.Time) (Principal, error) {
	landed := false
	defer func() {
		if !landed {
			f.principal, f.err = Principal{}, errLookupPanicked
			a.cache.land(s, hash, f, now, a.cfg)
		}
	}()
	leave, err := a.failures.enterRead(ctx, readAs)
	if err == nil {
		defer leave()
		f.principal, f.lastUsed, f.err = a.resolve(ctx, hash, tenantID, now)
	} else {
		// Nothing is remembered of a context's end: the waiters read again.
		f.principal, f.err = Principal{}, err
	}
	landed = true
	if a.cache.land(s, hash, f, now, a.cfg) {
		a.recordUse(ctx, hash, now)
	}
	return f.principal, f.err
}

// errLookupPanicked is what the requests waiting on a key read that panicked get.
var errLookupPanicked = errors.New("key lookup failed")

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// recordUse writes the key's last use in the background: the request neither waits for it nor
// fails with it, and a lost write is only a last use an hour staler. The caller holds one of
// the cache's writer slots, which this releases.
func (a *Authenticator) recordUse(ctx context.Context, hash string, at time.Time) {
	a.writes.Add(1)
	go func() {
		defer a.writes.Done()
		defer a.cache.releaseSlot()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordUseTimeout)
		defer cancel()
		_ = a.store.RecordKeyUse(ctx, hash, at, at.Add(-LastUsedInterval))
	}()
}

func (a *Authenticator) resolve(ctx context.Context, hash, tenantID string, now time.Time) (Principal, time.Time, error) {
	// The tenant is the one the key string names; it must be the one the key was issued to.
	k, t, err := a.store.KeyAndTenant(ctx, hash, tenantID)
	if errors.Is(err, ErrKeyNotFound) || errors.Is(err, ErrNotFound) {
		return Principal{}, time.Time{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, time.Time{}, err
	}
	if k.TenantID != tenantID || !k.Usable(now) {
		return Principal{}, time.Time{}, ErrUnauthenticated
	}
	if t.Status != StatusActive {
		return Principal{}, time.Time{}, ErrUnauthenticated
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
	}, k.LastUsedAt, nil
}
