package dynamo

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/events"
)

// leaseParallelism bounds the conditional writes one pull makes at once.
const leaseParallelism = 16

func upperBound(now time.Time) string {
	// '~' sorts after every event id character, so every entry visible at now is included.
	return fmt.Sprintf("%013d#~", now.UnixMilli())
}

// Visible asks each partition's index for one visible entry.
func (s *Store) Visible(ctx context.Context, tenantID string, partitions int, now time.Time) (bool, error) {
	for p := range max(partitions, 1) {
		out, err := s.client.Query(ctx, &dynamodb.QueryInput{
			TableName:              aws.String(s.table),
			IndexName:              aws.String(ddb.InboxIndex),
			KeyConditionExpression: aws.String("inbox_pk = :pk AND inbox_sk <= :upper"),
			ExpressionAttributeValues: ddb.Item{
				":pk":    ddb.S(inboxPK(tenantID, p)),
				":upper": ddb.S(upperBound(now)),
			},
			Limit: aws.Int32(1),
		})
		if err != nil {
			return false, fmt.Errorf("peek inbox: %w", ddb.Translate(err))
		}
		if len(out.Items) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// maxExtraReads bounds the further index pages one pull reads once every candidate it has is
// claimed by another pull or was taken by another puller.
const maxExtraReads = 3

// Lease reads candidates from every partition's index, oldest first, and takes them one
// conditional write each. A candidate another puller took first, or that the index still
// shows after an ack, fails its condition and is skipped. Pulls in this process skip each
// other's candidates rather than race for them, reading further into the index when every
// candidate in hand is someone else's.
func (s *Store) Lease(ctx context.Context, q events.LeaseQuery) (events.Leased, error) {
	r := &leaseRun{s: s, q: q, resume: make([]ddb.Item, max(q.Partitions, 1)), order: map[string]string{}, budget: byteBudget{max: q.MaxBytes}}
	// Read more candidates than asked for: concurrent pullers see the same oldest entries.
	r.per = min(100, max(2*q.Max, 10))
	if err := r.readPartitions(ctx, true); err != nil {
		return events.Leased{}, err
	}
	for extra := 0; len(r.leased) < q.Max && !r.budget.spent(); {
		if len(r.candidates) == 0 {
			if extra == maxExtraReads || !r.readFurther(ctx) {
				break
			}
			extra++
		}
		if err := r.wave(ctx); err != nil {
			if len(r.leased) > 0 {
				// Hand out what is held rather than strand it until its lease lapses.
				break
			}
			return r.out, err
		}
	}
	if err := r.payloads(ctx); err != nil {
		return events.Leased{}, err
	}
	slices.SortFunc(r.out.Events, func(a, b events.Event) int { return compare(r.order[a.ID], r.order[b.ID]) })
	return r.out, nil
}

// payloads reads the payloads of what was leased. When they cannot be read, the leases are
// handed back, so the events are not hidden until their leases lapse.
func (r *leaseRun) payloads(ctx context.Context) error {
	evs := make([]events.Event, len(r.leased))
	states := make([]ddb.Item, len(r.leased))
	for i, l := range r.leased {
		evs[i], states[i] = fromItem(l.state), l.state
	}
	evs, err := r.s.withPayloads(ctx, evs, states)
	if err == nil {
		r.out.Events = evs
		return nil
	}
	back, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	for _, st := range states {
		// One that fails lapses with its lease, as any lease a consumer never settles.
		_ = r.s.Release(back, r.q.TenantID, ddb.GetS(st, "event_id"), ddb.GetS(st, "lease_id"), r.q.Now)
	}
	return err
}

// releaseTimeout bounds the hand-back of leases whose payloads could not be read.
const releaseTimeout = 5 * time.Second

func oldestFirst(a, b events.Position) int { return compare(a.SortKey(), b.SortKey()) }

// leaseRun is one Lease call's state: candidates in hand, where each partition's index read
// stopped, and what it leased and buried so far.
type leaseRun struct {
	s          *Store
	q          events.LeaseQuery
	per        int
	candidates []events.Position
	resume     []ddb.Item        // where each partition's last read stopped; nil: at its end
	order      map[string]string // event id → the index entry it was leased from
	leased     []leasedState
	out        events.Leased
	budget     byteBudget // the payload bytes leased so far
}

// partitionReads bounds the index reads one pull has in flight.
const partitionReads = 8

// readPartitions reads the next index page of every partition at once: all of them at the
// start, afterwards those with a page left. The candidates come out oldest first.
func (r *leaseRun) readPartitions(ctx context.Context, start bool) error {
	type page struct {
		found []events.Position
		next  ddb.Item
		err   error
	}
	pages := make([]page, len(r.resume))
	sem := make(chan struct{}, partitionReads)
	var wg sync.WaitGroup
	for p, from := range r.resume {
		if !start && from == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			pages[p].found, pages[p].next, pages[p].err = r.read(ctx, p, from)
		})
	}
	wg.Wait()
	var err error
	for p, pg := range pages {
		if pg.err != nil {
			err = cmp.Or(err, pg.err)
			r.resume[p] = nil // a failed read only ends this partition's search early
			continue
		}
		r.candidates = append(r.candidates, pg.found...)
		r.resume[p] = pg.next
	}
	slices.SortFunc(r.candidates, oldestFirst)
	return err
}

func (r *leaseRun) read(ctx context.Context, p int, from ddb.Item) ([]events.Position, ddb.Item, error) {
	out, err := r.s.client.Query(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(r.s.table),
		IndexName:              aws.String(ddb.InboxIndex),
		KeyConditionExpression: aws.String("inbox_pk = :pk AND inbox_sk <= :upper"),
		ExpressionAttributeValues: ddb.Item{
			":pk":    ddb.S(inboxPK(r.q.TenantID, p)),
			":upper": ddb.S(upperBound(r.q.Now)),
		},
		ExclusiveStartKey: from,
		Limit:             aws.Int32(int32(r.per)),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("query inbox: %w", ddb.Translate(err))
	}
	found := make([]events.Position, 0, len(out.Items))
	for _, it := range out.Items {
		pos, err := events.ParseSortKey(ddb.GetS(it, "inbox_sk"))
		if err != nil {
			return nil, nil, fmt.Errorf("inbox entry: %w", err)
		}
		found = append(found, pos)
	}
	return found, out.LastEvaluatedKey, nil
}

// readFurther reads the next page of every partition that has one; false when none had, or
// nothing came of it.
func (r *leaseRun) readFurther(ctx context.Context) bool {
	if !slices.ContainsFunc(r.resume, func(k ddb.Item) bool { return k != nil }) {
		return false
	}
	_ = r.readPartitions(ctx, false) // a failed read only ends this pull's search early
	return len(r.candidates) > 0
}

// wave claims as many candidates as are still wanted and leases them in parallel.
func (r *leaseRun) wave(ctx context.Context) error {
	var wave []events.Position
	for want := r.budget.chunk(r.q.Max - len(r.leased)); len(r.candidates) > 0 && len(wave) < want; {
		if c := r.candidates[0]; r.s.claims.take(r.q.TenantID, c.SortKey()) {
			wave = append(wave, c)
			r.order[c.EventID] = c.SortKey()
		}
		r.candidates = r.candidates[1:]
	}
	if len(wave) == 0 {
		return nil
	}
	got, buried, err := r.s.leaseWave(ctx, r.q, wave)
	for _, e := range got {
		r.budget.add(e.size)
	}
	r.out.Buried = append(r.out.Buried, buried...)
	r.leased = append(r.leased, got...)
	if err == nil && len(got)+len(buried) < len(wave) && len(r.candidates) > 1 {
		// Other pullers took part of this wave: they are working down the same oldest
		// entries. Jumping to a random place among the rest stops the pullers from colliding
		// on every following candidate too. A lone puller never gets here, so it keeps strict
		// oldest-first order.
		n := rand.IntN(len(r.candidates))
		r.candidates = append(r.candidates[n:], r.candidates[:n]...)
	}
	return err
}

func (s *Store) leaseWave(ctx context.Context, q events.LeaseQuery, wave []events.Position) (leased []leasedState, buried []string, err error) {
	results := make([]leaseOutcome, len(wave))
	sem := make(chan struct{}, leaseParallelism)
	var wg sync.WaitGroup
	for i, pos := range wave {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = s.leaseOne(ctx, q, pos)
			s.claims.done(q.TenantID, pos.SortKey(), results[i].leased != nil)
		}()
	}
	wg.Wait()
	for _, r := range results {
		switch {
		case r.leased != nil:
			leased = append(leased, leasedState{state: r.leased, size: int(ddb.GetN(r.leased, payloadBytesAttr))})
		case r.buried:
			buried = append(buried, r.eventID)
		}
		if r.err != nil && err == nil {
			err = r.err
		}
	}
	return leased, buried, err
}

// leasedState is the state item of an event one lease call took, and its payload's size.
type leasedState struct {
	state ddb.Item
	size  int
}

// leaseOutcome is what became of one candidate: leased (its state item after the lease),
// buried, skipped (neither) or failed.
type leaseOutcome struct {
	eventID string
	leased  ddb.Item
	buried  bool
	err     error
}

// leaseOne takes one candidate if it is still exactly as the index showed it. An event that
// has been leased MaxDeliveries times already is buried instead. A condition that fails on
// this call's own lease id is this write, applied by an attempt whose answer was lost.
func (s *Store) leaseOne(ctx context.Context, q events.LeaseQuery, pos events.Position) leaseOutcome {
	res := leaseOutcome{eventID: pos.EventID}
	until := q.Now.Add(q.Visibility)
	leaseID := events.NewLeaseID()
	out, err := ddb.UpdateItem(ctx, s.client, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(q.TenantID, pos.EventID),
		UpdateExpression:         aws.String("SET lease_id = :lease, delivery_count = delivery_count + :one, visible_at = :until, inbox_sk = :newsk, leased_at = :now"),
		ConditionExpression:      aws.String("#status = :undelivered AND inbox_sk = :oldsk AND delivery_count < :max AND " + notExpired),
		ExpressionAttributeNames: statusName,
		ExpressionAttributeValues: ddb.Item{
			":lease":       ddb.S(leaseID),
			":one":         ddb.N(1),
			":until":       ddb.N(until.UnixMilli()),
			":newsk":       ddb.S(events.Position{VisibleAt: until, EventID: pos.EventID}.SortKey()),
			":now":         ddb.N(q.Now.UnixMilli()),
			":undelivered": ddb.S(string(events.StatusUndelivered)),
			":oldsk":       ddb.S(pos.SortKey()),
			":max":         ddb.N(int64(q.MaxDeliveries)),
			":nows":        ddb.N(q.Now.Unix()),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		res.leased = out.Attributes
		return res
	}
	old, err := failedItem(err, q.Now)
	if err == events.ErrNotFound {
		return res
	}
	if err != nil {
		res.err = fmt.Errorf("lease event: %w", err)
		return res
	}
	if ddb.GetS(old, "lease_id") == leaseID {
		res.leased = old
		return res
	}
	if events.Status(ddb.GetS(old, "status")) == events.StatusUndelivered && ddb.GetS(old, "inbox_sk") == pos.SortKey() &&
		ddb.GetN(old, "delivery_count") >= int64(q.MaxDeliveries) {
		res.buried, res.err = s.bury(ctx, q.TenantID, pos, q.Now)
	}
	return res
}

// bury moves an event that has used up its deliveries from the inbox to the dead letters.
// buried is false when another caller moved or changed it first.
func (s *Store) bury(ctx context.Context, tenantID string, pos events.Position, now time.Time) (buried bool, err error) {
	_, err = ddb.UpdateItem(ctx, s.client, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 key(tenantID, pos.EventID),
		UpdateExpression:                    aws.String("SET #status = :dead, dead_at = :now, dead_pk = :tenant, dead_sk = :deadsk REMOVE inbox_pk, inbox_sk, lease_id"),
		ConditionExpression:                 aws.String("#status = :undelivered AND inbox_sk = :oldsk"),
		ExpressionAttributeNames:            statusName,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ExpressionAttributeValues: ddb.Item{
			":dead":        ddb.S(string(events.StatusDead)),
			":now":         ddb.N(now.UnixMilli()),
			":tenant":      ddb.S(tenantID),
			":deadsk":      ddb.S(events.Position{VisibleAt: now, EventID: pos.EventID}.SortKey()),
			":undelivered": ddb.S(string(events.StatusUndelivered)),
			":oldsk":       ddb.S(pos.SortKey()),
		},
	})
	if err == nil {
		return true, nil
	}
	old, err := failedItem(err, now)
	switch {
	case err == events.ErrNotFound:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("bury event: %w", err)
	}
	// Dead at this very call's time: an attempt whose answer was lost buried it.
	return events.Status(ddb.GetS(old, "status")) == events.StatusDead && ddb.GetN(old, "dead_at") == now.UnixMilli(), nil
}

// Extend moves the lease's expiry; only the lease that holds the event may.
func (s *Store) Extend(ctx context.Context, tenantID, eventID, leaseID string, until, now time.Time) (events.Event, error) {
	// The entry this write creates may be one a pull just leased from, under a caller's clock.
	s.claims.free(tenantID, events.Position{VisibleAt: until, EventID: eventID}.SortKey())
	out, err := ddb.UpdateItem(ctx, s.client, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(tenantID, eventID),
		UpdateExpression:         aws.String("SET visible_at = :until, inbox_sk = :newsk"),
		ConditionExpression:      aws.String("#status = :undelivered AND lease_id = :lease"),
		ExpressionAttributeNames: statusName,
		ExpressionAttributeValues: ddb.Item{
			":until":       ddb.N(until.UnixMilli()),
			":newsk":       ddb.S(events.Position{VisibleAt: until, EventID: eventID}.SortKey()),
			":undelivered": ddb.S(string(events.StatusUndelivered)),
			":lease":       ddb.S(leaseID),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return fromItem(out.Attributes), nil
	}
	if _, err := failedItem(err, now); err != nil {
		return events.Event{}, fmt.Errorf("extend lease: %w", err)
	}
	return events.Event{}, events.ErrLeaseLost
}

// Nack makes an undelivered event visible again at visibleAt.
func (s *Store) Nack(ctx context.Context, tenantID, eventID, leaseID string, visibleAt, now time.Time) error {
	s.claims.free(tenantID, events.Position{VisibleAt: visibleAt, EventID: eventID}.SortKey())
	cond := "#status = :undelivered"
	vals := ddb.Item{
		":visible":     ddb.N(visibleAt.UnixMilli()),
		":newsk":       ddb.S(events.Position{VisibleAt: visibleAt, EventID: eventID}.SortKey()),
		":undelivered": ddb.S(string(events.StatusUndelivered)),
	}
	update := "SET visible_at = :visible, inbox_sk = :newsk REMOVE lease_id"
	if leaseID != "" {
		cond += " AND lease_id = :lease"
		vals[":lease"] = ddb.S(leaseID)
		// The lease removed is remembered, so a retry of this nack knows it already happened.
		update = "SET visible_at = :visible, inbox_sk = :newsk, nacked_lease = :lease REMOVE lease_id"
	}
	_, err := ddb.UpdateItem(ctx, s.client, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 key(tenantID, eventID),
		UpdateExpression:                    aws.String(update),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            statusName,
		ExpressionAttributeValues:           vals,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return nil
	}
	old, err := failedItem(err, now)
	if err != nil {
		return fmt.Errorf("nack event: %w", err)
	}
	if leaseID != "" && ddb.GetS(old, "nacked_lease") == leaseID {
		return nil
	}
	if events.Status(ddb.GetS(old, "status")) != events.StatusUndelivered {
		return events.ErrSettled
	}
	return events.ErrLeaseLost
}

// Release makes a leased event visible now and takes back the delivery its lease counted.
// The lease id is kept as the released one, so a retry of this write knows it happened.
func (s *Store) Release(ctx context.Context, tenantID, eventID, leaseID string, now time.Time) error {
	s.claims.free(tenantID, events.Position{VisibleAt: now, EventID: eventID}.SortKey())
	_, err := ddb.UpdateItem(ctx, s.client, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(tenantID, eventID),
		UpdateExpression:         aws.String("SET visible_at = :now, inbox_sk = :newsk, delivery_count = delivery_count - :one, released_lease = :lease REMOVE lease_id"),
		ConditionExpression:      aws.String("#status = :undelivered AND lease_id = :lease AND delivery_count > :zero"),
		ExpressionAttributeNames: statusName,
		ExpressionAttributeValues: ddb.Item{
			":now":         ddb.N(now.UnixMilli()),
			":newsk":       ddb.S(events.Position{VisibleAt: now, EventID: eventID}.SortKey()),
			":one":         ddb.N(1),
			":zero":        ddb.N(0),
			":lease":       ddb.S(leaseID),
			":undelivered": ddb.S(string(events.StatusUndelivered)),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return nil
	}
	old, err := failedItem(err, now)
	if err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	if ddb.GetS(old, "released_lease") == leaseID {
		return nil
	}
	return events.ErrLeaseLost
}

// Dead lists a tenant's dead events through the dead-letter index.
func (s *Store) Dead(ctx context.Context, q events.DeadQuery) (events.InboxPage, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(ddb.DeadIndex),
		KeyConditionExpression:    aws.String("dead_pk = :tenant"),
		ExpressionAttributeValues: ddb.Item{":tenant": ddb.S(q.TenantID)},
		Limit:                     aws.Int32(int32(q.Limit)),
	}
	if !q.After.IsZero() {
		in.ExclusiveStartKey = ddb.Item{
			"dead_pk":   ddb.S(q.TenantID),
			"dead_sk":   ddb.S(q.After.SortKey()),
			"tenant_id": ddb.S(q.TenantID),
			"event_id":  ddb.S(q.After.EventID),
		}
	}
	out, err := s.client.Query(ctx, in)
	if err != nil {
		return events.InboxPage{}, fmt.Errorf("query dead letters: %w", ddb.Translate(err))
	}
	var page events.InboxPage
	positions := make([]events.Position, 0, len(out.Items))
	for _, it := range out.Items {
		pos, err := events.ParseSortKey(ddb.GetS(it, "dead_sk"))
		if err != nil {
			return events.InboxPage{}, fmt.Errorf("dead entry: %w", err)
		}
		positions = append(positions, pos)
	}
	if out.LastEvaluatedKey != nil && len(positions) > 0 {
		page.Next = positions[len(positions)-1]
	}
	if len(positions) == 0 {
		return page, nil
	}
	if q.IDsOnly {
		page.Events = make([]events.Event, len(positions))
		for i, pos := range positions {
			page.Events[i] = events.Event{TenantID: q.TenantID, ID: pos.EventID}
		}
		return page, nil
	}
	evs, cut, err := s.fetchPage(ctx, q.TenantID, positions, q.MaxBytes, func(it ddb.Item) bool {
		return events.Status(ddb.GetS(it, "status")) == events.StatusDead
	})
	if err != nil {
		return events.InboxPage{}, err
	}
	page.Events = evs
	if !cut.IsZero() {
		page.Next = cut
	}
	return page, nil
}

// Redrive returns a dead event to its inbox partition, visible now, with a fresh count.
func (s *Store) Redrive(ctx context.Context, tenantID, eventID string, now time.Time) error {
	s.claims.free(tenantID, events.Position{VisibleAt: now, EventID: eventID}.SortKey())
	state, err := s.getState(ctx, tenantID, eventID, now)
	if err != nil {
		return err
	}
	e := fromItem(state)
	if e.Status != events.StatusDead {
		return events.ErrNotDead
	}
	_, err = ddb.UpdateItem(ctx, s.client, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 key(tenantID, eventID),
		UpdateExpression:                    aws.String("SET #status = :undelivered, delivery_count = :zero, visible_at = :now, inbox_pk = :pk, inbox_sk = :sk, redriven_at = :now REMOVE dead_pk, dead_sk, dead_at, lease_id"),
		ConditionExpression:                 aws.String("#status = :dead"),
		ExpressionAttributeNames:            statusName,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ExpressionAttributeValues: ddb.Item{
			":undelivered": ddb.S(string(events.StatusUndelivered)),
			":zero":        ddb.N(0),
			":now":         ddb.N(now.UnixMilli()),
			":pk":          ddb.S(inboxPK(tenantID, e.Partition)),
			":sk":          ddb.S(events.Position{VisibleAt: now, EventID: eventID}.SortKey()),
			":dead":        ddb.S(string(events.StatusDead)),
		},
	})
	if err == nil {
		return nil
	}
	old, err := failedItem(err, now)
	switch {
	case err != nil && err != events.ErrNotFound:
		return fmt.Errorf("redrive event: %w", err)
	case err == nil && ddb.GetN(old, "redriven_at") == now.UnixMilli():
		return nil // an attempt whose answer was lost redrove it
	}
	// Someone redrove or acknowledged it between the read and the write.
	return events.ErrNotDead
}
