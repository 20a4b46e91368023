package ddb_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// Every type of value DynamoDB may return, as its JSON protocol writes them.
const updatedAnswer = `{"Attributes":{"s":{"S":"x \" é"},"n":{"N":"42"},"b":{"B":"AAEC+g=="},"t":{"BOOL":true},` +
	`"null":{"NULL":true},"m":{"M":{"inner":{"S":"y"},"deeper":{"M":{}}}},"l":{"L":[{"S":"a"},{"N":"1"},{"L":[]}]},` +
	`"ss":{"SS":["a","b"]},"ns":{"NS":["1","2.5"]},"bs":{"BS":["AQ==","AgM="]}},` +
	`"ConsumedCapacity":{"TableName":"p_events","CapacityUnits":3.0,"Table":{"CapacityUnits":1.0},"GlobalSecondaryIndexes":{"inbox":{"CapacityUnits":2.0}}}}`

func leaseUpdate() *dynamodb.UpdateItemInput {
	return &dynamodb.UpdateItemInput{
		TableName:                           aws.String("p_events"),
		Key:                                 ddb.Item{"tenant_id": ddb.S("t"), "event_id": ddb.S("e")},
		UpdateExpression:                    aws.String("SET lease_id = :l, #v = :v ADD delivery_count :one"),
		ConditionExpression:                 aws.String("attribute_exists(event_id) AND #v <= :now"),
		ExpressionAttributeNames:            map[string]string{"#v": "visible_at"},
		ExpressionAttributeValues:           ddb.Item{":l": ddb.S("lease-1"), ":v": ddb.N(20), ":now": ddb.N(10), ":one": ddb.N(1)},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// The direct UpdateItem sends the request the SDK would, signed as the SDK signs it, and reads
// the answer into what the SDK's decoder gives.
func TestDirectUpdateSendsAndReadsWhatTheSDKDoes(t *testing.T) {
	f := &fakeDynamoDB{answers: []fakeAnswer{{status: 200, body: updatedAnswer}}}
	client := directClient(t, t.Context(), f)
	in := leaseUpdate()
	got, err := ddb.UpdateItem(t.Context(), client, in)
	if err != nil {
		t.Fatal(err)
	}
	want, err := client.UpdateItem(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	seen := f.requests()
	if len(seen) != 2 || fromSDK(seen[0]) || !fromSDK(seen[1]) {
		t.Fatalf("want one direct request then one of the SDK's, got %d (from the SDK: %v)", len(seen), mapSlice(seen, fromSDK))
	}
	var gotBody, wantBody any
	if err := json.Unmarshal(seen[0].body, &gotBody); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(seen[1].body, &wantBody); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotBody, wantBody) {
		t.Errorf("direct body\n%s\nSDK body\n%s", seen[0].body, seen[1].body)
	}
	for _, h := range []string{"Content-Type", "X-Amz-Target", "Accept-Encoding"} {
		if seen[0].header.Get(h) != seen[1].header.Get(h) {
			t.Errorf("%s: direct %q, SDK %q", h, seen[0].header.Get(h), seen[1].header.Get(h))
		}
	}
	checkSignature(t, seen[0])
	if len(got.Attributes) != 10 || !reflect.DeepEqual(got.Attributes, want.Attributes) {
		t.Errorf("attributes\n got %#v\nwant %#v", got.Attributes, want.Attributes)
	}
	if !reflect.DeepEqual(got.ConsumedCapacity, want.ConsumedCapacity) {
		t.Errorf("capacity %+v, want %+v", got.ConsumedCapacity, want.ConsumedCapacity)
	}
}

// A condition that did not hold is answered from the one request, as the SDK's error with the
// old item; other refusals still go on to the SDK.
func TestDirectUpdateAnswersAFailedConditionItself(t *testing.T) {
	failed := `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed","Item":{"event_id":{"S":"e"},"lease_id":{"S":"other"},"delivery_count":{"N":"3"}}}`
	f := &fakeDynamoDB{answers: []fakeAnswer{{status: 400, body: failed}}}
	client := directClient(t, t.Context(), f)
	_, err := ddb.UpdateItem(t.Context(), client, leaseUpdate())
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) || !ddb.IsConditionFailed(err) {
		t.Fatalf("want a condition failure, got %v", err)
	}
	if got := mapSlice(f.requests(), fromSDK); !reflect.DeepEqual(got, []bool{false}) {
		t.Errorf("requests from the SDK: got %v, want [false]", got)
	}
	_, sdkErr := client.UpdateItem(t.Context(), leaseUpdate())
	var want *types.ConditionalCheckFailedException
	if !errors.As(sdkErr, &want) || !reflect.DeepEqual(ccf.Item, want.Item) || aws.ToString(ccf.Message) != aws.ToString(want.Message) {
		t.Errorf("direct %#v, SDK %#v", ccf, want)
	}

	throttled := &fakeDynamoDB{answers: []fakeAnswer{
		{status: 400, body: `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"}`},
		{status: 200, body: updatedAnswer},
	}}
	out, err := ddb.UpdateItem(t.Context(), directClient(t, t.Context(), throttled), leaseUpdate())
	if err != nil || len(out.Attributes) == 0 {
		t.Fatalf("want the SDK's retry to succeed, got %v", err)
	}
	if got := mapSlice(throttled.requests(), fromSDK); !reflect.DeepEqual(got, []bool{false, true}) {
		t.Errorf("requests from the SDK: got %v, want [false true]", got)
	}
}

// Against DynamoDB Local, the direct UpdateItem leaves the item and answers as the SDK's does.
func TestDirectUpdateOnDynamoDBLocal(t *testing.T) {
	t.Parallel()
	tables := shared.Tables(t)
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	tel := telemetryOf(tracetest.NewSpanRecorder(), reader)
	client, err := ddblocal.ClientWith(telemetry.NewContext(ctx, tel), ddb.Settings{Endpoint: shared.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	key := func(id string) ddb.Item { return ddb.Item{"tenant_id": ddb.S("t"), "event_id": ddb.S(id)} }
	answers := map[string]*dynamodb.UpdateItemOutput{}
	for id, update := range map[string]func(context.Context, *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error){
		"direct": func(ctx context.Context, in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
			return ddb.UpdateItem(ctx, client, in)
		},
		"sdk": func(ctx context.Context, in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
			return client.UpdateItem(ctx, in)
		},
	} {
		item := key(id)
		item["visible_at"], item["payload"] = ddb.N(5), &types.AttributeValueMemberB{Value: []byte{0, 1, 2, 250}}
		item["tags"] = &types.AttributeValueMemberSS{Value: []string{"a", "b"}}
		item["meta"] = &types.AttributeValueMemberM{Value: ddb.Item{"k": ddb.S("v"), "l": &types.AttributeValueMemberL{Value: []types.AttributeValue{ddb.N(1), &types.AttributeValueMemberBOOL{Value: true}}}}}
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables.Events), Item: item}); err != nil {
			t.Fatal(err)
		}
		in := leaseUpdate()
		in.TableName, in.Key = aws.String(tables.Events), key(id)
		out, err := update(ctx, in)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		answers[id] = out
		// The same update again: visible_at is now 20, past :now, so the condition fails.
		_, err = update(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) || ddb.GetN(ccf.Item, "delivery_count") != 1 || ddb.GetS(ccf.Item, "lease_id") != "lease-1" {
			t.Fatalf("%s: want a condition failure with the leased item, got %v", id, err)
		}
	}
	d, s := answers["direct"].Attributes, answers["sdk"].Attributes
	if ddb.GetS(d, "event_id") != "direct" || ddb.GetN(d, "delivery_count") != 1 || ddb.GetS(d, "lease_id") != "lease-1" {
		t.Fatalf("direct answer %#v", d)
	}
	d["event_id"], s["event_id"] = nil, nil
	if !reflect.DeepEqual(d, s) {
		t.Errorf("direct attributes\n%#v\nSDK attributes\n%#v", d, s)
	}
	// Every direct call was answered directly: none went on to the SDK's path.
	m := collect(t, reader)
	if len(m.fallbacks) != 0 || m.calls("UpdateItem", ddb.OutcomeOK) != 2 || m.calls("UpdateItem", ddb.OutcomeConditionFailed) != 2 {
		t.Errorf("fallbacks %v, calls %v", m.fallbacks, m.counts)
	}
}

// The direct UpdateItem keeps the client's telemetry: the span otelaws would make, the call's
// outcome and its capacity.
func TestDirectUpdateKeepsTheClientsTelemetry(t *testing.T) {
	rec, reader := tracetest.NewSpanRecorder(), sdkmetric.NewManualReader()
	tel := telemetryOf(rec, reader)
	f := &fakeDynamoDB{answers: []fakeAnswer{{status: 200, body: updatedAnswer}}}
	client := directClient(t, telemetry.NewContext(t.Context(), tel), f)
	ctx, caller := tel.TracerProvider.Tracer("test").Start(t.Context(), "caller")
	if _, err := ddb.UpdateItem(ctx, client, leaseUpdate()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.UpdateItem(ctx, leaseUpdate()); err != nil {
		t.Fatal(err)
	}
	caller.End()
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("spans: %v", mapSlice(spans, func(s sdktrace.ReadOnlySpan) string { return s.Name() }))
	}
	direct, sdk := spans[0], spans[1]
	if direct.Name() != "DynamoDB.UpdateItem" || direct.Name() != sdk.Name() || direct.SpanKind() != sdk.SpanKind() ||
		direct.InstrumentationScope() != sdk.InstrumentationScope() || direct.Parent().SpanID() != caller.SpanContext().SpanID() {
		t.Errorf("direct span %s %v %v, the SDK's %s %v %v", direct.Name(), direct.SpanKind(), direct.InstrumentationScope(),
			sdk.Name(), sdk.SpanKind(), sdk.InstrumentationScope())
	}
	if got, want := attrMap(direct), attrMap(sdk); !reflect.DeepEqual(got, want) {
		t.Errorf("direct span's attributes\n%v\nthe SDK's\n%v", got, want)
	}
	m := collect(t, reader)
	if got := m.calls("UpdateItem", ddb.OutcomeOK); got != 2 {
		t.Errorf("%d UpdateItem calls measured, want 2", got)
	}
	if m.units["events/table"] != 2 || m.units["inbox/index"] != 4 {
		t.Errorf("units %v, want 1 on the table and 2 on the index a call", m.units)
	}
	for i, r := range f.requests() {
		var body struct{ ReturnConsumedCapacity string }
		if err := json.Unmarshal(r.body, &body); err != nil || body.ReturnConsumedCapacity != "INDEXES" {
			t.Errorf("request %d asks for capacity %q (%v), want INDEXES", i, body.ReturnConsumedCapacity, err)
		}
	}
}
