package ddb

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// added notes each measurement as "operation kind target target_type units".
type added []string

func (a *added) Add(_ context.Context, v float64, opts ...metric.AddOption) {
	set := metric.NewAddConfig(opts).Attributes()
	get := func(k string) string { v, _ := set.Value(attribute.Key(k)); return v.AsString() }
	*a = append(*a, fmt.Sprintf("%s %s %s %s %g", get("operation"), get("kind"), get("target"), get("target_type"), v))
}

func TestAskCapacityCopiesAndKeepsTheCallersChoice(t *testing.T) {
	in := &dynamodb.PutItemInput{TableName: aws.String("t")}
	got, kind := askCapacity(in)
	put := got.(*dynamodb.PutItemInput)
	if kind != CapacityWrite || put.ReturnConsumedCapacity != types.ReturnConsumedCapacityIndexes || put == in {
		t.Fatalf("put: kind %q, %q, copied %v", kind, put.ReturnConsumedCapacity, put != in)
	}
	if in.ReturnConsumedCapacity != "" {
		t.Fatal("the caller's input was changed")
	}
	total := &dynamodb.QueryInput{ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal}
	if got, kind := askCapacity(total); got != total || kind != CapacityRead {
		t.Fatalf("query with TOTAL: %v %q", got, kind)
	}
	for _, c := range []struct {
		in   any
		kind string
	}{
		{&dynamodb.UpdateItemInput{}, CapacityWrite}, {&dynamodb.DeleteItemInput{}, CapacityWrite},
		{&dynamodb.BatchWriteItemInput{}, CapacityWrite}, {&dynamodb.TransactWriteItemsInput{}, CapacityWrite},
		{&dynamodb.GetItemInput{}, CapacityRead}, {&dynamodb.ScanInput{}, CapacityRead},
		{&dynamodb.BatchGetItemInput{}, CapacityRead}, {&dynamodb.TransactGetItemsInput{}, CapacityRead},
		{&dynamodb.DescribeTableInput{}, ""},
	} {
		if _, kind := askCapacity(c.in); kind != c.kind {
			t.Errorf("%T: kind %q, want %q", c.in, kind, c.kind)
		}
	}
}

func TestCapacityRecordsTablesAndIndexes(t *testing.T) {
	cap := func(v float64) types.Capacity { return types.Capacity{CapacityUnits: aws.Float64(v)} }
	for _, c := range []struct {
		name   string
		op     string
		kind   string
		result any
		want   []string
	}{
		{"put-table-and-index", "PutItem", CapacityWrite, &dynamodb.PutItemOutput{ConsumedCapacity: &types.ConsumedCapacity{
			TableName: aws.String("p_Events"), CapacityUnits: aws.Float64(4), Table: &types.Capacity{CapacityUnits: aws.Float64(3)},
			GlobalSecondaryIndexes: map[string]types.Capacity{"inbox-index": cap(1)},
		}}, []string{"PutItem write Events table 3", "PutItem write inbox-index index 1"}},
		{"query-index-not-the-table", "Query", CapacityRead, &dynamodb.QueryOutput{ConsumedCapacity: &types.ConsumedCapacity{
			TableName: aws.String("p_Events"), CapacityUnits: aws.Float64(0.5), Table: &types.Capacity{CapacityUnits: aws.Float64(0)},
			GlobalSecondaryIndexes: map[string]types.Capacity{"inbox-index": cap(0.5)},
		}}, []string{"Query read inbox-index index 0.5"}},
		{"total-only-on-the-table", "GetItem", CapacityRead, &dynamodb.GetItemOutput{ConsumedCapacity: &types.ConsumedCapacity{
			TableName: aws.String("p_Tenants"), CapacityUnits: aws.Float64(0.5),
		}}, []string{"GetItem read Tenants table 0.5"}},
		{"transaction-split-read-write", "TransactWriteItems", CapacityWrite, &dynamodb.TransactWriteItemsOutput{ConsumedCapacity: []types.ConsumedCapacity{{
			TableName: aws.String("p_Events"), CapacityUnits: aws.Float64(8),
			Table: &types.Capacity{CapacityUnits: aws.Float64(8), ReadCapacityUnits: aws.Float64(2), WriteCapacityUnits: aws.Float64(6)},
		}, {
			TableName: aws.String("p_Tenants"), CapacityUnits: aws.Float64(2), Table: &types.Capacity{CapacityUnits: aws.Float64(2)},
		}}}, []string{"TransactWriteItems read Events table 2", "TransactWriteItems write Events table 6", "TransactWriteItems write Tenants table 2"}},
		{"batch-get-slice", "BatchGetItem", CapacityRead, &dynamodb.BatchGetItemOutput{ConsumedCapacity: []types.ConsumedCapacity{{
			TableName: aws.String("p_Events"), Table: &types.Capacity{CapacityUnits: aws.Float64(1)},
		}}}, []string{"BatchGetItem read Events table 1"}},
		{"other-prefix-kept", "DeleteItem", CapacityWrite, &dynamodb.DeleteItemOutput{ConsumedCapacity: &types.ConsumedCapacity{
			TableName: aws.String("q_Events"), CapacityUnits: aws.Float64(1),
		}}, []string{"DeleteItem write q_Events table 1"}},
		{"nothing-reported", "UpdateItem", CapacityWrite, &dynamodb.UpdateItemOutput{}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got added
			counter := newCapacityCounter(&got, "p_")
			one, many := consumed(c.result)
			if one != nil {
				counter.record(context.Background(), c.op, c.kind, one)
			}
			for i := range many {
				counter.record(context.Background(), c.op, c.kind, &many[i])
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

// The cost a call pays on the hot path, with the SDK's counter.
func BenchmarkAskAndRecordCapacity(b *testing.B) {
	tel, err := telemetry.New(tracenoop.NewTracerProvider())
	if err != nil {
		b.Fatal(err)
	}
	units, err := tel.MeterProvider.Meter("bench").Float64Counter("units")
	if err != nil {
		b.Fatal(err)
	}
	counter := newCapacityCounter(units, "p_")
	in := &dynamodb.PutItemInput{TableName: aws.String("p_Events")}
	out := &dynamodb.PutItemOutput{ConsumedCapacity: &types.ConsumedCapacity{
		TableName: aws.String("p_Events"), Table: &types.Capacity{CapacityUnits: aws.Float64(3)},
		GlobalSecondaryIndexes: map[string]types.Capacity{InboxIndex: {CapacityUnits: aws.Float64(1)}},
	}}
	ctx := context.Background()
	for b.Loop() {
		_, kind := askCapacity(in)
		one, _ := consumed(out)
		counter.record(ctx, "PutItem", kind, one)
	}
}
