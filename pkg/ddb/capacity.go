package ddb

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Kinds of capacity units on trigger.dynamodb.consumed_capacity: DynamoDB bills them apart.
const (
	CapacityRead  = "read"
	CapacityWrite = "write"
)

// Target types on trigger.dynamodb.consumed_capacity: an item's size is billed once on its
// table and again on each index that holds a copy of it.
const (
	TargetTable = "table"
	TargetIndex = "index"
)

// capacityMiddleware asks every data call for its consumed capacity, per table and index, and
// counts the units DynamoDB reports: what a call costs in money, where the duration histogram
// says what it costs in time. A call that fails reports nothing, so a failed conditional
// write, which DynamoDB still bills, is not counted here (its condition_failed outcome is).
func capacityMiddleware(c *callMetrics) func(*middleware.Stack) error {
	// Built once: the SDK applies its options to a fresh stack on every call.
	var mw middleware.InitializeMiddleware = middleware.InitializeMiddlewareFunc("triggerConsumedCapacity",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			var kind string
			in.Parameters, kind = askCapacity(in.Parameters)
			out, md, err := next.HandleInitialize(ctx, in)
			if err == nil && kind != "" {
				one, many := consumed(out.Result)
				op := middleware.GetOperationName(ctx)
				if one != nil {
					c.capacity.record(ctx, op, kind, one)
				}
				for i := range many {
					c.capacity.record(ctx, op, kind, &many[i])
				}
			}
			return out, md, err
		})
	return func(stack *middleware.Stack) error { return stack.Initialize.Add(mw, middleware.After) }
}

// AskCapacity is an API option that makes every data call ask for its capacity per table and
// index, as the services' clients do, without counting it. It is for a client that has to
// make the services' calls exactly: DynamoDB Local takes about a third longer over a write
// that reports its capacity.
func AskCapacity(stack *middleware.Stack) error {
	return stack.Initialize.Add(askCapacityOnly, middleware.After)
}

var askCapacityOnly = middleware.InitializeMiddlewareFunc("triggerAskCapacity",
	func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		in.Parameters, _ = askCapacity(in.Parameters)
		return next.HandleInitialize(ctx, in)
	})

// askCapacity returns params asking for capacity per table and index, unless the caller chose
// a setting, and the kind of units the operation consumes; "" for an operation that reports
// none. It changes a copy: the caller's input may be shared between goroutines.
func askCapacity(params any) (any, string) {
	switch in := params.(type) {
	case *dynamodb.PutItemInput:
		return withIndexes(in, func(i *dynamodb.PutItemInput) *rcc { return &i.ReturnConsumedCapacity }), CapacityWrite
	case *dynamodb.UpdateItemInput:
		return withIndexes(in, func(i *dynamodb.UpdateItemInput) *rcc { return &i.ReturnConsumedCapacity }), CapacityWrite
	case *dynamodb.DeleteItemInput:
		return withIndexes(in, func(i *dynamodb.DeleteItemInput) *rcc { return &i.ReturnConsumedCapacity }), CapacityWrite
	case *dynamodb.BatchWriteItemInput:
		return withIndexes(in, func(i *dynamodb.BatchWriteItemInput) *rcc { return &i.ReturnConsumedCapacity }), CapacityWrite
	case *dynamodb.TransactWriteItemsInput:
		return withIndexes(in, func(i *dynamodb.TransactWriteItemsInput) *rcc { return &i.ReturnConsumedCapacity }), CapacityWrite
	case *dynamodb.GetItemInput:
		return withIndexes(in, func(i *dynamodb.GetItemInput) *rcc { return &i.ReturnConsumedCapacity }), CapacityRead
	case *dynamodb.QueryInput:
		return withIndexes(in, func(i *dynamodb.QueryInput) *rcc { return &i.ReturnConsumedCapacity }), CapacityRead
	case *dynamodb.ScanInput:
		return withIndexes(in, func(i *dynamodb.ScanInput) *rcc { return &i.ReturnConsumedCapacity }), CapacityRead
	case *dynamodb.BatchGetItemInput:
		return withIndexes(in, func(i *dynamodb.BatchGetItemInput) *rcc { return &i.ReturnConsumedCapacity }), CapacityRead
	case *dynamodb.TransactGetItemsInput:
		return withIndexes(in, func(i *dynamodb.TransactGetItemsInput) *rcc { return &i.ReturnConsumedCapacity }), CapacityRead
	}
	return params, ""
}

type rcc = types.ReturnConsumedCapacity

// withIndexes returns in, or a copy of it asking for INDEXES when field(in) is unset.
func withIndexes[T any](in *T, field func(*T) *rcc) *T {
	if *field(in) != "" {
		return in
	}
	cp := *in
	*field(&cp) = types.ReturnConsumedCapacityIndexes
	return &cp
}

// consumed is the capacity an operation's output reports: one for a single-table call, a
// slice (one per table) for a batch or a transaction.
func consumed(result any) (*types.ConsumedCapacity, []types.ConsumedCapacity) {
	switch out := result.(type) {
	case *dynamodb.PutItemOutput:
		return out.ConsumedCapacity, nil
	case *dynamodb.UpdateItemOutput:
		return out.ConsumedCapacity, nil
	case *dynamodb.DeleteItemOutput:
		return out.ConsumedCapacity, nil
	case *dynamodb.GetItemOutput:
		return out.ConsumedCapacity, nil
	case *dynamodb.QueryOutput:
		return out.ConsumedCapacity, nil
	case *dynamodb.ScanOutput:
		return out.ConsumedCapacity, nil
	case *dynamodb.BatchWriteItemOutput:
		return nil, out.ConsumedCapacity
	case *dynamodb.BatchGetItemOutput:
		return nil, out.ConsumedCapacity
	case *dynamodb.TransactWriteItemsOutput:
		return nil, out.ConsumedCapacity
	case *dynamodb.TransactGetItemsOutput:
		return nil, out.ConsumedCapacity
	}
	return nil, nil
}

// adder is what capacityCounter records on: a metric.Float64Counter, or a test's recorder.
type adder interface {
	Add(ctx context.Context, incr float64, opts ...metric.AddOption)
}

type capacityCounter struct {
	units  adder
	prefix string
	sets   *attrSets[seriesKey]
}

type seriesKey struct{ op, kind, target, targetType string }

func newCapacityCounter(units adder, tablePrefix string) capacityCounter {
	return capacityCounter{units: units, prefix: tablePrefix, sets: newAttrSets[seriesKey]()}
}

// record counts one table's share of a call: its own units and each index's. Where DynamoDB
// gives only a total (a caller that asked for TOTAL), the total goes on the table.
func (c capacityCounter) record(ctx context.Context, op, kind string, cc *types.ConsumedCapacity) {
	table := strings.TrimPrefix(aws.ToString(cc.TableName), c.prefix)
	if cc.Table == nil && len(cc.GlobalSecondaryIndexes) == 0 && len(cc.LocalSecondaryIndexes) == 0 {
		c.add(ctx, op, kind, table, TargetTable, types.Capacity{
			CapacityUnits: cc.CapacityUnits, ReadCapacityUnits: cc.ReadCapacityUnits, WriteCapacityUnits: cc.WriteCapacityUnits,
		})
		return
	}
	if cc.Table != nil {
		c.add(ctx, op, kind, table, TargetTable, *cc.Table)
	}
	for name, u := range cc.GlobalSecondaryIndexes {
		c.add(ctx, op, kind, name, TargetIndex, u)
	}
	for name, u := range cc.LocalSecondaryIndexes {
		c.add(ctx, op, kind, name, TargetIndex, u)
	}
}

// add counts one target's units. DynamoDB splits them into read and write units only for a
// call that consumes both (a transaction's condition checks); DynamoDB Local never does, so
// otherwise the operation says which kind they are.
func (c capacityCounter) add(ctx context.Context, op, kind, target, targetType string, u types.Capacity) {
	if u.ReadCapacityUnits == nil && u.WriteCapacityUnits == nil {
		c.count(ctx, op, kind, target, targetType, aws.ToFloat64(u.CapacityUnits))
		return
	}
	c.count(ctx, op, CapacityRead, target, targetType, aws.ToFloat64(u.ReadCapacityUnits))
	c.count(ctx, op, CapacityWrite, target, targetType, aws.ToFloat64(u.WriteCapacityUnits))
}

func (c capacityCounter) count(ctx context.Context, op, kind, target, targetType string, v float64) {
	// A query of an index reports 0 on its table: no series for what cost nothing.
	if v <= 0 {
		return
	}
	c.units.Add(ctx, v, c.sets.get(seriesKey{op, kind, target, targetType}, func() attribute.Set {
		return attribute.NewSet(attribute.String("operation", op), attribute.String("kind", kind),
			attribute.String("target", target), attribute.String("target_type", targetType))
	}))
}
