package tenant

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// MaxRateLimit bounds a tenant's own rate_limit.
const MaxRateLimit = 100000

// RateLimitedError says a tenant made requests faster than its rate; RetryAfter is when the
// next one will be admitted.
type RateLimitedError struct {
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("rate limit exceeded; retry after %v", e.RetryAfter)
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, as Retry-After carries it.
func (e *RateLimitedError) RetryAfterSeconds() int { return retryAfterSeconds(e.RetryAfter) }

func retryAfterSeconds(d time.Duration) int { return max(1, int(math.Ceil(d.Seconds()))) }

// tokens is a token bucket, shared by the tenants' rates and the addresses' failure budgets:
// n tokens at last, refilled at a rate per second up to a burst.
type tokens struct {
	n    float64
	last time.Time
}

// refill brings the bucket up to now, and down to burst if that was lowered meanwhile.
func (t *tokens) refill(now time.Time, rate, burst float64) {
	if now.After(t.last) {
		t.n += now.Sub(t.last).Seconds() * rate
		t.last = now
	}
	t.n = min(t.n, burst)
}

// take spends one token, or says how long until one is there.
func (t *tokens) take(rate float64) (time.Duration, bool) {
	if t.n >= 1 {
		t.n--
		return 0, true
	}
	return time.Duration((1 - t.n) / rate * float64(time.Second)), false
}

// limiter keeps a token bucket per tenant: rate tokens a second, holding at most one second's
// worth, so a tenant may burst up to its rate and then goes at its rate.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	max     int
}

type bucket struct {
	tokens
	rate float64
}

func newLimiter(maxTenants int) *limiter {
	return &limiter{buckets: map[string]*bucket{}, max: maxTenants}
}

// take spends one token of tenantID's bucket at rate per second; when none is left it says how
// long until one is. A rate of 0 or less admits everything.
func (l *limiter) take(tenantID string, rate int, now time.Time) (time.Duration, bool) {
	if rate <= 0 {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bucket(tenantID, float64(rate), now).take(float64(rate))
}

// charge spends n more tokens for work an admitted request turned out to hold (a batch's
// items, a settle call's ids, a read's payload). The bucket goes below zero by all of it, so
// the tenant's next requests wait until the work is paid for: a cap on the debt would let a
// tenant at a low rate do many seconds' worth of work for the price of one. What one request
// may do is bounded elsewhere (the API's limits, the inbox's work budget), and so is the wait.
func (l *limiter) charge(tenantID string, rate int, n float64, now time.Time) {
	if rate <= 0 || n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(tenantID, float64(rate), now)
	b.n -= n
}

// owes says how long until tenantID's debt for charged work is paid, when it has one. It
// spends nothing.
func (l *limiter) owes(tenantID string, rate int, now time.Time) (time.Duration, bool) {
	if rate <= 0 {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(tenantID, float64(rate), now)
	if b.n >= 0 {
		return 0, false
	}
	return time.Duration(-b.n / float64(rate) * float64(time.Second)), true
}

// bucket returns tenantID's bucket refilled up to now. Called with l.mu held.
func (l *limiter) bucket(tenantID string, r float64, now time.Time) *bucket {
	b, ok := l.buckets[tenantID]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: tokens{n: r, last: now}}
		l.buckets[tenantID] = b
	}
	// A lowered rate takes effect at once rather than after the old burst.
	b.refill(now, r, r)
	b.rate = r
	return b
}

// evict drops the buckets idle long enough to have refilled at their own rate: a new bucket
// starts full, so forgetting them changes no answer. If none has, the one idle longest goes.
func (l *limiter) evict(now time.Time) {
	var oldest string
	for id, b := range l.buckets {
		if b.n+now.Sub(b.last).Seconds()*b.rate >= b.rate {
			delete(l.buckets, id)
		} else if oldest == "" || b.last.Before(l.buckets[oldest].last) {
			oldest = id
		}
	}
	if len(l.buckets) >= l.max && oldest != "" {
		delete(l.buckets, oldest)
	}
}
