package dynamo

import (
	"sync"
	"time"
)

// claimRetention is how long an index entry this process leased from stays claimed: longer
// than a concurrent pull's index read can be stale by, so that pull skips the entry instead of
// spending a conditional write bound to fail (DynamoDB charges a failed write like any other).
const claimRetention = 5 * time.Second

// claims keeps the pulls of one process off each other's candidates. Concurrent pullers of a
// tenant read the same oldest index entries; without this each entry would be tried by all
// of them and all but one write would fail. Pullers in other processes still race, which the
// conditional write settles. A claim names an index entry, not an event: a lease, a nack or a
// lapse moves the event to a new entry, which is free at once.
type claims struct {
	mu sync.Mutex
	// until is zero while a lease attempt is under way, else when the claim lapses.
	held    map[claimKey]time.Time
	sweepAt int
	now     func() time.Time
}

type claimKey struct{ tenant, entry string }

func newClaims() *claims {
	return &claims{held: map[claimKey]time.Time{}, sweepAt: 1024, now: time.Now}
}

// take claims an index entry (its sort key) for one lease attempt; false when another pull
// holds it.
func (c *claims) take(tenant, entry string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	k := claimKey{tenant, entry}
	if until, ok := c.held[k]; ok && (until.IsZero() || now.Before(until)) {
		return false
	}
	c.held[k] = time.Time{}
	if len(c.held) >= c.sweepAt {
		c.sweep(now)
	}
	return true
}

// done ends an attempt: a leased entry stays claimed for claimRetention, any other is free.
func (c *claims) done(tenant, entry string, leased bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := claimKey{tenant, entry}
	if leased {
		c.held[k] = c.now().Add(claimRetention)
		return
	}
	delete(c.held, k)
}

// free drops the claim on an entry a write is about to create again, so that an event put back
// exactly where it was leased from is not hidden until the claim lapses.
func (c *claims) free(tenant, entry string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.held, claimKey{tenant, entry})
}

// sweep drops lapsed claims; the next sweep waits until the map has doubled, so the cost stays
// constant per claim.
func (c *claims) sweep(now time.Time) {
	for k, until := range c.held {
		if !until.IsZero() && !now.Before(until) {
			delete(c.held, k)
		}
	}
	c.sweepAt = max(1024, 2*len(c.held))
}
