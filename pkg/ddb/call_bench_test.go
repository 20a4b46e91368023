package ddb_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// BenchmarkPutItemCall is one conditional PutItem of an ingested event's size through the
// client NewClient builds, as the events store makes it (ddb.PutItem), against a server that
// answers at once: what it measures is the request's building and the project's telemetry, not
// DynamoDB. "bare" has no telemetry; "telemetry" is as the services run without an exporter
// (spans not sampled, metrics and capacity counted); "sdk-telemetry" is the same call down the
// SDK's own path (client.PutItem), for reference.
func BenchmarkPutItemCall(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = io.WriteString(w, `{"ConsumedCapacity":{"TableName":"p_events","CapacityUnits":2.0,"Table":{"CapacityUnits":1.0},"GlobalSecondaryIndexes":{"inbox":{"CapacityUnits":1.0}}}}`)
	}))
	defer srv.Close()
	tel, err := telemetry.New(sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())))
	if err != nil {
		b.Fatal(err)
	}
	item := ddb.Item{
		"tenant_id": ddb.S("bench"), "event_id": ddb.S("evt_0123456789abcdef0123456789abcdef"),
		"event_type": ddb.S("customer.created"), "payload": ddb.S(strings.Repeat("x", 200)),
		"status": ddb.S("undelivered"), "received_at": ddb.N(1764870000000), "visible_at": ddb.N(1764870000000),
		"inbox_pk": ddb.S("bench#0"), "inbox_sk": ddb.S("01764870000000#evt_0123456789abcdef0123456789abcdef"),
		"expires_at": ddb.N(1766079600), "traceparent": ddb.S("00-0123456789abcdef0123456789abcdef-0123456789abcdef-00"),
	}
	withTel := telemetry.NewContext(context.Background(), tel)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		put  func(context.Context, *dynamodb.Client, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	}{
		{"bare", context.Background(), ddb.PutItem},
		{"telemetry", withTel, ddb.PutItem},
		{"sdk-telemetry", withTel, func(ctx context.Context, c *dynamodb.Client, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
			return c.PutItem(ctx, in, opts...)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			client, err := ddblocal.ClientWith(tc.ctx, ddb.Settings{Endpoint: srv.URL, TablePrefix: "p_"})
			if err != nil {
				b.Fatal(err)
			}
			in := &dynamodb.PutItemInput{
				TableName: aws.String("p_events"), Item: item,
				ConditionExpression:                 aws.String("attribute_not_exists(event_id)"),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.put(context.Background(), client, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
