package queue

import (
	"context"
	"errors"
	"time"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// Inbox is the consumer side of a tenant's events: reads, leased pulls that long-poll, and
// the calls that settle what a pull handed out.
type Inbox struct {
	store  events.Store
	now    func() time.Time
	notify Notifier
	watch  *watcher
	obs    inboxObs
	gate   *readGate
	heads  *headAges
	budget func(tenant.Principal) int
	paid   func(tenant.Principal) error
}

// NewInbox returns the inbox use cases over store.
func NewInbox(store events.Store, o Options) *Inbox {
	o = o.complete()
	obs := newInboxObs(o)
	q := &Inbox{
		store:  store,
		now:    o.Now,
		notify: o.Notifier,
		watch:  newWatcher(store, o.Log, o.Now, o.LongPollBackstop, obs.woke),
		obs:    obs,
		gate:   newReadGate(),
		heads:  newHeadAges(o.Now),
		budget: o.WorkBudget,
		paid:   o.Paid,
	}
	registerGauges(o, q.watch, q.heads)
	return q
}

// enterRead waits for a payload-bearing read's turn, then goes ahead only if the tenant has
// paid for the work done meanwhile; keepTurn ends the turn.
func (q *Inbox) enterRead(ctx context.Context, p tenant.Principal) (*turn, error) {
	t, err := q.gate.enter(ctx, p.TenantID)
	if err != nil {
		return nil, err
	}
	if q.paid != nil {
		if err := q.paid(p); err != nil {
			t.leave()
			return nil, err
		}
	}
	return t, nil
}

// work is the most items one request of p may take on; 0: no bound but the API's.
func (q *Inbox) work(p tenant.Principal) int {
	if q.budget == nil {
		return 0
	}
	return max(q.budget(p), 0)
}

// answerBytes is the payload one answer to p may carry: answerBytes, or less when the
// tenant's rate pays for less in a second (a read costs one per events.ReadUnit). The store
// still returns at least one event, however large.
func (q *Inbox) answerBytes(p tenant.Principal) int {
	if w := q.work(p); w > 0 {
		return min(answerBytes, w*events.ReadUnit)
	}
	return answerBytes
}

// Waiting is how many pulls wait for tenantID's events in this process right now.
func (q *Inbox) Waiting(tenantID string) int { return q.watch.waiters(tenantID) }

// Notify takes notices from any replica's Notifier and releases the pulls waiting for them.
// An Inbox is itself a Notifier: a process of one replica can hand its notices straight in.
func (q *Inbox) Notify(ns ...Notice) { q.watch.notify(ns) }

// Page is one page of a listing; NextCursor is "" when nothing follows.
type Page struct {
	Events     []events.Event
	NextCursor string
}

// ListQuery selects a page of the inbox: Limit events from after Cursor ("": the start), of
// EventType if set.
type ListQuery struct {
	Limit     int
	Cursor    string
	EventType *string
}

// List pages through the tenant's undelivered, visible events, oldest first. It leases nothing.
func (q *Inbox) List(ctx context.Context, p tenant.Principal, lq ListQuery) (Page, error) {
	after, err := decodeCursor(p.TenantID, events.ListInbox, lq.Cursor)
	if err != nil {
		return Page{}, err
	}
	iq := events.InboxQuery{TenantID: p.TenantID, Partitions: p.Partitions, Limit: lq.Limit, After: after, Now: q.now(), MaxBytes: q.answerBytes(p)}
	if lq.EventType != nil {
		if err := events.ValidateType(*lq.EventType); err != nil {
			return Page{}, err
		}
		iq.EventType = *lq.EventType
	}
	rt, err := q.enterRead(ctx, p)
	if err != nil {
		return Page{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	page, err := q.store.Inbox(rctx, iq)
	keepTurn(ctx, rt, len(page.Events) > 0)
	return pageOf(p.TenantID, events.ListInbox, page), err
}

// Dead pages through the tenant's dead events, oldest death first.
func (q *Inbox) Dead(ctx context.Context, p tenant.Principal, limit int, cursor string) (Page, error) {
	after, err := decodeCursor(p.TenantID, events.ListDead, cursor)
	if err != nil {
		return Page{}, err
	}
	rt, err := q.enterRead(ctx, p)
	if err != nil {
		return Page{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	page, err := q.store.Dead(rctx, events.DeadQuery{TenantID: p.TenantID, Limit: limit, After: after, Now: q.now(), MaxBytes: q.answerBytes(p)})
	keepTurn(ctx, rt, len(page.Events) > 0)
	return pageOf(p.TenantID, events.ListDead, page), err
}

func decodeCursor(tenantID, list, cursor string) (events.Position, error) {
	if cursor == "" {
		return events.Position{}, nil
	}
	return events.DecodeCursor(tenantID, list, cursor)
}

func pageOf(tenantID, list string, page events.InboxPage) Page {
	out := Page{Events: page.Events}
	if !page.Next.IsZero() {
		out.NextCursor = events.EncodeCursor(tenantID, list, page.Next)
	}
	return out
}

// Get reads one of the tenant's events.
func (q *Inbox) Get(ctx context.Context, p tenant.Principal, eventID string) (events.Event, error) {
	return get(ctx, q.store, p, eventID, q.now())
}

// PullQuery asks for up to Max events, each leased for Visibility, waiting up to Wait for the
// first one when none is visible.
type PullQuery struct {
	Max        int
	Visibility time.Duration
	Wait       time.Duration
}

// Pull leases at once if anything is visible, else waits for the watcher's release, up to
// Wait. A long poll whose tenant's inbox is known to be empty parks without reading it. An
// event whose next lease would exceed the tenant's max_deliveries goes to the dead letters
// instead. A pull whose wait ran out, or that the process's Drain ended, answers no events and
// no error. Leases taken for a caller that has gone meanwhile are given back.
func (q *Inbox) Pull(ctx context.Context, p tenant.Principal, pq PullQuery) ([]events.Event, error) {
	got, _, err := q.PullOrPark(ctx, p, pq, nil)
	return got, err
}

// Parking takes over a long poll's caller so that the pull can wait with no goroutine of its
// own: a waiting connection then costs a few KiB instead of a goroutine's stack and buffers.
type Parking interface {
	// Park takes the caller over; false: it cannot, and the pull waits in the caller's
	// goroutine as Pull does. Called at most once.
	Park() bool
	// Gone says, when a release ends the wait, whether the caller has left: nothing is leased
	// for a caller that cannot take it.
	Gone() bool
	// Abandon lets go of a caller that has gone.
	Abandon()
	// Answer hands a parked pull's outcome to its caller, never in the caller's goroutine,
	// and gives back the leases of events it could not deliver.
	Answer(got []events.Event, err error)
}

// PullOrPark is Pull for a caller park can take over. When the pull must wait and park takes
// the caller, it returns parked: the outcome then goes to park.Answer, from another goroutine.
func (q *Inbox) PullOrPark(ctx context.Context, p tenant.Principal, pq PullQuery, park Parking) (got []events.Event, parked bool, err error) {
	if pq.Wait <= 0 {
		got, err := q.lease(ctx, p, pq)
		got, err = q.handOut(ctx, p, pq, got, err)
		return got, false, err
	}
	// The wall clock, not q.now: this measures real waiting.
	lp := &longPoll{q: q, ctx: ctx, p: p, pq: pq, deadline: q.now().Add(pq.Wait), start: time.Now(), parking: park}
	return lp.run()
}

// longPoll is one pull that may wait: in its caller's goroutine, or parked in the watcher and
// resumed in a new goroutine on each release.
type longPoll struct {
	q        *Inbox
	ctx      context.Context
	p        tenant.Principal
	pq       PullQuery
	deadline time.Time
	start    time.Time
	parking  Parking
	parked   bool // the caller is the parking's: every outcome goes to its Answer
	resumed  bool // run goes on in a goroutine of the watcher's, not the caller's
}

// run reads, leases or waits until the pull has its outcome, or is parked.
func (lp *longPoll) run() ([]events.Event, bool, error) {
	q, p := lp.q, lp.p
	for {
		seq, empty := q.watch.look(p.TenantID, p.Partitions)
		if !empty {
			got, err := q.lease(lp.ctx, p, lp.pq)
			if err != nil || len(got) > 0 {
				return lp.done(q.handOut(lp.ctx, p, lp.pq, got, err))
			}
			q.watch.sawEmpty(p.TenantID, seq)
		}
		q.heads.saw(p.TenantID, nil)
		if !q.now().Before(lp.deadline) {
			return lp.done(nil, nil)
		}
		var err error
		if lp.parked || (lp.parking != nil && lp.parking.Park()) {
			if !lp.parked {
				// The caller's context ends with its handler, which returns now.
				lp.ctx, lp.parked = context.WithoutCancel(lp.ctx), true
			}
			err = q.watch.park(p.TenantID, p.Partitions, lp.deadline, seq, lp.resume)
			if err == nil {
				return nil, true, nil
			}
		} else {
			err = q.watch.wait(lp.ctx, p.TenantID, p.Partitions, lp.deadline, seq)
		}
		switch {
		case errors.Is(err, errWaitOver):
			return lp.done(nil, nil)
		case err != nil && !errors.Is(err, errStale):
			// The caller went away, or the tenant has as many polls parked as it may.
			return lp.done(nil, err)
		}
	}
}

// resume goes on with a parked pull the watcher let go of.
func (lp *longPoll) resume(over bool) {
	if over {
		lp.resumed = true
		lp.done(nil, nil)
		return
	}
	lp.resumed = true
	if lp.parking.Gone() {
		// The release was for an event: the next waiter takes it.
		lp.q.watch.passOn(lp.p.TenantID)
		lp.parking.Abandon()
		lp.q.obs.longPoll.Record(lp.ctx, time.Since(lp.start).Seconds())
		return
	}
	lp.run()
}

// done records the wait and delivers the outcome: returned to the caller's goroutine, or
// answered through the parking.
func (lp *longPoll) done(got []events.Event, err error) ([]events.Event, bool, error) {
	lp.q.obs.longPoll.Record(lp.ctx, time.Since(lp.start).Seconds())
	if !lp.parked {
		return got, false, err
	}
	if lp.resumed {
		lp.parking.Answer(got, err)
	} else {
		// Parked, then not queued (the tenant's cap, a drain): the caller's handler must
		// return before its answer can be recorded.
		go lp.parking.Answer(got, err)
	}
	return nil, true, nil
}

// handOut finishes a pull's lease: leases of a caller gone meanwhile are given back; the
// replicas learn when the leases run out; a full batch releases the next waiting pull.
func (q *Inbox) handOut(ctx context.Context, p tenant.Principal, pq PullQuery, got []events.Event, err error) ([]events.Event, error) {
	if len(got) > 0 && ctx.Err() != nil {
		q.Release(ctx, p, got)
		return nil, ctx.Err()
	}
	if err == nil {
		q.heads.saw(p.TenantID, got)
	}
	if len(got) == 0 {
		return got, err
	}
	q.notify.Notify(notices(p.TenantID, got, got[0].VisibleAt)...)
	if len(got) == pq.Max {
		q.watch.more(p.TenantID)
	}
	return got, err
}

// Drain ends every parked long poll now with no events, and makes later pulls answer at once:
// a stopping process answers its waiting consumers instead of keeping them until it is killed.
func (q *Inbox) Drain() { q.watch.drain() }

// Release gives back the leases of events that never reached the consumer (its connection
// broke before the answer was written): each is visible again with its delivery count as it
// was. A lease that no longer holds its event is left alone.
func (q *Inbox) Release(ctx context.Context, p tenant.Principal, got []events.Event) {
	ctx, cancel := detached(ctx)
	defer cancel()
	refs := make([]Ref, len(got))
	for i, e := range got {
		refs[i] = Ref{EventID: e.ID, LeaseID: e.LeaseID}
	}
	now := q.now()
	var back []events.Event
	for i, o := range q.each(ctx, refs, func(ctx context.Context, r Ref) Outcome {
		return Outcome{EventID: r.EventID, Err: q.store.Release(ctx, p.TenantID, r.EventID, r.LeaseID, now)}
	}) {
		q.obs.released(ctx, p.TenantID, o.Err)
		if o.Err == nil {
			back = append(back, got[i])
		}
	}
	q.notify.Notify(notices(p.TenantID, back, now)...)
}

// leaseMax is the events one pull may lease: what it asked for, and no more than its tenant's
// work budget (each lease is a write, and costs one of the rate).
func leaseMax(asked, work int) int {
	if work > 0 {
		return min(asked, work)
	}
	return asked
}

// lease takes events in a budget of its own: a lease DynamoDB applied is not cut off halfway
// because the caller left; Pull gives it back instead.
func (q *Inbox) lease(ctx context.Context, p tenant.Principal, pq PullQuery) ([]events.Event, error) {
	rt, err := q.enterRead(ctx, p)
	if err != nil {
		return nil, err
	}
	wctx, cancel := detached(ctx)
	defer cancel()
	wctx, span := q.obs.receive(wctx, p.TenantID)
	got, err := q.store.Lease(wctx, events.LeaseQuery{
		TenantID: p.TenantID, Partitions: p.Partitions, Max: leaseMax(pq.Max, q.work(p)), Visibility: pq.Visibility,
		MaxDeliveries: maxDeliveries(p), Now: q.now(), MaxBytes: q.answerBytes(p),
	})
	q.obs.received(wctx, span, p.TenantID, got, err)
	keepTurn(ctx, rt, len(got.Events) > 0)
	return got.Events, err
}
