package queue

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/trigger-api/trigger-api/pkg/storage"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// answerBytes is the payload bytes one listing, dead-letter page or pull holds at most (give or
// take one chunk): a page of events at the 256 KiB limit ends early with a cursor, a pull
// leases fewer events.
const answerBytes = 2 << 20

// Payload-bearing reads are the ones whose memory grows with what a tenant stored. A tenant
// gets perTenantReads of them at once in a process, and the process allReads; a read waits
// up to readQueueWait for its turn, then answers 429 (its tenant's turn) or 503 (the process
// is full), so memory stays bounded whatever one tenant does.
const (
	perTenantReads = 2
	allReads       = 16
	readQueueWait  = 5 * time.Second
)

// readGate admits payload-bearing reads under both bounds.
type readGate struct {
	all  chan struct{}
	wait time.Duration

	mu      sync.Mutex
	tenants map[string]chan struct{}
	users   map[string]int // callers holding or waiting for a tenant's channel
}

func newReadGate() *readGate {
	return &readGate{all: make(chan struct{}, allReads), wait: readQueueWait, tenants: map[string]chan struct{}{}, users: map[string]int{}}
}

// enter waits for a turn; the returned func gives it back.
func (g *readGate) enter(ctx context.Context, tenantID string) (leave func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, g.wait)
	defer cancel()
	slot := g.tenantSlot(tenantID)
	if !acquire(ctx, slot) {
		g.release(tenantID)
		return nil, busy(ctx, &tenant.RateLimitedError{RetryAfter: time.Second})
	}
	if !acquire(ctx, g.all) {
		<-slot
		g.release(tenantID)
		return nil, busy(ctx, errProcessBusy)
	}
	return func() {
		<-g.all
		<-slot
		g.release(tenantID)
	}, nil
}

// acquire takes a place in sem, waiting until ctx ends. A free place is taken even if ctx has
// just ended: select picks at random among ready cases, and a caller that waited its whole
// time for the tenant's turn must not then be refused with the process's room free.
func acquire(ctx context.Context, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
	}
	select {
	case sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// busy is the caller's own end if it went away, else the answer for a wait that ran out.
func busy(ctx context.Context, over error) error {
	if ctx.Err() == context.Canceled {
		return ctx.Err()
	}
	return over
}

func (g *readGate) tenantSlot(tenantID string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	slot, ok := g.tenants[tenantID]
	if !ok {
		slot = make(chan struct{}, perTenantReads)
		g.tenants[tenantID] = slot
	}
	g.users[tenantID]++
	return slot
}

// release forgets a tenant's channel once nobody holds or waits for it, so the map holds only
// tenants reading right now.
func (g *readGate) release(tenantID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.users[tenantID]--; g.users[tenantID] == 0 {
		delete(g.users, tenantID)
		delete(g.tenants, tenantID)
	}
}

var errProcessBusy = fmt.Errorf("%w: too many reads in flight in this process", storage.ErrUnavailable)
