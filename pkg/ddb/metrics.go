package ddb

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// Outcomes of a DynamoDB call on the trigger.dynamodb.call.duration histogram. A condition
// that failed is the store working as designed (a lease another puller won, an ack under a
// lost lease), not an error, so it is told apart.
const (
	OutcomeOK              = "ok"
	OutcomeConditionFailed = "condition_failed"
	OutcomeThrottled       = "throttled"
	OutcomeError           = "error"
)

// metricsMiddleware times each call as its caller sees it, retries included, labelled by
// operation and outcome: a few dozen series per binary whatever the traffic.
func metricsMiddleware(tel *telemetry.Telemetry) func(*middleware.Stack) error {
	m := tel.MeterProvider.Meter(telemetry.ScopeName)
	// Instrument creation fails only on an invalid name; the name here is a constant.
	duration, _ := m.Float64Histogram("trigger.dynamodb.call.duration", metric.WithUnit("s"),
		metric.WithDescription("DynamoDB calls as their caller saw them, retries included, by operation and outcome: ok, condition_failed, throttled or error"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("triggerCallMetrics",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				start := time.Now()
				out, md, err := next.HandleInitialize(ctx, in)
				duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
					attribute.String("operation", middleware.GetOperationName(ctx)),
					attribute.String("outcome", outcome(err))))
				return out, md, err
			}), middleware.Before)
	}
}

func outcome(err error) string {
	if err == nil {
		return OutcomeOK
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return OutcomeConditionFailed
	}
	// A transaction whose only failures are conditions (an idempotent replay, say) is the
	// same answer in a transaction's form.
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && onlyConditions(tce.CancellationReasons) {
		return OutcomeConditionFailed
	}
	var api smithy.APIError
	if errors.As(err, &api) && throttled[api.ErrorCode()] {
		return OutcomeThrottled
	}
	return OutcomeError
}

func onlyConditions(reasons []types.CancellationReason) bool {
	failed := false
	for _, r := range reasons {
		switch code := aws.ToString(r.Code); code {
		case "", "None":
		case "ConditionalCheckFailed":
			failed = true
		default:
			return false
		}
	}
	return failed
}
