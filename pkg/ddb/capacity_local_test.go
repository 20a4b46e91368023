package ddb_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

// DynamoDB Local reports CapacityUnits per table and per index, never split into read and
// write units: a 3 KB item is 3 write units on its table and, once it has the inbox index's
// keys, 1 more on that index.
func TestConsumedCapacityOfAPut(t *testing.T) {
	t.Parallel()
	tables := shared.Tables(t)
	prefix := strings.TrimSuffix(tables.Events, ddb.EventsTable)
	tel, err := telemetry.New(tracenoop.NewTracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client, err := ddblocal.ClientWith(telemetry.NewContext(ctx, tel), ddb.Settings{Endpoint: shared.Endpoint, TablePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	payload := ddb.S(strings.Repeat("x", 2900))
	for _, it := range []ddb.Item{
		{"tenant_id": ddb.S("t"), "event_id": ddb.S("e1"), "payload": payload},
		{"tenant_id": ddb.S("t"), "event_id": ddb.S("e2"), "payload": payload, "inbox_pk": ddb.S("t#0"), "inbox_sk": ddb.S("1")},
	} {
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables.Events), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	// A failed condition comes back with no capacity, though DynamoDB bills it.
	_, err = client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(tables.Events), Item: ddb.Item{"tenant_id": ddb.S("t"), "event_id": ddb.S("e1"), "payload": payload},
		ConditionExpression: aws.String("attribute_not_exists(event_id)"),
	})
	if !ddb.IsConditionFailed(err) {
		t.Fatalf("put over an existing item: %v", err)
	}
	// The exporter's name for the counter, which dashboards and the bench read.
	got := scrape(t, tel, "trigger_dynamodb_consumed_capacity_total{")
	want := map[string]string{`target="Events",target_type="table"`: " 6", `target="inbox-index",target_type="index"`: " 1"}
	if len(got) != len(want) {
		t.Fatalf("scraped %q, want %d series", got, len(want))
	}
	for _, line := range got {
		labels := line[strings.Index(line, "{"):]
		value, ok := want[labels[strings.Index(labels, "target="):strings.Index(labels, "}")]]
		if !ok || !strings.Contains(labels, `kind="write",operation="PutItem"`) || !strings.HasSuffix(line, value) {
			t.Errorf("unexpected series %s", line)
		}
	}
}

// A client with AskCapacity but no telemetry gets the capacity a service's client would count.
func TestAskCapacityAlone(t *testing.T) {
	t.Parallel()
	tables := shared.Tables(t)
	ctx := context.Background()
	base, err := ddblocal.Client(ctx, shared.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	put := &dynamodb.PutItemInput{TableName: aws.String(tables.Events), Item: ddb.Item{
		"tenant_id": ddb.S("t"), "event_id": ddb.S("e1"), "payload": ddb.S(strings.Repeat("x", 1500)),
		"inbox_pk": ddb.S("t#0"), "inbox_sk": ddb.S("1"),
	}}
	plain, err := base.PutItem(ctx, put)
	if err != nil {
		t.Fatal(err)
	}
	if plain.ConsumedCapacity != nil {
		t.Fatalf("a plain client got capacity %+v", plain.ConsumedCapacity)
	}
	asking := dynamodb.New(base.Options(), func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, ddb.AskCapacity) })
	put.Item["event_id"] = ddb.S("e2") // a new item: an overwrite that keeps its index keys writes no index
	out, err := asking.PutItem(ctx, put)
	if err != nil {
		t.Fatal(err)
	}
	cc := out.ConsumedCapacity
	if cc == nil || cc.Table == nil || aws.ToFloat64(cc.Table.CapacityUnits) != 2 || aws.ToFloat64(cc.GlobalSecondaryIndexes[ddb.InboxIndex].CapacityUnits) != 1 {
		t.Fatalf("capacity %+v, want 2 units on the table and 1 on %s", cc, ddb.InboxIndex)
	}
	if put.ReturnConsumedCapacity != "" {
		t.Fatalf("the caller's input was changed: %q", put.ReturnConsumedCapacity)
	}
}

// scrape returns the lines of the binary's /metrics that start with name.
func scrape(t *testing.T, tel *telemetry.Telemetry, name string) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var out []string
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, name) {
			out = append(out, line)
		}
	}
	return out
}
