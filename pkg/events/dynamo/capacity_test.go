package dynamo_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/events/dynamo"
)

// capacityMeter asks every call for the capacity it consumed, table and indexes, and adds it up.
type capacityMeter struct {
	mu          sync.Mutex
	read, write float64
}

func (m *capacityMeter) client() *dynamodb.Client {
	return dynamodb.New(shared.Client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("meterCapacity",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					write := true
					switch p := in.Parameters.(type) {
					case *dynamodb.PutItemInput:
						p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
					case *dynamodb.UpdateItemInput:
						p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
					case *dynamodb.TransactWriteItemsInput:
						p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
					case *dynamodb.QueryInput:
						p.ReturnConsumedCapacity, write = types.ReturnConsumedCapacityIndexes, false
					case *dynamodb.GetItemInput:
						p.ReturnConsumedCapacity, write = types.ReturnConsumedCapacityIndexes, false
					case *dynamodb.BatchGetItemInput:
						p.ReturnConsumedCapacity, write = types.ReturnConsumedCapacityIndexes, false
					}
					out, md, err := next.HandleInitialize(ctx, in)
					var ccs []types.ConsumedCapacity
					switch r := out.Result.(type) {
					case *dynamodb.PutItemOutput:
						ccs = append(ccs, deref(r.ConsumedCapacity)...)
					case *dynamodb.UpdateItemOutput:
						ccs = append(ccs, deref(r.ConsumedCapacity)...)
					case *dynamodb.TransactWriteItemsOutput:
						ccs = r.ConsumedCapacity
					case *dynamodb.QueryOutput:
						ccs = append(ccs, deref(r.ConsumedCapacity)...)
					case *dynamodb.GetItemOutput:
						ccs = append(ccs, deref(r.ConsumedCapacity)...)
					case *dynamodb.BatchGetItemOutput:
						ccs = r.ConsumedCapacity
					}
					m.mu.Lock()
					defer m.mu.Unlock()
					for _, cc := range ccs {
						if write {
							m.write += *cc.CapacityUnits
						} else {
							m.read += *cc.CapacityUnits
						}
					}
					return out, md, err
				}), middleware.Before)
		})
	})
}

func deref(cc *types.ConsumedCapacity) []types.ConsumedCapacity {
	if cc == nil {
		return nil
	}
	return []types.ConsumedCapacity{*cc}
}

func (m *capacityMeter) take() (read, write float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	read, write, m.read, m.write = m.read, m.write, 0, 0
	return read, write
}

// TestLifecycleCapacity: as DynamoDB reports it, an event's payload is written once and the
// lease and ack that follow cost the same few units at every payload size; pulls and listings
// read the payload about once. The bounds are the layout's design figures, not timings: the
// units are a deterministic function of item sizes.
func TestLifecycleCapacity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := &capacityMeter{}
	s := dynamo.New(m.client(), shared.Tables(t))
	for _, kib := range []int{1, 16, 64} {
		t.Run(fmt.Sprintf("%dKiB", kib), func(t *testing.T) {
			const shell = `{"event_type":"a","pad":""}`
			body := []byte(`{"event_type":"a","pad":"` + strings.Repeat("x", kib<<10-len(shell)) + `"}`)
			tenantID := fmt.Sprintf("cost-%d", kib)
			now := time.Now()
			listed := events.New(tenantID, "a", body, 1, now.Add(-time.Second))
			e := events.New(tenantID, "a", body, 1, now)
			if err := s.Put(ctx, listed); err != nil {
				t.Fatal(err)
			}
			m.take()
			if err := s.Put(ctx, e); err != nil {
				t.Fatal(err)
			}
			_, putW := m.take()
			page, err := s.Inbox(ctx, events.InboxQuery{TenantID: tenantID, Partitions: 1, Limit: 1, Now: now})
			if err != nil || len(page.Events) != 1 || len(page.Events[0].Payload) != len(body) {
				t.Fatalf("listing: %+v %v", page, err)
			}
			listR, _ := m.take()
			if _, _, err := s.Ack(ctx, tenantID, listed.ID, "", now, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			m.take()
			got, err := s.Lease(ctx, events.LeaseQuery{TenantID: tenantID, Partitions: 1, Max: 10, Visibility: time.Minute, MaxDeliveries: 5, Now: now.Add(time.Millisecond)})
			if err != nil || len(got.Events) != 1 || len(got.Events[0].Payload) != len(body) {
				t.Fatalf("lease: %+v %v", got, err)
			}
			leaseR, leaseW := m.take()
			if _, _, err := s.Ack(ctx, tenantID, e.ID, got.Events[0].LeaseID, now, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			_, ackW := m.take()
			t.Logf("write units: put %v, lease %v, ack %v; read units: pull %v, listing %v", putW, leaseW, ackW, leaseR, listR)
			if total, bound := putW+leaseW+ackW, float64(kib+8); total > bound {
				t.Errorf("a delivered event of %d KiB cost %v write units, more than %v", kib, total, bound)
			}
			readBound := float64((kib+3)/4 + 1)
			if leaseR > readBound || listR > readBound {
				t.Errorf("reading one event of %d KiB cost %v units to pull and %v to list, more than %v", kib, leaseR, listR, readBound)
			}
		})
	}
}
