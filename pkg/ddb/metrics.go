package ddb

import (
	"context"
	"errors"
	"sync"
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

// callMetrics are a client's instruments: the duration of each call and the capacity it
// consumed. Built once per client and shared by its stack and its direct PutItem.
type callMetrics struct {
	duration  metric.Float64Histogram
	sets      *attrSets[callSeries]
	capacity  capacityCounter
	fallbacks metric.Int64Counter
	reasons   *attrSets[string]
}

func newCallMetrics(tel *telemetry.Telemetry, tablePrefix string) *callMetrics {
	m := tel.MeterProvider.Meter(telemetry.ScopeName)
	// Instrument creation fails only on an invalid name; the names here are constants.
	duration, _ := m.Float64Histogram("trigger.dynamodb.call.duration", metric.WithUnit("s"),
		metric.WithDescription("DynamoDB calls as their caller saw them, retries included, by operation and outcome: ok, condition_failed, throttled or error"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	units, _ := m.Float64Counter("trigger.dynamodb.consumed_capacity", metric.WithUnit("{capacity_unit}"),
		metric.WithDescription("DynamoDB capacity units consumed, as DynamoDB reports them, by operation, kind (read or write), target (a table's name without the table prefix, or an index's) and target_type (table or index); failed calls are not counted"))
	fallbacks, _ := m.Int64Counter("trigger.dynamodb.direct_put.fallbacks",
		metric.WithDescription("PutItem and UpdateItem calls whose direct first attempt did not succeed and went on to the SDK's path, by reason: busy, refused, condition_failed (a put's), answer or transport"))
	return &callMetrics{duration: duration, sets: newAttrSets[callSeries](), capacity: newCapacityCounter(units, tablePrefix),
		fallbacks: fallbacks, reasons: newAttrSets[string]()}
}

// called records a call of op that began at start and ended with err.
func (c *callMetrics) called(ctx context.Context, op string, start time.Time, err error) {
	k := callSeries{op, Outcome(err)}
	c.duration.Record(ctx, time.Since(start).Seconds(), c.sets.get(k, func() attribute.Set {
		return attribute.NewSet(attribute.String("operation", k.op), attribute.String("outcome", k.outcome))
	}))
}

// fellBack counts a direct attempt that went on to the SDK's path: a few a day are lost
// answers and throttling; a steady rate means the direct path is broken and every such call
// costs two requests.
func (c *callMetrics) fellBack(ctx context.Context, reason string) {
	c.fallbacks.Add(ctx, 1, c.reasons.get(reason, func() attribute.Set {
		return attribute.NewSet(attribute.String("reason", reason))
	}))
}

// metricsMiddleware times each call as its caller sees it, retries included, labelled by
// operation and outcome: a few dozen series per binary whatever the traffic.
func metricsMiddleware(c *callMetrics) func(*middleware.Stack) error {
	// Built once: the SDK applies its options to a fresh stack on every call.
	var mw middleware.InitializeMiddleware = middleware.InitializeMiddlewareFunc("triggerCallMetrics",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			c.called(ctx, middleware.GetOperationName(ctx), start, err)
			return out, md, err
		})
	return func(stack *middleware.Stack) error { return stack.Initialize.Add(mw, middleware.Before) }
}

type callSeries struct{ op, outcome string }

// attrSets holds the measurement option of each series, built on its first use: building an
// attribute set costs more than recording a measurement, and a binary has a few dozen series.
// A map under a read lock rather than a sync.Map, whose keys are interfaces: a struct key
// would be allocated on every lookup.
type attrSets[K comparable] struct {
	mu sync.RWMutex
	m  map[K]metric.MeasurementOption
}

func newAttrSets[K comparable]() *attrSets[K] {
	return &attrSets[K]{m: map[K]metric.MeasurementOption{}}
}

func (a *attrSets[K]) get(k K, build func() attribute.Set) metric.MeasurementOption {
	a.mu.RLock()
	opt, ok := a.m[k]
	a.mu.RUnlock()
	if ok {
		return opt
	}
	opt = metric.WithAttributeSet(build())
	a.mu.Lock()
	a.m[k] = opt
	a.mu.Unlock()
	return opt
}

// Outcome is how a call that ended with err counts on trigger.dynamodb.call.duration.
func Outcome(err error) string {
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
