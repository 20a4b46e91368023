package queue

import (
	"context"
	"fmt"
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

// enter waits for a turn; the returned func gives it back.
func (g *readGate) enter(ctx context.Context, tenantID string) (leave func(), err error) {
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
	return func() {
		<-g.all
		leaveTenant()
	}, nil
}

// busy is the caller's own end if it went away, else the answer for a wait that ran out.
func busy(ctx context.Context, over error) error {
	if ctx.Err() == context.Canceled {
		return ctx.Err()
	}
	return over
}

var errProcessBusy = fmt.Errorf("%w: too many reads in flight in this process", storage.ErrUnavailable)
