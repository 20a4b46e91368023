// Package dynamo stores events in DynamoDB: the Events table and its sparse inbox index.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/events"
)

// maxPagesPerPartition bounds the index pages one listing reads per partition when a type
// filter discards most entries; the cursor then resumes where the reading stopped.
const maxPagesPerPartition = 5

// Store implements events.Store.
type Store struct {
	client *dynamodb.Client
	table  string
	claims *claims
}

var _ events.Store = (*Store)(nil)

// New returns a store over tables.Events.
func New(client *dynamodb.Client, tables ddb.Tables) *Store {
	return &Store{client: client, table: tables.Events, claims: newClaims()}
}

func inboxPK(tenantID string, partition int) string {
	return tenantID + "#" + strconv.Itoa(partition)
}

func toItem(e events.Event) ddb.Item {
	it := ddb.Item{
		"tenant_id":      ddb.S(e.TenantID),
		"event_id":       ddb.S(e.ID),
		"event_type":     ddb.S(e.Type),
		"received_at":    ddb.N(e.ReceivedAt.UnixMilli()),
		"status":         ddb.S(string(e.Status)),
		"delivery_count": ddb.N(int64(e.DeliveryCount)),
		"visible_at":     ddb.N(e.VisibleAt.UnixMilli()),
		"partition":      ddb.N(int64(e.Partition)),
	}
	if e.Traceparent != "" {
		it["traceparent"] = ddb.S(e.Traceparent)
	}
	if !e.ExpiresAt.IsZero() {
		it[ddb.EventsTTLAttribute] = ddb.N(e.ExpiresAt.Unix())
	}
	if e.Status == events.StatusUndelivered {
		it["inbox_pk"] = ddb.S(inboxPK(e.TenantID, e.Partition))
		it["inbox_sk"] = ddb.S(events.Position{VisibleAt: e.VisibleAt, EventID: e.ID}.SortKey())
	}
	return it
}

func fromItem(it ddb.Item) events.Event {
	e := events.Event{
		TenantID:      ddb.GetS(it, "tenant_id"),
		ID:            ddb.GetS(it, "event_id"),
		Type:          ddb.GetS(it, "event_type"),
		Payload:       ddb.GetB(it, payloadAttr), // when inline; withPayloads reads the others
		ReceivedAt:    time.UnixMilli(ddb.GetN(it, "received_at")).UTC(),
		Status:        events.Status(ddb.GetS(it, "status")),
		DeliveryCount: int(ddb.GetN(it, "delivery_count")),
		VisibleAt:     time.UnixMilli(ddb.GetN(it, "visible_at")).UTC(),
		Partition:     int(ddb.GetN(it, "partition")),
	}
	if ms := ddb.GetN(it, "delivered_at"); ms != 0 {
		e.DeliveredAt = time.UnixMilli(ms).UTC()
	}
	if ms := ddb.GetN(it, "dead_at"); ms != 0 {
		e.DeadAt = time.UnixMilli(ms).UTC()
	}
	if s := ddb.GetN(it, ddb.EventsTTLAttribute); s != 0 {
		e.ExpiresAt = time.Unix(s, 0).UTC()
	}
	if s := ddb.GetN(it, payloadExpiresAttr); s != 0 {
		e.PayloadExpiresAt = time.Unix(s, 0).UTC()
	}
	e.LeaseID = ddb.GetS(it, "lease_id")
	e.Traceparent = ddb.GetS(it, "traceparent")
	return e
}

// expired reports whether TTL should already have removed the item.
func expired(it ddb.Item, now time.Time) bool {
	exp := ddb.GetN(it, ddb.EventsTTLAttribute)
	return exp != 0 && exp <= now.Unix()
}

// Put writes a new event: its payload's item first, when it has one, so that a state anyone
// can lease always has its payload. The state's condition guards against ever overwriting an
// existing id. Ids are fresh random 128-bit values, so an item already under this id with this
// event's received_at is this write, applied by an attempt whose answer was lost and then
// retried.
func (s *Store) Put(ctx context.Context, e events.Event) error {
	state, payload := items(e)
	if err := s.putPayload(ctx, payload); err != nil {
		return err
	}
	_, err := ddb.PutItem(ctx, s.client, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.table),
		Item:                                state,
		ConditionExpression:                 aws.String("attribute_not_exists(event_id)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil || ownPut(err, e) {
		return nil
	}
	return fmt.Errorf("put event: %w", ddb.Translate(err))
}

// putPayload writes a payload's own item (nil: none). It takes no condition: the id is fresh,
// and an attempt applied late writes the same bytes again.
func (s *Store) putPayload(ctx context.Context, payload ddb.Item) error {
	if payload == nil {
		return nil
	}
	if _, err := ddb.PutItem(ctx, s.client, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: payload}); err != nil {
		return fmt.Errorf("put payload: %w", ddb.Translate(err))
	}
	return nil
}

// ownPut reports whether err is a put's condition failing on the item that put wrote.
func ownPut(err error, e events.Event) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf) && ccf.Item != nil &&
		ddb.GetN(ccf.Item, "received_at") == e.ReceivedAt.UnixMilli() && ddb.GetS(ccf.Item, "event_type") == e.Type
}

// Get reads an event with a consistent read.
func (s *Store) Get(ctx context.Context, tenantID, eventID string, now time.Time) (events.Event, error) {
	state, err := s.getState(ctx, tenantID, eventID, now)
	if err != nil {
		return events.Event{}, err
	}
	evs, err := s.withPayloads(ctx, []events.Event{fromItem(state)}, []ddb.Item{state})
	if err != nil {
		return events.Event{}, err
	}
	if len(evs) == 0 {
		return events.Event{}, events.ErrNotFound
	}
	return evs[0], nil
}

// getState reads an event's state item, consistently; ErrNotFound when absent or expired.
func (s *Store) getState(ctx context.Context, tenantID, eventID string, now time.Time) (ddb.Item, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(tenantID, eventID),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get event: %w", ddb.Translate(err))
	}
	if out.Item == nil || expired(out.Item, now) {
		return nil, events.ErrNotFound
	}
	return out.Item, nil
}

// Ack marks an event delivered and takes it out of the indexes. The lease it was acknowledged
// under stays on the item, so a repeated ack under the same lease is recognised. It returns
// what the acknowledgement needs to be measured and traced: the event's id, type and
// received_at (the rest is unset); the self-assignments make UPDATED_OLD return those
// attributes without the payload. The state never outlives its payload: when the tenant's
// retention has grown since the payload was written, the state expires with the payload.
func (s *Store) Ack(ctx context.Context, tenantID, eventID, leaseID string, now, expiresAt time.Time) (e events.Event, already bool, err error) {
	exp := expiresAt.Unix()
	for {
		e, already, keepUntil, err := s.ack(ctx, tenantID, eventID, leaseID, now, exp)
		if keepUntil == 0 || keepUntil >= exp {
			return e, already, err
		}
		exp = keepUntil
	}
}

// ack is one try of Ack; keepUntil is set, and nothing written, when the payload expires
// before exp.
func (s *Store) ack(ctx context.Context, tenantID, eventID, leaseID string, now time.Time, exp int64) (e events.Event, already bool, keepUntil int64, err error) {
	cond := "attribute_exists(event_id) AND #status <> :delivered AND " + notExpired +
		" AND (attribute_not_exists(payload_expires_at) OR payload_expires_at >= :exp)"
	vals := ddb.Item{
		":delivered": ddb.S(string(events.StatusDelivered)),
		":now":       ddb.N(now.UnixMilli()),
		":nows":      ddb.N(now.Unix()),
		":exp":       ddb.N(exp),
	}
	if leaseID != "" {
		cond += " AND lease_id = :lease"
		vals[":lease"] = ddb.S(leaseID)
	}
	out, err := ddb.UpdateItem(ctx, s.client, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 key(tenantID, eventID),
		UpdateExpression:                    aws.String("SET #status = :delivered, delivered_at = :now, expires_at = :exp, received_at = received_at, event_type = event_type REMOVE inbox_pk, inbox_sk, dead_pk, dead_sk"),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            statusName,
		ExpressionAttributeValues:           vals,
		ReturnValues:                        types.ReturnValueUpdatedOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return events.Event{
			TenantID:   tenantID,
			ID:         eventID,
			Type:       ddb.GetS(out.Attributes, "event_type"),
			ReceivedAt: time.UnixMilli(ddb.GetN(out.Attributes, "received_at")).UTC(),
		}, false, 0, nil
	}
	old, err := failedItem(err, now)
	if err != nil {
		return events.Event{}, false, 0, fmt.Errorf("ack event: %w", err)
	}
	status := events.Status(ddb.GetS(old, "status"))
	if status == events.StatusDelivered && (leaseID == "" || ddb.GetS(old, "lease_id") == leaseID) {
		e := fromItem(old)
		e.Payload = nil
		return e, true, 0, nil
	}
	if status != events.StatusDelivered && (leaseID == "" || ddb.GetS(old, "lease_id") == leaseID) {
		if keep := ddb.GetN(old, payloadExpiresAttr); keep != 0 && keep < exp {
			return events.Event{}, false, keep, nil
		}
	}
	return events.Event{}, false, 0, events.ErrLeaseLost
}

// notExpired is the condition that TTL should not have removed the item yet (":nows": now in
// epoch seconds): TTL deletes up to days late, and an expired event must stay gone.
const notExpired = "(attribute_not_exists(expires_at) OR expires_at > :nows)"

var statusName = map[string]string{"#status": "status"}

func key(tenantID, eventID string) ddb.Item {
	return ddb.Item{"tenant_id": ddb.S(tenantID), "event_id": ddb.S(eventID)}
}

// failedItem returns the item a failed condition saw, ErrNotFound when there was none (or it
// had expired), or the translated error when the write failed for another reason.
func failedItem(err error, now time.Time) (ddb.Item, error) {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return nil, ddb.Translate(err)
	}
	if ccf.Item == nil || expired(ccf.Item, now) {
		return nil, events.ErrNotFound
	}
	return ccf.Item, nil
}

// partitionScan is what one partition's index contributed to a listing.
type partitionScan struct {
	keys    []events.Position
	more    bool            // entries may follow reached
	reached events.Position // every entry up to here was seen
}

// Inbox lists a tenant's visible undelivered events across its partitions, oldest first.
func (s *Store) Inbox(ctx context.Context, q events.InboxQuery) (events.InboxPage, error) {
	partitions := max(q.Partitions, 1)
	scans := make([]partitionScan, partitions)
	errs := make([]error, partitions)
	sem := make(chan struct{}, partitionReads)
	var wg sync.WaitGroup
	for p := range partitions {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			scans[p], errs[p] = s.scanPartition(ctx, q, p)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return events.InboxPage{}, err
	}

	// Merge. A partition that stopped early has only been seen up to its reached position,
	// so the page may not go past the earliest such position.
	var merged []events.Position
	var bound events.Position
	for _, sc := range scans {
		merged = append(merged, sc.keys...)
		if sc.more && (bound.IsZero() || sc.reached.SortKey() < bound.SortKey()) {
			bound = sc.reached
		}
	}
	slices.SortFunc(merged, func(a, b events.Position) int { return compare(a.SortKey(), b.SortKey()) })
	if !bound.IsZero() {
		merged = slices.DeleteFunc(merged, func(p events.Position) bool { return p.SortKey() > bound.SortKey() })
	}
	var page events.InboxPage
	switch {
	case len(merged) > q.Limit:
		merged = merged[:q.Limit]
		page.Next = merged[len(merged)-1]
	case !bound.IsZero():
		page.Next = bound
	}
	if len(merged) == 0 {
		return page, nil
	}
	evs, cut, err := s.fetchPage(ctx, q.TenantID, merged, q.MaxBytes, func(it ddb.Item) bool {
		// The index is eventually consistent: an entry may outlive the ack that removed it.
		return !expired(it, q.Now) && events.Status(ddb.GetS(it, "status")) == events.StatusUndelivered
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

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Store) scanPartition(ctx context.Context, q events.InboxQuery, partition int) (partitionScan, error) {
	pk := inboxPK(q.TenantID, partition)
	// '~' sorts after every event id character, so every entry visible at Now is included.
	upper := fmt.Sprintf("%013d#~", q.Now.UnixMilli())
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(ddb.InboxIndex),
		KeyConditionExpression:    aws.String("inbox_pk = :pk AND inbox_sk <= :upper"),
		ExpressionAttributeValues: ddb.Item{":pk": ddb.S(pk), ":upper": ddb.S(upper)},
		Limit:                     aws.Int32(int32(q.Limit)),
	}
	if q.EventType != "" {
		in.FilterExpression = aws.String("event_type = :type")
		in.ExpressionAttributeValues[":type"] = ddb.S(q.EventType)
		in.Limit = aws.Int32(100)
	}
	if !q.After.IsZero() {
		in.ExclusiveStartKey = ddb.Item{
			"inbox_pk":  ddb.S(pk),
			"inbox_sk":  ddb.S(q.After.SortKey()),
			"tenant_id": ddb.S(q.TenantID),
			"event_id":  ddb.S(q.After.EventID),
		}
	}
	var scan partitionScan
	for pages := 0; ; pages++ {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return partitionScan{}, fmt.Errorf("query inbox: %w", ddb.Translate(err))
		}
		for i, it := range out.Items {
			pos, err := events.ParseSortKey(ddb.GetS(it, "inbox_sk"))
			if err != nil {
				return partitionScan{}, fmt.Errorf("inbox entry %q: %w", ddb.GetS(it, "inbox_sk"), err)
			}
			scan.keys = append(scan.keys, pos)
			if len(scan.keys) == q.Limit {
				scan.reached = pos
				scan.more = i < len(out.Items)-1 || out.LastEvaluatedKey != nil
				return scan, nil
			}
		}
		if out.LastEvaluatedKey == nil {
			return scan, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
		if pages+1 == maxPagesPerPartition {
			pos, err := events.ParseSortKey(ddb.GetS(out.LastEvaluatedKey, "inbox_sk"))
			if err != nil {
				return partitionScan{}, fmt.Errorf("inbox position: %w", err)
			}
			scan.reached, scan.more = pos, true
			return scan, nil
		}
	}
}

// batchGet reads items by key, in one or more BatchGetItem calls, keyed by their sort key.
func (s *Store) batchGet(ctx context.Context, keys []ddb.Item, consistent bool) (map[string]ddb.Item, error) {
	found := make(map[string]ddb.Item, len(keys))
	if len(keys) == 1 {
		// One item is a GetItem: the same units, and the only read ingest is granted.
		out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: keys[0], ConsistentRead: aws.Bool(consistent)})
		if err != nil {
			return nil, fmt.Errorf("get item: %w", ddb.Translate(err))
		}
		if out.Item != nil {
			found[ddb.GetS(out.Item, "event_id")] = out.Item
		}
		return found, nil
	}
	for start := 0; start < len(keys); start += maxBatchGet {
		request := map[string]types.KeysAndAttributes{s.table: {Keys: keys[start:min(start+maxBatchGet, len(keys))], ConsistentRead: aws.Bool(consistent)}}
		out, err := ddb.BatchGet(ctx, s.client, request)
		if err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		for _, it := range out[s.table] {
			found[ddb.GetS(it, "event_id")] = it
		}
	}
	return found, nil
}

// maxBatchGet is the most keys one BatchGetItem takes.
const maxBatchGet = 100
