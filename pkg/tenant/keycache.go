package tenant

import (
	"errors"
	"hash/fnv"
	"sync"
	"time"
)

// LastUsedInterval is the least time between two recorded uses of one key: a key's last use is
// worth knowing to the hour, not worth a write per request.
const LastUsedInterval = time.Hour

// keyCache remembers resolved keys. Known keys and refused ones have rooms of their own, so a
// flood of unknown keys can only push out other refused ones, never a known key. It is split
// into shards so that requests for different keys rarely wait on each other, and no lock is
// held while the store is read.
type keyCache struct {
	shards []*cacheShard
	// slots bounds the last-use writes in flight; a write that finds none free is tried again
	// on a later request.
	slots chan struct{}
}

type cacheShard struct {
	mu      sync.Mutex
	known   *lru[*knownEntry]
	refused *lru[time.Time] // until when the refusal stands
	flights map[string]*flight
}

// knownEntry outlives its TTL until the room runs out: a stale entry is still proof that the
// key was good, which lets it be read again even from an address over its failure budget.
type knownEntry struct {
	principal Principal
	until     time.Time
	lastUsed  time.Time // the last use recorded, or being recorded
}

// flight is one store read that every concurrent request for the same key waits on.
type flight struct {
	done      chan struct{}
	waiters   int // requests waiting besides the one reading
	principal Principal
	lastUsed  time.Time
	err       error
}

type lookupState int

const (
	lookupUnknown lookupState = iota
	lookupFresh
	lookupStale
	lookupRefused
)

// shardsFor keeps small caches in one shard, where splitting would round every shard's room
// up and let the whole exceed its bound by more than it holds.
func shardsFor(smallest int) int {
	if smallest < 1024 {
		return 1
	}
	return 16
}

func newKeyCache(maxKnown, maxRefused, writers int) *keyCache {
	n := shardsFor(min(maxKnown, maxRefused))
	c := &keyCache{shards: make([]*cacheShard, n), slots: make(chan struct{}, writers)}
	for i := range c.shards {
		c.shards[i] = &cacheShard{
			known:   newLRU[*knownEntry]((maxKnown + n - 1) / n),
			refused: newLRU[time.Time]((maxRefused + n - 1) / n),
			flights: map[string]*flight{},
		}
	}
	return c
}

func (c *keyCache) shard(hash string) *cacheShard {
	if len(c.shards) == 1 {
		return c.shards[0]
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(hash))
	return c.shards[h.Sum32()%uint32(len(c.shards))]
}

// claimUse reports whether a use of e at now is due to be recorded and, if a writer slot is
// free, takes it and marks the use as recorded. The caller holds the shard's lock.
func (c *keyCache) claimUse(e *knownEntry, now time.Time) bool {
	if now.Sub(e.lastUsed) < LastUsedInterval {
		return false
	}
	select {
	case c.slots <- struct{}{}:
		e.lastUsed = now
		return true
	default:
		return false
	}
}

func (c *keyCache) releaseSlot() { <-c.slots }

// lookup returns what the cache knows of hash at now and, for a fresh known key, whether its
// use is to be recorded (a writer slot is then held for it). A known key past its own expiry
// is refused.
func (c *keyCache) lookup(s *cacheShard, hash string, now time.Time) (p Principal, state lookupState, recordUse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.known.get(hash); ok {
		if !now.Before(e.until) {
			return Principal{}, lookupStale, false
		}
		// A key's own expiry needs no read to be sure of.
		if exp := e.principal.expiresAt; !exp.IsZero() && !now.Before(exp) {
			return Principal{}, lookupRefused, false
		}
		return e.principal, lookupFresh, c.claimUse(e, now)
	}
	if until, ok := s.refused.get(hash); ok {
		if now.Before(until) {
			return Principal{}, lookupRefused, false
		}
		s.refused.remove(hash)
	}
	return Principal{}, lookupUnknown, false
}

// join returns the flight reading hash, and whether the caller is to fly it.
func (s *cacheShard) join(hash string) (*flight, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.flights[hash]; ok {
		f.waiters++
		return f, false
	}
	f := &flight{done: make(chan struct{})}
	s.flights[hash] = f
	return f, true
}

// land stores f's outcome, ends the flight and reports whether the use is to be recorded.
// Store failures are not remembered: the next request tries again.
func (c *keyCache) land(s *cacheShard, hash string, f *flight, now time.Time, cfg AuthConfig) bool {
	s.mu.Lock()
	defer func() {
		delete(s.flights, hash)
		s.mu.Unlock()
		close(f.done)
	}()
	switch {
	case f.err == nil:
		e := &knownEntry{principal: f.principal, until: now.Add(cfg.PositiveTTL), lastUsed: f.lastUsed}
		// A use recorded here but not yet readable from the store must not be recorded twice.
		if old, ok := s.known.get(hash); ok && old.lastUsed.After(e.lastUsed) {
			e.lastUsed = old.lastUsed
		}
		s.known.put(hash, e)
		s.refused.remove(hash)
		return c.claimUse(e, now)
	case errors.Is(f.err, ErrUnauthenticated):
		s.known.remove(hash)
		s.refused.put(hash, now.Add(cfg.NegativeTTL))
	}
	return false
}
