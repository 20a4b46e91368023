package runner

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
)

// consumer serves one key: a pull loop that leases as many events as it has free slots, one
// goroutine per event in hand, a lease keeper that extends the leases of slow events, and an
// acker that batches acknowledgements.
type consumer struct {
	tenant string
	inbox  *client.Client // speaks with this consumer's key, never retrying on its own
	cfg    Config
	o      *options
	obs    obs
	log    *zap.Logger

	// slots holds a token per event in hand; its capacity is Concurrency.
	slots    chan struct{}
	inFlight sync.WaitGroup
	leases   *leaseKeeper
	acks     *acker

	pullFailures int // consecutive transient pull failures
	refusals     int // consecutive refused pulls
}

func newConsumer(tenantID string, inbox *client.Client, cfg Config, o *options, ob obs, log *zap.Logger) *consumer {
	return &consumer{
		tenant: tenantID, inbox: inbox, cfg: cfg, o: o, obs: ob, log: log,
		slots: make(chan struct{}, cfg.Concurrency),
	}
}

// run pulls until ctx ends, then settles what it holds within settle's life.
func (c *consumer) run(ctx, settle context.Context) {
	c.leases = newLeaseKeeper(c, settle)
	c.acks = newAcker(c, settle)
	var bg sync.WaitGroup
	bg.Go(c.leases.run)
	bg.Go(c.acks.run)

	c.pullLoop(ctx)
	c.log.Info("stopped pulling; finishing the events in hand", zap.Int("in_hand", c.leases.count()))
	c.drain(settle)
	c.acks.close()
	c.leases.close()
	bg.Wait()
}

// pullLoop leases events while ctx lasts, never more than the free slots.
func (c *consumer) pullLoop(ctx context.Context) {
	for {
		n, ok := c.reserve(ctx)
		if !ok {
			return
		}
		start := time.Now()
		page, pulled, err := c.pull(ctx, n)
		used := c.dispatch(ctx, page, pulled)
		for range n - used {
			<-c.slots
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if c.failed(ctx, err) != nil {
				return
			}
			continue
		}
		if len(page) > 0 {
			continue
		}
		// A long poll that found nothing has already waited; this only paces short polls
		// and an inbox that answers long polls early.
		if wait := c.cfg.PollInterval - time.Since(start); wait > 0 {
			if c.o.pause(ctx, PauseIdle, wait) != nil {
				return
			}
		}
	}
}

// reserve waits for a free slot, then takes as many more as are free, up to BatchSize.
func (c *consumer) reserve(ctx context.Context) (int, bool) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return 0, false
	}
	n := 1
	for n < c.cfg.BatchSize {
		select {
		case c.slots <- struct{}{}:
			n++
		default:
			return n, true
		}
	}
	return n, true
}

// pull leases up to n events; pulled is the pull's span, which each event's processing links.
func (c *consumer) pull(ctx context.Context, n int) (page []api.Event, pulled trace.SpanContext, err error) {
	pctx, cancel := context.WithTimeout(ctx, c.cfg.pullTimeout())
	defer cancel()
	pctx, span := c.obs.receive(pctx, c.tenant, n)
	answer, err := c.inbox.Pull(pctx, api.PullRequest{
		MaxEvents: api.Int(n), VisibilityTimeoutSeconds: api.Int(c.cfg.visibilitySeconds()), WaitSeconds: api.Int(c.cfg.WaitSeconds),
	})
	page = answer.Events
	c.obs.received(span, len(page), err)
	if err != nil {
		return nil, trace.SpanContext{}, err
	}
	c.pullFailures, c.refusals = 0, 0
	if len(page) > n {
		// The inbox never leases more than asked; handing back the surplus keeps the
		// concurrency bound true if it ever did.
		c.log.Warn("pull answered more events than asked; handing back the surplus", zap.Int("asked", n), zap.Int("got", len(page)))
		c.handBack(page[n:], "surplus")
		page = page[:n]
	}
	c.log.Debug("pulled", zap.Int("events", len(page)))
	return page, span.SpanContext(), nil
}

// dispatch starts an event goroutine for each leased event and returns how many slots they
// took. Events that arrive once shutdown has begun are handed back at once rather than started.
func (c *consumer) dispatch(ctx context.Context, page []api.Event, pulled trace.SpanContext) (used int) {
	received := time.Now()
	var late []api.Event
	for _, e := range page {
		if e.EventID == "" || e.LeaseID == "" {
			c.log.Warn("pulled entry without event_id or lease_id skipped", zap.String("event_id", e.EventID))
			continue
		}
		if ctx.Err() != nil {
			late = append(late, e)
			continue
		}
		used++
		h := c.leases.hold(api.LeaseRef{EventID: e.EventID, LeaseID: e.LeaseID}, received)
		c.inFlight.Add(1)
		go c.handle(h, toEvent(c.tenant, e), e.Traceparent(), pulled)
	}
	if len(late) > 0 {
		c.handBack(late, "pulled during shutdown")
	}
	return used
}

// handle is the life of one event in hand: processed, then acknowledged or nacked, unless its
// lease was lost or the shutdown timeout handed it back meanwhile.
func (c *consumer) handle(h *heldLease, ev Event, traceparent string, pulled trace.SpanContext) {
	defer func() {
		<-c.slots
		c.inFlight.Done()
	}()
	ctx, span := c.obs.process(h.ctx, c.tenant, ev, traceparent, pulled)
	log := c.log.With(zap.String("event_id", ev.ID), zap.String("event_type", ev.Type))
	if sc := span.SpanContext(); sc.IsValid() {
		log = log.With(zap.String("trace_id", sc.TraceID().String()), zap.String("span_id", sc.SpanID().String()))
	}
	log.Info("processing event", zap.Int("delivery_count", ev.DeliveryCount), zap.Int("payload_bytes", len(ev.Payload)))
	var err error
	start := time.Now()
	if c.o.process != nil {
		err = c.o.process(ctx, ev)
	}
	c.obs.countProcessed(ctx, time.Since(start), err)
	processed(span, err)
	// The settle call continues the processing span's trace; ctx itself may be cancelled.
	ref := traced(ctx, h.ref)
	switch c.leases.release(h) {
	case leaseLost:
		log.Warn("lease lost while processing; not settled, the inbox will redeliver the event", zap.NamedError("processor_error", err))
	case leaseAbandoned:
		log.Warn("finished after the shutdown timeout handed the event back; not acknowledged", zap.NamedError("processor_error", err))
	default:
		if err != nil {
			log.Warn("processing failed; nacking the event", zap.Error(err), zap.Duration("delay", c.cfg.NackDelay))
			c.nack([]api.LeaseRef{ref}, c.cfg.nackDelaySeconds(), "processing failed")
			return
		}
		if !c.acks.add(ref) {
			log.Warn("processed after the acks were flushed for shutdown; the inbox will redeliver the event")
		}
	}
}

// drain waits for the events in hand until settle ends, then hands back the ones still running.
func (c *consumer) drain(settle context.Context) {
	done := make(chan struct{})
	go func() {
		c.inFlight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-settle.Done():
	}
	refs := c.leases.abandonAll()
	if len(refs) == 0 {
		return
	}
	c.log.Warn("shutdown timeout: handing back the events still processing", zap.Int("events", len(refs)))
	c.nack(refs, 0, "shutdown timeout")
}

// handBack nacks events without delay, so another consumer can take them at once.
func (c *consumer) handBack(page []api.Event, why string) {
	refs := make([]api.LeaseRef, 0, len(page))
	for _, e := range page {
		if e.EventID != "" && e.LeaseID != "" {
			refs = append(refs, api.LeaseRef{EventID: e.EventID, LeaseID: e.LeaseID})
		}
	}
	if len(refs) > 0 {
		c.nack(refs, 0, why)
	}
}

// nack hands events back, visible again after delay seconds. It makes one attempt: if that
// fails, the leases simply run out and the inbox offers the events again then.
func (c *consumer) nack(refs []api.LeaseRef, delay int, why string) {
	for start := 0; start < len(refs); start += maxBatchSize {
		chunk := refs[start:min(start+maxBatchSize, len(refs))]
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
		ctx, span := c.obs.settle(ctx, c.tenant, "nack", chunk)
		answer, err := c.inbox.Nack(ctx, api.NackRequest{Leases: chunk, DelaySeconds: api.Int(delay)})
		results := answer.Results
		endSpan(span, err)
		c.obs.countSettled(ctx, "nack", results, len(chunk), err)
		cancel()
		if err != nil {
			c.log.Warn("nack failed; the inbox offers the events again when their leases expire",
				zap.String("reason", why), zap.Int("events", len(chunk)), zap.Error(err))
			continue
		}
		for _, r := range results {
			log := c.log.With(zap.String("event_id", r.EventID), zap.String("reason", why))
			switch {
			case r.Error == nil:
				log.Info("event nacked", zap.Int("delay_seconds", delay))
			case r.Error.Code == api.CodeLeaseLost || r.Error.Code == api.CodeNotFound:
				log.Info("nack: the lease had already lapsed; nothing to hand back", zap.String("code", r.Error.Code))
			default:
				log.Warn("nack failed for the event; it is offered again when its lease expires", zap.String("code", r.Error.Code), zap.String("message", r.Error.Message))
			}
		}
	}
}

// failed logs a failed pull and pauses as its kind asks: a growing pause for transient
// failures, a long one for refusals.
func (c *consumer) failed(ctx context.Context, err error) error {
	if client.Transient(err) {
		c.pullFailures++
		d := max(c.o.retryBackoff.Delay(c.pullFailures), client.RetryAfter(err))
		c.log.Warn("pull failed; retrying", zap.Error(err), zap.Int("attempt", c.pullFailures), zap.Duration("pause", d))
		return c.o.pause(ctx, PauseRetry, d)
	}
	// A 404 from /inbox/pull means the URL is wrong, which is a refusal like any other 4xx.
	c.refusals++
	d := max(c.o.refusedBackoff.Delay(c.refusals), client.RetryAfter(err))
	c.log.Error("pull refused; check the key and TRIGGER_INBOX_URL", zap.Error(err), zap.Duration("pause", d))
	return c.o.pause(ctx, PauseRefused, d)
}
