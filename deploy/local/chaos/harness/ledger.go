package harness

import (
	"fmt"
	"sync"
)

// ledger records what the producers were told: every event the API accepted, under the
// idempotency key it was sent with, and every publish that ended without an acceptance.
type ledger struct {
	mu          sync.Mutex
	seq         int
	accepted    map[string]string // event id → idempotency key
	byKey       map[string]string // idempotency key → event id
	replayed    int               // acceptances that came as a replay of a lost first answer
	mismatches  []string          // a key answered with two different event ids
	unconfirmed []string          // publishes given up without an acceptance
	rejected    []string          // publishes refused with a 4xx
}

func newLedger() *ledger {
	return &ledger{accepted: map[string]string{}, byKey: map[string]string{}}
}

func (l *ledger) next() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	return l.seq
}

func (l *ledger) accept(key, eventID string, replayed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.byKey[key]; ok && prev != eventID {
		l.mismatches = append(l.mismatches, fmt.Sprintf("key %s: %s then %s", key, prev, eventID))
		return
	}
	l.byKey[key] = eventID
	l.accepted[eventID] = key
	if replayed {
		l.replayed++
	}
}

func (l *ledger) giveUp(key string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unconfirmed = append(l.unconfirmed, fmt.Sprintf("key %s: %v", key, err))
}

func (l *ledger) reject(key string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rejected = append(l.rejected, fmt.Sprintf("key %s: %v", key, err))
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accepted)
}

// ids copies the accepted event ids.
func (l *ledger) ids() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]bool, len(l.accepted))
	for id := range l.accepted {
		out[id] = true
	}
	return out
}

// processedOf is how many accepted events have been taken up at least once.
func (l *ledger) processedOf(times map[string]int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for id := range l.accepted {
		if times[id] > 0 {
			n++
		}
	}
	return n
}
