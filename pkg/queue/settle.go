package queue

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// settleParallelism bounds the concurrent writes of one call that settles several events.
const settleParallelism = 16

// Ref names one event, the lease it is held by ("" where the call allows none) and the trace
// context of the consumer's work on it ("" when it sent none).
type Ref struct {
	EventID     string
	LeaseID     string
	Traceparent string
}

// Outcome is what one settle did to one event: Err, or the event's new lease expiry (extend)
// or visibility (nack).
type Outcome struct {
	EventID        string
	Err            error
	LeaseExpiresAt time.Time
	VisibleAt      time.Time
}

// Ack marks each event delivered; acknowledging one twice is not an error. A ref with a lease
// must still hold the event (or be the lease it was acknowledged under), or its outcome is
// ErrLeaseLost. Acknowledged events expire after the tenant's retention.
func (q *Inbox) Ack(ctx context.Context, p tenant.Principal, refs []Ref) []Outcome {
	now := q.now()
	expires := now.Add(retention(p))
	return q.each(ctx, refs, func(ctx context.Context, r Ref) Outcome {
		ctx, span := q.obs.settle(ctx, p.TenantID, r, "ack")
		e, already, err := q.store.Ack(ctx, p.TenantID, r.EventID, r.LeaseID, now, expires)
		if err == nil {
			span.SetAttributes(telemetry.AttrEventType.String(e.Type))
			if !already { // a repeated ack settles nothing new
				m := q.obs.opts.Attrs(p.TenantID)
				q.obs.acked.Add(ctx, 1, m)
				q.obs.timeInInbox.Record(ctx, now.Sub(e.ReceivedAt).Seconds(), m)
			}
		}
		endSettle(span, err)
		return Outcome{EventID: r.EventID, Err: err}
	})
}

// Nack makes each event visible again after delay, dropping its lease. A ref with a lease must
// still hold the event.
func (q *Inbox) Nack(ctx context.Context, p tenant.Principal, refs []Ref, delay time.Duration) []Outcome {
	now := q.now()
	visible := now.Add(delay)
	out := q.each(ctx, refs, func(ctx context.Context, r Ref) Outcome {
		ctx, span := q.obs.settle(ctx, p.TenantID, r, "nack")
		err := q.store.Nack(ctx, p.TenantID, r.EventID, r.LeaseID, visible, now)
		if err == nil {
			q.obs.nacked.Add(ctx, 1, q.obs.opts.Attrs(p.TenantID))
		}
		endSettle(span, err)
		return Outcome{EventID: r.EventID, Err: err, VisibleAt: visible}
	})
	q.announce(p, out, visible)
	return out
}

// Extend moves each held lease's expiry to visibility from now.
func (q *Inbox) Extend(ctx context.Context, p tenant.Principal, refs []Ref, visibility time.Duration) []Outcome {
	now := q.now()
	until := now.Add(visibility)
	out := q.each(ctx, refs, func(ctx context.Context, r Ref) Outcome {
		e, err := q.store.Extend(ctx, p.TenantID, r.EventID, r.LeaseID, until, now)
		return Outcome{EventID: r.EventID, Err: err, LeaseExpiresAt: e.VisibleAt}
	})
	q.announce(p, out, until)
	return out
}

// Redrive puts each dead event back in the inbox with a fresh delivery count.
func (q *Inbox) Redrive(ctx context.Context, p tenant.Principal, eventIDs []string) []Outcome {
	now := q.now()
	refs := make([]Ref, len(eventIDs))
	for i, id := range eventIDs {
		refs[i] = Ref{EventID: id}
	}
	out := q.each(ctx, refs, func(ctx context.Context, r Ref) Outcome {
		return Outcome{EventID: r.EventID, Err: q.store.Redrive(ctx, p.TenantID, r.EventID, now)}
	})
	q.announce(p, out, now)
	return out
}

// redriveAllBudget is how long one RedriveAll keeps starting redrives: past it the call answers
// with what it moved and more=true, well within the request's write budget, instead of running
// into it and answering 503 for work half done.
const redriveAllBudget = 4 * time.Second

// RedriveAll walks the dead letters, redriving a page at a time, up to MaxRedriveAll events or
// redriveAllBudget; more says whether dead events remain.
func (q *Inbox) RedriveAll(ctx context.Context, p tenant.Principal) (count int, more bool, err error) {
	ctx, cancel := detached(ctx)
	defer cancel()
	stopAt := time.Now().Add(redriveAllBudget)
	var after events.Position
	limit := events.MaxRedriveAll
	if w := q.work(p); w > 0 {
		limit = min(limit, w)
	}
	for count < limit {
		if time.Now().After(stopAt) {
			return count, true, nil
		}
		page, err := q.store.Dead(ctx, events.DeadQuery{TenantID: p.TenantID, Limit: min(events.MaxListLimit, limit-count), After: after, Now: q.now(), IDsOnly: true})
		if err != nil {
			return count, false, err
		}
		refs := make([]Ref, len(page.Events))
		for i, e := range page.Events {
			refs[i] = Ref{EventID: e.ID}
		}
		now := q.now()
		out := q.each(ctx, refs, func(ctx context.Context, r Ref) Outcome {
			return Outcome{EventID: r.EventID, Err: q.store.Redrive(ctx, p.TenantID, r.EventID, now)}
		})
		q.announce(p, out, now)
		for _, o := range out {
			switch {
			case o.Err == nil:
				count++
			case !errors.Is(o.Err, events.ErrNotDead) && !errors.Is(o.Err, events.ErrNotFound):
				return count, false, o.Err
			}
		}
		if page.Next.IsZero() {
			break
		}
		after = page.Next
	}
	if count == limit {
		page, err := q.store.Dead(ctx, events.DeadQuery{TenantID: p.TenantID, Limit: 1, Now: q.now(), IDsOnly: true})
		more = err == nil && len(page.Events) > 0
	}
	return count, more, nil
}

// each runs op for every ref, a bounded number at once, and returns the outcomes in order. A
// malformed event id is as absent as an unknown one. The writes outlive the caller's
// cancellation, so a write that reached DynamoDB is not cut off halfway.
func (q *Inbox) each(ctx context.Context, refs []Ref, op func(context.Context, Ref) Outcome) []Outcome {
	out := make([]Outcome, len(refs))
	ctx, cancel := detached(ctx)
	defer cancel()
	sem := make(chan struct{}, settleParallelism)
	var wg sync.WaitGroup
	for i, r := range refs {
		if !events.ValidID(r.EventID) {
			out[i] = Outcome{EventID: r.EventID, Err: events.ErrNotFound}
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = op(ctx, r)
		})
	}
	wg.Wait()
	return out
}

// announce tells the replicas that the events settled without error are visible at at.
func (q *Inbox) announce(p tenant.Principal, out []Outcome, at time.Time) {
	var es []events.Event
	for _, o := range out {
		if o.Err == nil {
			es = append(es, events.Event{ID: o.EventID, Partition: events.PartitionOf(o.EventID, p.Partitions)})
		}
	}
	q.notify.Notify(notices(p.TenantID, es, at)...)
}
