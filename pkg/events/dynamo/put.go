package dynamo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/storage"
)

// Transactions that collide with another on the same idempotency record are cancelled with
// TransactionConflict; the retry then finds the winner's record.
const transactAttempts = 5

// idemSortKey keeps idempotency records beside the tenant's events, out of every index.
func idemSortKey(keyHash string) string { return "idem#" + keyHash }

// PutOnce writes the event and its idempotency record in one transaction.
func (s *Store) PutOnce(ctx context.Context, e events.Event, idem events.Idempotency, now time.Time) (events.Event, bool, error) {
	record := ddb.Item{
		"tenant_id":            ddb.S(e.TenantID),
		"event_id":             ddb.S(idemSortKey(idem.KeyHash)),
		"original_event_id":    ddb.S(e.ID),
		"original_received_at": ddb.N(e.ReceivedAt.UnixMilli()),
		"fingerprint":          ddb.S(idem.Fingerprint),
		ddb.EventsTTLAttribute: ddb.N(idem.ExpiresAt.Unix()),
	}
	// The payload goes first, alone: a transaction bills twice, and a replay leaves the payload
	// of a state never written to its TTL.
	state, payload := items(e)
	if err := s.putPayload(ctx, payload); err != nil {
		return events.Event{}, false, err
	}
	in := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{
			TableName:           aws.String(s.table),
			Item:                state,
			ConditionExpression: aws.String("attribute_not_exists(event_id)"),
		}},
		{Put: &types.Put{
			TableName: aws.String(s.table),
			Item:      record,
			// A record past its expiry that TTL has not removed yet counts as absent.
			ConditionExpression:                 aws.String("attribute_not_exists(event_id) OR expires_at <= :now"),
			ExpressionAttributeValues:           ddb.Item{":now": ddb.N(now.Unix())},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}},
	}}
	for attempt := 1; ; attempt++ {
		_, err := s.client.TransactWriteItems(ctx, in)
		if err == nil {
			return e, false, nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			return events.Event{}, false, fmt.Errorf("put event once: %w", ddb.Translate(err))
		}
		if old, taken := takenRecord(tce); taken {
			if old == nil {
				if old, err = s.readRecord(ctx, e.TenantID, idem.KeyHash); err != nil {
					return events.Event{}, false, err
				}
			}
			if ddb.GetS(old, "original_event_id") == e.ID {
				// An attempt whose answer was lost wrote it: this request stored it.
				return e, false, nil
			}
			if ddb.GetS(old, "fingerprint") != idem.Fingerprint {
				return events.Event{}, false, events.ErrIdempotencyConflict
			}
			return events.Event{
				TenantID:   e.TenantID,
				ID:         ddb.GetS(old, "original_event_id"),
				ReceivedAt: time.UnixMilli(ddb.GetN(old, "original_received_at")).UTC(),
			}, true, nil
		}
		if attempt == transactAttempts {
			return events.Event{}, false, fmt.Errorf("put event once: %w: %w", storage.ErrUnavailable, err)
		}
		select {
		case <-ctx.Done():
			return events.Event{}, false, ctx.Err()
		case <-time.After(time.Duration(attempt*attempt) * 10 * time.Millisecond):
		}
	}
}

// takenRecord reports whether the transaction failed because the idempotency record exists,
// with the record when DynamoDB returned it.
func takenRecord(tce *types.TransactionCanceledException) (ddb.Item, bool) {
	if len(tce.CancellationReasons) < 2 {
		return nil, false
	}
	r := tce.CancellationReasons[1]
	if aws.ToString(r.Code) != "ConditionalCheckFailed" {
		return nil, false
	}
	return r.Item, true
}

func (s *Store) readRecord(ctx context.Context, tenantID, keyHash string) (ddb.Item, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(tenantID, idemSortKey(keyHash)),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read idempotency record: %w", ddb.Translate(err))
	}
	if out.Item == nil {
		// Expired and deleted between the failed write and this read: the caller may retry.
		return nil, fmt.Errorf("idempotency record vanished: %w", storage.ErrUnavailable)
	}
	return out.Item, nil
}

// PutMany writes each event with its own conditional Put, several at a time. BatchWriteItem
// would take a 25th of the requests but takes no condition: an attempt the SDK gave up on can
// still be applied later, over an event leased or acknowledged in between, and deliver it twice.
// A Put cannot overwrite, and recognises its own earlier write.
func (s *Store) PutMany(ctx context.Context, es []events.Event) []error {
	errs := make([]error, len(es))
	sem := make(chan struct{}, putManyParallelism)
	var wg sync.WaitGroup
	for i, e := range es {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = s.Put(ctx, e)
		})
	}
	wg.Wait()
	return errs
}

// putManyParallelism bounds the Puts one batch has in flight, so one request holds a bounded
// share of the connection pool.
const putManyParallelism = 16
