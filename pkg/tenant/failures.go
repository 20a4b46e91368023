package tenant

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/trigger-api/trigger-api/pkg/slots"
)

// TooManyFailuresError says a client address has spent its budget of failed authentications;
// RetryAfter is when it may try an unknown key again. It is not ErrUnauthenticated: it says
// nothing about the key, only about the address.
type TooManyFailuresError struct {
	RetryAfter time.Duration
}

func (e *TooManyFailuresError) Error() string {
	return fmt.Sprintf("too many failed authentications; retry after %v", e.RetryAfter)
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, as Retry-After carries it.
func (e *TooManyFailuresError) RetryAfterSeconds() int { return retryAfterSeconds(e.RetryAfter) }

// failureLimiter keeps a token bucket of failed authentications per client address: burst
// failures, then rate a second. Only keys not known to be good spend from it, so a flood of
// guessed keys from one address stops costing database reads without locking out the valid
// keys used from the same address.
type failureLimiter struct {
	burst, rate float64

	mu      sync.Mutex
	buckets *lru[*tokens] // a forgotten address starts with a full budget again
	reads   *slots.Keyed  // reads of keys not known to be good, in flight per address
}

// readsPerAddress is how many reads of keys not known to be good one address may have in
// flight in a process; the rest wait their turn. The budget alone let an address's whole burst
// of guessed keys reach DynamoDB in the same instant, in front of every tenant's calls (the
// isolation bench saw B's writes take 20-30 ms while 20 guesses were read).
const readsPerAddress = 2

// newFailureLimiter returns nil, which limits nothing, for a burst of 0 or less.
func newFailureLimiter(burst int, rate float64, maxAddresses int) *failureLimiter {
	if burst <= 0 {
		return nil
	}
	if rate <= 0 || math.IsNaN(rate) {
		rate = 1
	}
	return &failureLimiter{burst: float64(burst), rate: rate, buckets: newLRU[*tokens](maxAddresses), reads: slots.NewKeyed(readsPerAddress)}
}

// enterRead waits for one of client's reads of keys not known to be good; leave gives it back.
// Nothing is waited for without a limiter or an address, as nothing is charged then.
func (l *failureLimiter) enterRead(ctx context.Context, client string) (leave func(), err error) {
	if l == nil || client == "" {
		return func() {}, nil
	}
	leave, ok := l.reads.Enter(ctx, client)
	if !ok {
		return nil, ctx.Err()
	}
	return leave, nil
}

// bucket returns client's bucket refilled up to now. The caller holds l.mu.
func (l *failureLimiter) bucket(client string, now time.Time) *tokens {
	b, ok := l.buckets.get(client)
	if !ok {
		b = &tokens{n: l.burst, last: now}
		l.buckets.put(client, b)
	}
	b.refill(now, l.rate, l.burst)
	return b
}

// take spends one failure of client's budget, or answers *TooManyFailuresError when none is
// left. An unknown client ("") is not limited.
func (l *failureLimiter) take(client string, now time.Time) error {
	if l == nil || client == "" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if wait, ok := l.bucket(client, now).take(l.rate); !ok {
		return &TooManyFailuresError{RetryAfter: wait}
	}
	return nil
}

// give returns a failure taken for a read that turned out not to be one: a valid key, or a
// store that could not answer.
func (l *failureLimiter) give(client string, now time.Time) {
	if l == nil || client == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(client, now)
	b.n = min(l.burst, b.n+1)
}
