package runner

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/api"
)

type leaseState int

const (
	leaseHeld leaseState = iota
	// leaseLost: the inbox answered that the lease no longer holds the event.
	leaseLost
	// leaseAbandoned: the shutdown timeout passed and the event was handed back.
	leaseAbandoned
)

// heldLease is one event in hand. Its fields other than ref and ctx are guarded by the
// keeper's mutex.
type heldLease struct {
	ref    api.LeaseRef
	ctx    context.Context // the processor's
	cancel context.CancelCauseFunc
	// expires is when the lease runs out by this machine's clock, counted from when the
	// answer granting it arrived: the inbox granted it a moment earlier, and extending at
	// half-time leaves a margin far larger than that moment.
	expires time.Time
	due     time.Time // when to extend it next
	state   leaseState
}

// leaseKeeper extends the leases of events still processing past half their visibility
// timeout, several at once when their times are close.
type leaseKeeper struct {
	c      *consumer
	vis    time.Duration
	settle context.Context

	mu       sync.Mutex
	held     map[string]*heldLease // by lease id: one event may come back under a new lease
	failures int                   // consecutive failed extension calls
	kick     chan struct{}
	stop     chan struct{}
}

func newLeaseKeeper(c *consumer, settle context.Context) *leaseKeeper {
	return &leaseKeeper{
		c: c, vis: c.cfg.VisibilityTimeout, settle: settle,
		held: map[string]*heldLease{}, kick: make(chan struct{}, 1), stop: make(chan struct{}),
	}
}

// hold starts tracking a lease granted at received; the processor's context is derived from
// settle, so it ends at the shutdown timeout but not at SIGTERM.
func (k *leaseKeeper) hold(ref api.LeaseRef, received time.Time) *heldLease {
	ctx, cancel := context.WithCancelCause(k.settle)
	h := &heldLease{ref: ref, ctx: ctx, cancel: cancel, expires: received.Add(k.vis), due: received.Add(k.vis / 2)}
	k.mu.Lock()
	k.held[ref.LeaseID] = h
	k.mu.Unlock()
	k.wake()
	return h
}

// release stops tracking h and reports what became of its lease meanwhile.
func (k *leaseKeeper) release(h *heldLease) leaseState {
	k.mu.Lock()
	delete(k.held, h.ref.LeaseID)
	s := h.state
	k.mu.Unlock()
	h.cancel(nil)
	return s
}

// abandonAll marks every lease still held as handed back, cancels its processor and returns
// the leases to nack.
func (k *leaseKeeper) abandonAll() []api.LeaseRef {
	k.mu.Lock()
	defer k.mu.Unlock()
	var refs []api.LeaseRef
	for _, h := range k.held {
		if h.state == leaseHeld {
			h.state = leaseAbandoned
			h.cancel(ErrShutdownTimeout)
			refs = append(refs, h.ref)
		}
	}
	return refs
}

func (k *leaseKeeper) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.held)
}

func (k *leaseKeeper) wake() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

func (k *leaseKeeper) close() { close(k.stop) }

func (k *leaseKeeper) run() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		now := time.Now()
		batch, next := k.dueAt(now)
		if len(batch) > 0 {
			k.extend(batch)
			continue
		}
		var tick <-chan time.Time
		if !next.IsZero() {
			t.Reset(next.Sub(now))
			tick = t.C
		}
		select {
		case <-k.kick:
		case <-tick:
		case <-k.stop:
			t.Stop()
			return
		}
		t.Stop()
	}
}

// dueAt returns the leases to extend now (at most one call's worth) and, if none is due, when
// the next one will be. Once one is due, those due within the next quarter of the visibility
// timeout join it, so a burst of slow events costs one call rather than one each.
func (k *leaseKeeper) dueAt(now time.Time) (batch []*heldLease, next time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	someDue := false
	for _, h := range k.held {
		if h.state == leaseHeld && !h.due.After(now) {
			someDue = true
			break
		}
	}
	horizon := now
	if someDue {
		horizon = now.Add(k.vis / 4)
	}
	for _, h := range k.held {
		if h.state != leaseHeld {
			continue
		}
		if !h.due.After(horizon) && len(batch) < maxBatchSize {
			batch = append(batch, h)
			continue
		}
		if next.IsZero() || h.due.Before(next) {
			next = h.due
		}
	}
	if len(batch) > 0 {
		next = time.Time{}
	}
	return batch, next
}

func (k *leaseKeeper) extend(batch []*heldLease) {
	refs := make([]api.LeaseRef, len(batch))
	for i, h := range batch {
		refs[i] = h.ref
	}
	sent := time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(k.settle), k.c.cfg.RequestTimeout)
	answer, err := k.c.inbox.Extend(ctx, api.ExtendRequest{Leases: refs, VisibilityTimeoutSeconds: api.Int(k.c.cfg.visibilitySeconds())})
	cancel()

	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.failures++
		d := k.c.o.retryBackoff.Delay(k.failures)
		k.c.log.Warn("lease extension failed; retrying", zap.Error(err), zap.Int("events", len(batch)), zap.Int("attempt", k.failures))
		for _, h := range batch {
			h.due = k.retryAt(h, sent, d)
		}
		return
	}
	k.failures = 0
	for i, r := range answer.Results {
		h := batch[i]
		switch {
		case r.Error == nil:
			h.expires = sent.Add(k.vis)
			h.due = sent.Add(k.vis / 2)
			k.c.log.Debug("lease extended", zap.String("event_id", h.ref.EventID))
		case r.Error.Code == api.CodeLeaseLost || r.Error.Code == api.CodeNotFound:
			if h.state == leaseHeld {
				h.state = leaseLost
				h.cancel(ErrLeaseLost)
			}
			k.c.log.Warn("lease lost while processing; the event will be redelivered", zap.String("event_id", h.ref.EventID), zap.String("code", r.Error.Code))
		default:
			k.c.log.Warn("lease extension failed for the event; retrying", zap.String("event_id", h.ref.EventID),
				zap.String("code", r.Error.Code), zap.String("message", r.Error.Message))
			h.due = k.retryAt(h, sent, k.c.o.retryBackoff.Delay(1))
		}
	}
}

// retryAt schedules another extension attempt after d, but no later than halfway through what
// remains of the lease, so a slow recovery still gets tries in before the lease runs out.
func (k *leaseKeeper) retryAt(h *heldLease, now time.Time, d time.Duration) time.Time {
	if left := h.expires.Sub(now) / 2; left > 0 && left < d {
		d = left
	}
	return now.Add(max(d, k.c.o.retryBackoff.Base))
}
