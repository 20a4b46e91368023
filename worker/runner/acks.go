package runner

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
)

// acker batches acknowledgements: a batch is sent as soon as it holds BatchSize leases, or
// AckInterval after its first one arrived, whichever comes first.
type acker struct {
	c      *consumer
	settle context.Context
	limit  int // pending acks beyond which add waits, so a struggling inbox slows the pulls

	mu      sync.Mutex
	room    *sync.Cond
	pending []pendingAck
	closed  bool
	kick    chan struct{}
	done    chan struct{}
}

type pendingAck struct {
	ref api.LeaseRef
	at  time.Time
}

func newAcker(c *consumer, settle context.Context) *acker {
	a := &acker{c: c, settle: settle, limit: 2 * c.cfg.BatchSize, kick: make(chan struct{}, 1), done: make(chan struct{})}
	a.room = sync.NewCond(&a.mu)
	return a
}

// add queues an ack; false means the acker has already sent its last batch.
func (a *acker) add(ref api.LeaseRef) bool {
	a.mu.Lock()
	for len(a.pending) >= a.limit && !a.closed {
		a.room.Wait()
	}
	if a.closed {
		a.mu.Unlock()
		return false
	}
	a.pending = append(a.pending, pendingAck{ref: ref, at: time.Now()})
	a.mu.Unlock()
	a.wake()
	return true
}

func (a *acker) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// close sends what is pending and returns once the last batch is settled.
func (a *acker) close() {
	a.mu.Lock()
	a.closed = true
	a.room.Broadcast()
	a.mu.Unlock()
	a.wake()
	<-a.done
}

func (a *acker) run() {
	defer close(a.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		batch, wait, finished := a.next(time.Now())
		if finished {
			return
		}
		if len(batch) > 0 {
			a.flush(batch)
			continue
		}
		var tick <-chan time.Time
		if wait > 0 {
			t.Reset(wait)
			tick = t.C
		}
		select {
		case <-a.kick:
		case <-tick:
		}
		t.Stop()
	}
}

// next takes the batch to send now, if any; otherwise it says how long until the oldest
// pending ack is due (0: nothing pending), or that the acker is closed and empty.
func (a *acker) next(now time.Time) (batch []api.LeaseRef, wait time.Duration, finished bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.pending)
	switch {
	case n == 0:
		return nil, 0, a.closed
	case n < a.c.cfg.BatchSize && !a.closed:
		if wait = a.pending[0].at.Add(a.c.cfg.AckInterval).Sub(now); wait > 0 {
			return nil, wait, false
		}
	}
	n = min(n, a.c.cfg.BatchSize)
	batch = make([]api.LeaseRef, n)
	for i := range n {
		batch[i] = a.pending[i].ref
	}
	a.pending = append(a.pending[:0:0], a.pending[n:]...)
	a.room.Broadcast()
	return batch, 0, false
}

// flush sends one batch. Transient failures are retried until the shutdown timeout, after
// which one more attempt is made; a refusal is not retried. Either way an ack that is not
// confirmed only means the inbox redelivers the event once its lease runs out.
func (a *acker) flush(batch []api.LeaseRef) {
	log := a.c.log
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(a.settle), a.c.cfg.RequestTimeout)
		ctx, span := a.c.obs.settle(ctx, a.c.tenant, "ack", batch)
		answer, err := a.c.inbox.AckLeases(ctx, batch)
		endSpan(span, err)
		cancel()
		// Only final outcomes count: a retried attempt is not a failed ack.
		if err == nil {
			a.c.obs.countSettled(ctx, "ack", answer.Results, len(batch), nil)
			a.report(answer.Results)
			return
		}
		if !client.Transient(err) {
			a.c.obs.countSettled(ctx, "ack", nil, len(batch), err)
			log.Error("ack refused; the inbox will redeliver these events", zap.Error(err), zap.Int("events", len(batch)))
			return
		}
		if a.settle.Err() != nil {
			a.c.obs.countSettled(ctx, "ack", nil, len(batch), err)
			log.Warn("acks not confirmed before the shutdown timeout; the inbox will redeliver these events", zap.Error(err), zap.Int("events", len(batch)))
			return
		}
		d := max(a.c.o.retryBackoff.Delay(attempt), client.RetryAfter(err))
		log.Warn("ack failed; retrying", zap.Error(err), zap.Int("events", len(batch)), zap.Int("attempt", attempt), zap.Duration("pause", d))
		// A pause cut short by the shutdown timeout still leads to the one last attempt.
		_ = a.c.o.pause(a.settle, PauseRetry, d)
	}
}

// report logs each item's outcome. A lost lease is final: the event was (or will be) leased
// to someone else, whose ack is the one that counts, so retrying ours could only fail again.
func (a *acker) report(results []api.SettleResult) {
	for _, r := range results {
		log := a.c.log.With(zap.String("event_id", r.EventID))
		switch {
		case r.Error == nil:
			log.Debug("event acknowledged")
		case r.Error.Code == api.CodeLeaseLost:
			log.Warn("ack: lease lost; the inbox will redeliver the event")
		case r.Error.Code == api.CodeNotFound:
			log.Warn("ack: event not found for this tenant; skipped")
		default:
			log.Error("ack failed for the event; the inbox will redeliver it", zap.String("code", r.Error.Code), zap.String("message", r.Error.Message))
		}
	}
}
