package dynamo_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

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
