package dynamo_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/events/eventstest"
)

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

func TestConformance(t *testing.T) {
	eventstest.Run(t, func(t *testing.T) events.Store {
		return dynamo.New(shared.Client, shared.Tables(t))
	})
}

// TestConcurrentPullers: besides leasing every event exactly once, pullers sharing one store
// leave each other's candidates alone, so no conditional write is spent on an event another
// pull of this process is taking or has just taken.
func TestConcurrentPullers(t *testing.T) {
	t.Parallel()
	var failed atomic.Int64
	client := dynamodb.New(shared.Client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countFailedConditions",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleInitialize(ctx, in)
					var ccf *types.ConditionalCheckFailedException
					if errors.As(err, &ccf) {
						failed.Add(1)
					}
					return out, md, err
				}), middleware.Before)
		})
	})
	eventstest.ConcurrentPullers(t, dynamo.New(client, shared.Tables(t)), 8, 2000)
	if n := failed.Load(); n != 0 {
		t.Errorf("%d conditional writes failed: pulls of one process raced for the same events", n)
	}
}

// TestPullReadsPastEntriesOtherPullsHold: when every candidate a pull reads is held by another
// pull of this process, it reads on into the index rather than come back empty.
func TestPullReadsPastEntriesOtherPullsHold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := dynamo.New(shared.Client, shared.Tables(t))
	base := time.UnixMilli(1_732_140_249_000).UTC()
	es := make([]events.Event, 250)
	for i := range es {
		es[i] = events.New("busy", "a", []byte(`{"event_type":"a"}`), 1, base.Add(time.Duration(i)*time.Millisecond))
	}
	for i := 0; i < len(es); i += 25 {
		for _, err := range s.PutMany(ctx, es[i:i+25]) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// Another pull is leasing the oldest 100, as many as one read returns for max 100.
	for _, e := range es[:100] {
		if !s.Claim("busy", events.Position{VisibleAt: e.ReceivedAt, EventID: e.ID}.SortKey()) {
			t.Fatal("claim refused")
		}
	}
	leased, err := s.Lease(ctx, events.LeaseQuery{TenantID: "busy", Partitions: 1, Max: 100, Visibility: time.Minute, MaxDeliveries: 5, Now: base.Add(time.Hour)})
	got := leased.Events
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 {
		t.Fatalf("leased %d events with 150 free behind the held ones, want 100", len(got))
	}
	for i, e := range got {
		if e.ID != es[100+i].ID {
			t.Fatalf("lease %d is %s, want %s: the oldest free ones, in order", i, e.ID, es[100+i].ID)
		}
	}
}

// TestNackedBackToItsOldEntryIsLeasableAtOnce: a nack that puts an event back on the very
// index entry a pull leased it from (same clock reading) does not leave it claimed.
func TestNackedBackToItsOldEntryIsLeasableAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := dynamo.New(shared.Client, shared.Tables(t))
	now := time.UnixMilli(1_732_140_249_000).UTC()
	e := events.New("acme", "a", []byte(`{"event_type":"a"}`), 1, now)
	if err := s.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	q := events.LeaseQuery{TenantID: "acme", Partitions: 1, Max: 1, Visibility: time.Minute, MaxDeliveries: 5, Now: now}
	leased, err := s.Lease(ctx, q)
	got := leased.Events
	if err != nil || len(got) != 1 {
		t.Fatalf("first lease: %v %v", got, err)
	}
	if err := s.Nack(ctx, "acme", e.ID, got[0].LeaseID, now, now); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Lease(ctx, q); err != nil || len(again.Events) != 1 || again.Events[0].ID != e.ID {
		t.Fatalf("lease after the nack: %v %v, want %s", again, err, e.ID)
	}
}
