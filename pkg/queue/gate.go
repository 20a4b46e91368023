package queue

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/trigger-api/trigger-api/pkg/slots"
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
	all     chan struct{}
	wait    time.Duration
	tenants *slots.Keyed
}

func newReadGate() *readGate {
	return &readGate{all: make(chan struct{}, allReads), wait: readQueueWait, tenants: slots.NewKeyed(perTenantReads)}
}

// enter waits for a turn: its tenant's place, then the process's.
func (g *readGate) enter(ctx context.Context, tenantID string) (*turn, error) {
	ctx, cancel := context.WithTimeout(ctx, g.wait)
	defer cancel()
	leaveTenant, ok := g.tenants.Enter(ctx, tenantID)
	if !ok {
		return nil, busy(ctx, &tenant.RateLimitedError{RetryAfter: time.Second})
	}
	if !slots.Acquire(ctx, g.all) {
		leaveTenant()
		return nil, busy(ctx, errProcessBusy)
	}
	return &turn{process: func() { <-g.all }, tenant: leaveTenant}, nil
}

// turn is a read's place in the gate: the process's, given back when the read is done, and its
// tenant's, which keepTurn may keep until the answer is written. Only the tenant's waits on
// its clients: a client that reads its answer slowly holds up its own tenant's reads, never
// every tenant's. Each is given back exactly once.
type turn struct{ process, tenant func() }

// leave gives back a turn whose read never happened.
func (t *turn) leave() {
	t.process()
	t.tenant()
}

// busy is the caller's own end if it went away, else the answer for a wait that ran out.
func busy(ctx context.Context, over error) error {
	if ctx.Err() == context.Canceled {
		return ctx.Err()
	}
	return over
}

var errProcessBusy = fmt.Errorf("%w: too many reads in flight in this process", storage.ErrUnavailable)

// heldTurns keeps the read turns of a request whose answer carries what it read.
type heldTurns struct {
	mu       sync.Mutex
	leave    []func()
	released bool
}

type heldTurnsKey struct{}

// HoldReads makes a payload-bearing read made under the returned context that answers
// something keep its tenant's turn until release is called, after its answer is written: the
// events of an answer still going out to a slow client count against its tenant's bound. release
// may be called more than once.
func HoldReads(ctx context.Context) (held context.Context, release func()) {
	h := &heldTurns{}
	return context.WithValue(ctx, heldTurnsKey{}, h), h.release
}

func (h *heldTurns) release() {
	h.mu.Lock()
	leave := h.leave
	h.leave, h.released = nil, true
	h.mu.Unlock()
	for _, l := range leave {
		l()
	}
}

// keepTurn ends a read: the process's place goes back now; the tenant's too, or, when the read
// answered something and its caller holds its turns, once the caller has written the answer.
// A read that answered nothing (a long poll about to wait) keeps nothing.
func keepTurn(ctx context.Context, t *turn, answered bool) {
	t.process()
	h, _ := ctx.Value(heldTurnsKey{}).(*heldTurns)
	if h == nil || !answered {
		t.tenant()
		return
	}
	h.mu.Lock()
	if h.released {
		h.mu.Unlock()
		t.tenant()
		return
	}
	h.leave = append(h.leave, t.tenant)
	h.mu.Unlock()
}
