package ddb_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/storage"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

type seenRequest struct {
	header http.Header
	body   []byte
	host   string
	path   string
}

// fakeDynamoDB records every request and answers each with the next of answers (the last
// one again once they run out).
type fakeDynamoDB struct {
	mu      sync.Mutex
	seen    []seenRequest
	answers []fakeAnswer
}

// fakeAnswer is a status and body; status 0 drops the connection instead.
type fakeAnswer struct {
	status int
	body   string
	before func()
}

func (f *fakeDynamoDB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.seen = append(f.seen, seenRequest{header: r.Header.Clone(), body: body, host: r.Host, path: r.URL.Path})
	a := f.answers[min(len(f.seen), len(f.answers))-1]
	f.mu.Unlock()
	if a.status == 0 {
		// No answer: the connection drops, after the answer's hook if it has one.
		if a.before != nil {
			a.before()
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Requestid", "req-1")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fakeDynamoDB) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

// fromSDK tells the SDK's requests from the direct path's: the SDK numbers its attempts.
func fromSDK(r seenRequest) bool { return r.header.Get("Amz-Sdk-Request") != "" }

var testCreds = aws.Credentials{AccessKeyID: ddblocal.AccessKey, SecretAccessKey: ddblocal.SecretKey, SessionToken: "a-session-token"}

// directClient is a client of NewClient's on f, with a session token as IRSA's credentials
// have, and retries that do not wait; each pause before a retry is counted in pauses.
func directClient(t *testing.T, ctx context.Context, f *fakeDynamoDB, pauses ...*atomic.Int32) *dynamodb.Client {
	t.Helper()
	return directClientAt(t, ctx, f, "", pauses...)
}

// directClientAt is directClient with an endpoint of path on the fake server.
func directClientAt(t *testing.T, ctx context.Context, f *fakeDynamoDB, path string, pauses ...*atomic.Int32) *dynamodb.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client, err := ddb.NewClient(ctx, ddb.Settings{Endpoint: srv.URL + path, TablePrefix: "p_", Region: ddblocal.Region},
		config.WithCredentialsProvider(credentials.StaticCredentialsProvider{Value: testCreds}),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) {
					for _, p := range pauses {
						p.Add(1)
					}
					return 0, nil
				})
				o.RateLimiter = ratelimit.None
			})
		}))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

const okAnswer = `{"ConsumedCapacity":{"TableName":"p_events","CapacityUnits":3.0,"Table":{"CapacityUnits":2.0},"GlobalSecondaryIndexes":{"inbox":{"CapacityUnits":1.0}}}}`

// The direct path sends the request the SDK would: the same JSON document, target and
// content type, and a signature the SDK's signer gives the same request at the same time.
func TestDirectPutSendsWhatTheSDKSends(t *testing.T) {
	f := &fakeDynamoDB{answers: []fakeAnswer{{status: 200, body: okAnswer}}}
	client := directClient(t, t.Context(), f)
	inputs := map[string]*dynamodb.PutItemInput{
		"every-value-type": {
			TableName: aws.String("p_events"),
			Item: ddb.Item{
				"s": ddb.S(`quote " backslash \ newline
 tab	 nul` + "\x00 \x1f é 😀 <&>"), "n": ddb.N(42), "b": &types.AttributeValueMemberB{Value: []byte{0, 1, 2, 250}},
				"t": &types.AttributeValueMemberBOOL{Value: true}, "f": &types.AttributeValueMemberBOOL{Value: false},
				"null": &types.AttributeValueMemberNULL{Value: true}, "empty": ddb.S(""),
				"m":  &types.AttributeValueMemberM{Value: ddb.Item{"inner": ddb.S("x"), "deeper": &types.AttributeValueMemberM{Value: ddb.Item{}}}},
				"l":  &types.AttributeValueMemberL{Value: []types.AttributeValue{ddb.S("a"), ddb.N(1), &types.AttributeValueMemberL{}}},
				"ss": &types.AttributeValueMemberSS{Value: []string{"a", "b"}}, "ns": &types.AttributeValueMemberNS{Value: []string{"1", "2.5"}},
				"bs": &types.AttributeValueMemberBS{Value: [][]byte{{1}, {2, 3}}},
			},
		},
		"empty-expression-maps": {
			TableName: aws.String("p_events"), Item: ddb.Item{"k": ddb.S("v")},
			ExpressionAttributeNames: map[string]string{}, ExpressionAttributeValues: ddb.Item{},
		},
		"conditional": {
			TableName:                           aws.String("p_events"),
			Item:                                ddb.Item{"tenant_id": ddb.S("t"), "event_id": ddb.S("e")},
			ConditionExpression:                 aws.String("attribute_not_exists(#e) OR expires_at <= :now"),
			ExpressionAttributeNames:            map[string]string{"#e": "event_id"},
			ExpressionAttributeValues:           ddb.Item{":now": ddb.N(17)},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
		},
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			before := len(f.requests())
			if _, err := ddb.PutItem(t.Context(), client, in); err != nil {
				t.Fatal(err)
			}
			if _, err := client.PutItem(t.Context(), in); err != nil {
				t.Fatal(err)
			}
			seen := f.requests()[before:]
			if len(seen) != 2 || fromSDK(seen[0]) || !fromSDK(seen[1]) {
				t.Fatalf("want one direct request then one of the SDK's, got %d (from the SDK: %v)", len(seen), mapSlice(seen, fromSDK))
			}
			direct, sdk := seen[0], seen[1]
			var got, want any
			if err := json.Unmarshal(direct.body, &got); err != nil {
				t.Fatalf("direct body %q: %v", direct.body, err)
			}
			if err := json.Unmarshal(sdk.body, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("direct body\n%s\nSDK body\n%s", direct.body, sdk.body)
			}
			for _, h := range []string{"Content-Type", "X-Amz-Target", "Accept-Encoding", "X-Amz-Security-Token"} {
				if direct.header.Get(h) != sdk.header.Get(h) {
					t.Errorf("%s: direct %q, SDK %q", h, direct.header.Get(h), sdk.header.Get(h))
				}
			}
			if direct.path != sdk.path || direct.host != sdk.host {
				t.Errorf("direct went to %s%s, the SDK to %s%s", direct.host, direct.path, sdk.host, sdk.path)
			}
			checkSignature(t, direct)
		})
	}
}

// checkSignature signs the request again with the SDK's signer at the time it carries and
// compares the two.
func checkSignature(t *testing.T, r seenRequest) {
	t.Helper()
	at, err := time.Parse("20060102T150405Z", r.header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatalf("X-Amz-Date: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.host+r.path, bytes.NewReader(r.body))
	for _, h := range []string{"Content-Type", "X-Amz-Target", "Accept-Encoding"} {
		req.Header.Set(h, r.header.Get(h))
	}
	if r.header.Get("X-Amz-Security-Token") != testCreds.SessionToken {
		t.Errorf("X-Amz-Security-Token %q, want the session's", r.header.Get("X-Amz-Security-Token"))
	}
	hash := r.header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		hash = sha256Hex(r.body)
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), testCreds, req, hash, "dynamodb", ddblocal.Region, at); err != nil {
		t.Fatal(err)
	}
	if got, want := r.header.Get("Authorization"), req.Header.Get("Authorization"); got == "" || got != want {
		t.Errorf("Authorization\n got %q\nwant %q", got, want)
	}
}

// Every answer but a plain success goes on to the SDK, which tries again and gives its typed
// errors; a success takes one request and reports its capacity.
func TestDirectPutLeavesOtherAnswersToTheSDK(t *testing.T) {
	failed := `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed","Item":{"event_id":{"S":"e"},"received_at":{"N":"7"}}}`
	in := &dynamodb.PutItemInput{TableName: aws.String("p_events"), Item: ddb.Item{"event_id": ddb.S("e")},
		ConditionExpression: aws.String("attribute_not_exists(event_id)"), ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}
	for _, tc := range []struct {
		name    string
		answers []fakeAnswer
		fromSDK []bool
		pauses  int32
		check   func(t *testing.T, out *dynamodb.PutItemOutput, err error)
	}{
		{"success", []fakeAnswer{{status: 200, body: okAnswer}}, []bool{false}, 0, func(t *testing.T, out *dynamodb.PutItemOutput, err error) {
			if err != nil {
				t.Fatal(err)
			}
			cc := out.ConsumedCapacity
			if cc == nil || aws.ToString(cc.TableName) != "p_events" || aws.ToFloat64(cc.CapacityUnits) != 3 ||
				aws.ToFloat64(cc.Table.CapacityUnits) != 2 || aws.ToFloat64(cc.GlobalSecondaryIndexes["inbox"].CapacityUnits) != 1 {
				t.Errorf("consumed capacity %+v", cc)
			}
		}},
		{"condition-failed", []fakeAnswer{{status: 400, body: failed}}, []bool{false, true}, 0, func(t *testing.T, _ *dynamodb.PutItemOutput, err error) {
			var ccf *types.ConditionalCheckFailedException
			if !errors.As(err, &ccf) || ddb.GetN(ccf.Item, "received_at") != 7 {
				t.Fatalf("want the SDK's condition failure with the old item, got %v", err)
			}
			if !ddb.IsConditionFailed(err) {
				t.Error("IsConditionFailed is false")
			}
		}},
		{"server-error-then-success", []fakeAnswer{{status: 500, body: `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError"}`}, {status: 200, body: okAnswer}}, []bool{false, true}, 1, func(t *testing.T, out *dynamodb.PutItemOutput, err error) {
			if err != nil || out.ConsumedCapacity == nil {
				t.Fatalf("want the SDK's retry to succeed, got %v", err)
			}
		}},
		{"dropped-connection-then-success", []fakeAnswer{{status: 0}, {status: 200, body: okAnswer}}, []bool{false, true}, 0, func(t *testing.T, out *dynamodb.PutItemOutput, err error) {
			if err != nil || out.ConsumedCapacity == nil {
				t.Fatalf("want the SDK's retry to succeed, got %v", err)
			}
		}},
		{"throttled-throughout", []fakeAnswer{{status: 400, body: `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"}`}}, []bool{false, true, true, true}, 3, func(t *testing.T, _ *dynamodb.PutItemOutput, err error) {
			if !errors.Is(ddb.Translate(err), storage.ErrUnavailable) {
				t.Fatalf("want unavailability, got %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeDynamoDB{answers: tc.answers}
			var pauses atomic.Int32
			client := directClient(t, t.Context(), f, &pauses)
			out, err := ddb.PutItem(t.Context(), client, in)
			tc.check(t, out, err)
			// Throttling and server errors wait the retryer's delay before the SDK's attempt,
			// as before any retry.
			if got := pauses.Load(); got != tc.pauses {
				t.Errorf("pauses before retries: got %d, want %d", got, tc.pauses)
			}
			if got := mapSlice(f.requests(), fromSDK); !reflect.DeepEqual(got, tc.fromSDK) {
				t.Errorf("requests from the SDK: got %v, want %v", got, tc.fromSDK)
			}
		})
	}
}

// A refused signature sends this call and the next ones down the SDK's path, which corrects
// what the direct one cannot (a skewed clock).
func TestDirectPutStepsAsideAfterARefusedSignature(t *testing.T) {
	f := &fakeDynamoDB{answers: []fakeAnswer{
		{status: 400, body: `{"__type":"com.amazon.coral.service#InvalidSignatureException","message":"Signature expired"}`},
		{status: 200, body: okAnswer},
	}}
	client := directClient(t, t.Context(), f)
	in := &dynamodb.PutItemInput{TableName: aws.String("p_events"), Item: ddb.Item{"k": ddb.S("v")}}
	for i := range 2 {
		if _, err := ddb.PutItem(t.Context(), client, in); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if got := mapSlice(f.requests(), fromSDK); !reflect.DeepEqual(got, []bool{false, true, true}) {
		t.Errorf("requests from the SDK: got %v, want [false true true]", got)
	}
}

// A caller that leaves during the direct attempt gets its context's error, and nothing is
// sent again.
func TestDirectPutReturnsWhenTheCallerLeaves(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := &fakeDynamoDB{answers: []fakeAnswer{{status: 0, before: cancel}, {status: 200, body: okAnswer}}}
	client := directClient(t, t.Context(), f)
	_, err := ddb.PutItem(ctx, client, &dynamodb.PutItemInput{TableName: aws.String("p_events"), Item: ddb.Item{"k": ddb.S("v")}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the context's cancellation", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want the direct one only", n)
	}
}

// What the direct path does not answer itself goes to the SDK alone.
func TestDirectPutDeclinesWhatItDoesNotAnswer(t *testing.T) {
	plain := &dynamodb.PutItemInput{TableName: aws.String("t"), Item: ddb.Item{"k": ddb.S("v")}}
	for _, tc := range []struct {
		name string
		in   *dynamodb.PutItemInput
		opts []func(*dynamodb.Options)
	}{
		{"old-values", &dynamodb.PutItemInput{TableName: aws.String("t"), Item: ddb.Item{"k": ddb.S("v")}, ReturnValues: types.ReturnValueAllOld}, nil},
		{"invalid-utf8", &dynamodb.PutItemInput{TableName: aws.String("t"), Item: ddb.Item{"k": ddb.S("\xff")}}, nil},
		{"legacy-expected", &dynamodb.PutItemInput{TableName: aws.String("t"), Item: ddb.Item{"k": ddb.S("v")},
			Expected: map[string]types.ExpectedAttributeValue{"k": {Exists: aws.Bool(false)}}}, nil},
		{"nil-binary", &dynamodb.PutItemInput{TableName: aws.String("t"), Item: ddb.Item{"k": &types.AttributeValueMemberB{}}}, nil},
		{"another-region", plain, []func(*dynamodb.Options){func(o *dynamodb.Options) { o.Region = "eu-west-1" }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeDynamoDB{answers: []fakeAnswer{{status: 200, body: `{}`}}}
			if _, err := ddb.PutItem(t.Context(), directClient(t, t.Context(), f), tc.in, tc.opts...); err != nil {
				t.Fatal(err)
			}
			if got := mapSlice(f.requests(), fromSDK); !reflect.DeepEqual(got, []bool{true}) {
				t.Errorf("requests from the SDK: got %v, want [true]", got)
			}
		})
	}
}

// telemetryOf records spans and metrics in memory.
func telemetryOf(rec *tracetest.SpanRecorder, reader sdkmetric.Reader) *telemetry.Telemetry {
	return &telemetry.Telemetry{
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)),
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		Propagator:     telemetry.Propagator(),
	}
}

// A direct call is what the client's stack makes of any call: the same client span (name,
// scope, kind, parent, attributes), a duration under its outcome and its consumed capacity,
// asked per index. The SDK's PutItem on the same client is the reference.
func TestDirectPutKeepsTheClientsTelemetry(t *testing.T) {
	rec, reader := tracetest.NewSpanRecorder(), sdkmetric.NewManualReader()
	tel := telemetryOf(rec, reader)
	f := &fakeDynamoDB{answers: []fakeAnswer{{status: 200, body: okAnswer}}}
	client := directClient(t, telemetry.NewContext(t.Context(), tel), f)
	ctx, caller := tel.TracerProvider.Tracer("test").Start(t.Context(), "caller")
	in := &dynamodb.PutItemInput{TableName: aws.String("p_events"), Item: ddb.Item{"k": ddb.S("v")}}
	if _, err := ddb.PutItem(ctx, client, in); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutItem(ctx, in); err != nil {
		t.Fatal(err)
	}
	caller.End()
	seen := f.requests()
	if got := mapSlice(seen, fromSDK); !reflect.DeepEqual(got, []bool{false, true}) {
		t.Fatalf("requests from the SDK: got %v, want [false true]", got)
	}
	for i, r := range seen {
		var body struct{ ReturnConsumedCapacity string }
		if err := json.Unmarshal(r.body, &body); err != nil || body.ReturnConsumedCapacity != "INDEXES" {
			t.Errorf("request %d asks for capacity %q (%v), want INDEXES", i, body.ReturnConsumedCapacity, err)
		}
	}
	if in.ReturnConsumedCapacity != "" {
		t.Error("the caller's input was changed")
	}
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("spans: %v", mapSlice(spans, func(s sdktrace.ReadOnlySpan) string { return s.Name() }))
	}
	direct, sdk := spans[0], spans[1]
	for _, s := range []sdktrace.ReadOnlySpan{direct, sdk} {
		if s.Parent().SpanID() != caller.SpanContext().SpanID() {
			t.Errorf("%s is not the caller's child", s.Name())
		}
	}
	if direct.Name() != sdk.Name() || direct.SpanKind() != sdk.SpanKind() || direct.InstrumentationScope() != sdk.InstrumentationScope() || direct.Status() != sdk.Status() {
		t.Errorf("direct span %s %v %v %v, the SDK's %s %v %v %v", direct.Name(), direct.SpanKind(), direct.InstrumentationScope(), direct.Status(),
			sdk.Name(), sdk.SpanKind(), sdk.InstrumentationScope(), sdk.Status())
	}
	if got, want := attrMap(direct), attrMap(sdk); !reflect.DeepEqual(got, want) {
		t.Errorf("direct span's attributes\n%v\nthe SDK's\n%v", got, want)
	}
	m := collect(t, reader)
	if got := m.calls("PutItem", ddb.OutcomeOK); got != 2 {
		t.Errorf("%d PutItem calls measured, want 2", got)
	}
	if got := m.units["events/table"]; got != 4 {
		t.Errorf("table units %v, want 4 (2 a call)", got)
	}
	if got := m.units["inbox/index"]; got != 2 {
		t.Errorf("index units %v, want 2 (1 a call)", got)
	}
	if len(m.fallbacks) != 0 {
		t.Errorf("fallbacks %v on successes", m.fallbacks)
	}
}

// When the direct attempt does not succeed, the SDK's attempt runs inside the same span and
// measurement, as a retry in the stack would: one span, one duration, the outcome of the last.
func TestDirectPutFallbackIsOneCall(t *testing.T) {
	failed := `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}`
	for _, tc := range []struct {
		name    string
		answers []fakeAnswer
		outcome string
		status  string
		reason  string
	}{
		{"server-error-then-success", []fakeAnswer{{status: 500, body: `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError"}`}, {status: 200, body: okAnswer}}, ddb.OutcomeOK, "200", ddb.FallbackBusy},
		{"condition-failed", []fakeAnswer{{status: 400, body: failed}}, ddb.OutcomeConditionFailed, "400", ddb.FallbackConditionFailed},
		{"dropped-then-success", []fakeAnswer{{status: 0}, {status: 200, body: okAnswer}}, ddb.OutcomeOK, "200", ddb.FallbackTransport},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, reader := tracetest.NewSpanRecorder(), sdkmetric.NewManualReader()
			f := &fakeDynamoDB{answers: tc.answers}
			client := directClient(t, telemetry.NewContext(t.Context(), telemetryOf(rec, reader)), f)
			_, err := ddb.PutItem(t.Context(), client, &dynamodb.PutItemInput{TableName: aws.String("p_events"), Item: ddb.Item{"k": ddb.S("v")}})
			if (err == nil) != (tc.outcome == ddb.OutcomeOK) {
				t.Fatalf("err %v, want outcome %s", err, tc.outcome)
			}
			if got := mapSlice(f.requests(), fromSDK); !reflect.DeepEqual(got, []bool{false, true}) {
				t.Fatalf("requests from the SDK: got %v, want [false true]", got)
			}
			spans := rec.Ended()
			if len(spans) != 1 {
				t.Fatalf("spans: %v, want the call's one", mapSlice(spans, func(s sdktrace.ReadOnlySpan) string { return s.Name() }))
			}
			attrs := attrMap(spans[0])
			if attrs["http.response.status_code"] != tc.status || attrs["aws.request_id"] != "req-1" {
				t.Errorf("attributes %v, want the SDK's answer's status %s and request id", attrs, tc.status)
			}
			if evs := spans[0].Events(); len(evs) != 1 || evs[0].Name != "direct attempt left to the SDK" {
				t.Errorf("span events %v", evs)
			}
			if failed := spans[0].Status().Code == codes.Error; failed != (err != nil) {
				t.Errorf("span status %v for error %v", spans[0].Status(), err)
			}
			m := collect(t, reader)
			if got := m.calls("PutItem", tc.outcome); got != 1 {
				t.Errorf("%d calls measured as %s, want 1", got, tc.outcome)
			}
			if got := m.fallbacks[tc.reason]; got != 1 || len(m.fallbacks) != 1 {
				t.Errorf("fallbacks %v, want one %s", m.fallbacks, tc.reason)
			}
			if got, want := m.units["events/table"], map[bool]float64{true: 2, false: 0}[err == nil]; got != want {
				t.Errorf("table units %v, want %v: counted once, and only for a success", got, want)
			}
		})
	}
}

// The SDK's attempt runs in the call slot the direct attempt took: it does not wait for
// another one, and the slot is given back once.
func TestDirectPutFallbackKeepsItsSlot(t *testing.T) {
	f := &fakeDynamoDB{answers: []fakeAnswer{{status: 500, body: `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError"}`}, {status: 200, body: okAnswer}}}
	client := directClient(t, t.Context(), f)
	slots := make(chan struct{}, 1)
	ctx, cancel := context.WithTimeout(ddb.WithCallSlots(t.Context(), slots), 5*time.Second)
	defer cancel()
	if _, err := ddb.PutItem(ctx, client, &dynamodb.PutItemInput{TableName: aws.String("p_events"), Item: ddb.Item{"k": ddb.S("v")}}); err != nil {
		t.Fatal(err)
	}
	if got := mapSlice(f.requests(), fromSDK); !reflect.DeepEqual(got, []bool{false, true}) {
		t.Fatalf("requests from the SDK: got %v, want [false true]", got)
	}
	if len(slots) != 0 {
		t.Error("the slot was not given back")
	}
}

// After a refused signature the next call is the client's own: the same span, measurement and
// slot as any call, and no second fallback.
func TestDirectPutStepsAsideWithTheClientsTelemetry(t *testing.T) {
	rec, reader := tracetest.NewSpanRecorder(), sdkmetric.NewManualReader()
	f := &fakeDynamoDB{answers: []fakeAnswer{
		{status: 400, body: `{"__type":"com.amazon.coral.service#InvalidSignatureException","message":"Signature expired"}`},
		{status: 200, body: okAnswer},
	}}
	client := directClient(t, telemetry.NewContext(t.Context(), telemetryOf(rec, reader)), f)
	in := &dynamodb.PutItemInput{TableName: aws.String("p_events"), Item: ddb.Item{"k": ddb.S("v")}}
	for i := range 2 {
		if _, err := ddb.PutItem(t.Context(), client, in); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	slots := make(chan struct{}, 1)
	slots <- struct{}{}
	ctx, cancel := context.WithTimeout(ddb.WithCallSlots(t.Context(), slots), 50*time.Millisecond)
	defer cancel()
	if _, err := ddb.PutItem(ctx, client, in); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("with every slot taken: %v, want the deadline", err)
	}
	if got := mapSlice(f.requests(), fromSDK); !reflect.DeepEqual(got, []bool{false, true, true}) {
		t.Errorf("requests from the SDK: got %v, want [false true true]", got)
	}
	if spans := rec.Ended(); len(spans) != 2 || spans[0].Name() != spans[1].Name() {
		t.Errorf("spans: %v, want one DynamoDB.PutItem a call", mapSlice(spans, func(s sdktrace.ReadOnlySpan) string { return s.Name() }))
	}
	m := collect(t, reader)
	if got := m.calls("PutItem", ddb.OutcomeOK); got != 2 {
		t.Errorf("%d calls measured, want 2", got)
	}
	if got := m.fallbacks[ddb.FallbackRefused]; got != 1 || len(m.fallbacks) != 1 {
		t.Errorf("fallbacks %v, want one refused", m.fallbacks)
	}
}

// Without the client's telemetry the caller's span is left as it was, whatever the call met.
func TestDirectPutWithoutTelemetryLeavesTheCallersSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	f := &fakeDynamoDB{answers: []fakeAnswer{{status: 400, body: `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}`}}}
	client := directClient(t, t.Context(), f)
	ctx, caller := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test").Start(t.Context(), "caller")
	if _, err := ddb.PutItem(ctx, client, &dynamodb.PutItemInput{TableName: aws.String("p_events"), Item: ddb.Item{"k": ddb.S("v")}}); !ddb.IsConditionFailed(err) {
		t.Fatalf("got %v, want the failed condition", err)
	}
	caller.End()
	s := rec.Ended()[0]
	if len(s.Attributes()) != 0 || len(s.Events()) != 0 || s.Status().Code != codes.Unset {
		t.Errorf("the caller's span was changed: %v %v %v", s.Attributes(), s.Events(), s.Status())
	}
}

// An endpoint the direct signer does not sign (one with a path) is signed by the SDK's signer,
// and the request goes where the SDK's would.
func TestDirectPutSignsOtherEndpointsWithTheSDKsSigner(t *testing.T) {
	f := &fakeDynamoDB{answers: []fakeAnswer{{status: 200, body: okAnswer}}}
	client := directClientAt(t, t.Context(), f, "/dynamodb")
	in := &dynamodb.PutItemInput{TableName: aws.String("p_events"), Item: ddb.Item{"k": ddb.S("v")}}
	if _, err := ddb.PutItem(t.Context(), client, in); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutItem(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	seen := f.requests()
	if got := mapSlice(seen, fromSDK); !reflect.DeepEqual(got, []bool{false, true}) {
		t.Fatalf("requests from the SDK: got %v, want [false true]", got)
	}
	if seen[0].path != "/dynamodb" || seen[0].path != seen[1].path {
		t.Errorf("direct went to %s, the SDK to %s", seen[0].path, seen[1].path)
	}
	checkSignature(t, seen[0])
}

// A nil input or item is the SDK's to refuse, without a request.
func TestDirectPutLeavesInvalidInputToTheSDK(t *testing.T) {
	f := &fakeDynamoDB{answers: []fakeAnswer{{status: 200, body: okAnswer}}}
	client := directClient(t, t.Context(), f)
	for _, in := range []*dynamodb.PutItemInput{nil, {TableName: aws.String("p_events")}} {
		if _, err := ddb.PutItem(t.Context(), client, in); err == nil {
			t.Errorf("%+v: accepted", in)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// A direct call takes one of its caller's call slots, as every call of the client does.
func TestDirectPutHoldsACallSlot(t *testing.T) {
	f := &fakeDynamoDB{answers: []fakeAnswer{{status: 200, body: okAnswer}}}
	client := directClient(t, t.Context(), f)
	slots := make(chan struct{}, 1)
	slots <- struct{}{}
	in := &dynamodb.PutItemInput{TableName: aws.String("p_events"), Item: ddb.Item{"k": ddb.S("v")}}
	ctx, cancel := context.WithTimeout(ddb.WithCallSlots(t.Context(), slots), 50*time.Millisecond)
	defer cancel()
	if _, err := ddb.PutItem(ctx, client, in); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with every slot taken: %v, want the deadline", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d requests sent without a slot", n)
	}
	<-slots
	if _, err := ddb.PutItem(ddb.WithCallSlots(t.Context(), slots), client, in); err != nil {
		t.Fatal(err)
	}
	if len(slots) != 0 {
		t.Error("the slot was not given back")
	}
}

// A client derived from one NewClient built is the SDK's alone.
func TestDirectPutOnlyForTheClientNewClientBuilt(t *testing.T) {
	f := &fakeDynamoDB{answers: []fakeAnswer{{status: 200, body: okAnswer}}}
	derived := dynamodb.New(directClient(t, t.Context(), f).Options())
	if _, err := ddb.PutItem(t.Context(), derived, &dynamodb.PutItemInput{TableName: aws.String("p_events"), Item: ddb.Item{"k": ddb.S("v")}}); err != nil {
		t.Fatal(err)
	}
	if got := mapSlice(f.requests(), fromSDK); !reflect.DeepEqual(got, []bool{true}) {
		t.Errorf("requests from the SDK: got %v, want [true]", got)
	}
}

func attrMap(s sdktrace.ReadOnlySpan) map[string]string {
	out := map[string]string{}
	for _, kv := range s.Attributes() {
		out[string(kv.Key)] = kv.Value.Emit()
	}
	return out
}

// measured is what a reader collected: call counts by operation and outcome, and capacity
// units by target/target_type.
type measured struct {
	counts    map[[2]string]uint64
	units     map[string]float64
	fallbacks map[string]int64
}

func (m measured) calls(op, outcome string) uint64 { return m.counts[[2]string{op, outcome}] }

func collect(t *testing.T, reader sdkmetric.Reader) measured {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	m := measured{counts: map[[2]string]uint64{}, units: map[string]float64{}, fallbacks: map[string]int64{}}
	str := func(set attribute.Set, k string) string { v, _ := set.Value(attribute.Key(k)); return v.AsString() }
	for _, sm := range rm.ScopeMetrics {
		for _, metric := range sm.Metrics {
			switch data := metric.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range data.DataPoints {
					m.counts[[2]string{str(p.Attributes, "operation"), str(p.Attributes, "outcome")}] += p.Count
				}
			case metricdata.Sum[float64]:
				for _, p := range data.DataPoints {
					m.units[str(p.Attributes, "target")+"/"+str(p.Attributes, "target_type")] += p.Value
				}
			case metricdata.Sum[int64]:
				for _, p := range data.DataPoints {
					m.fallbacks[str(p.Attributes, "reason")] += p.Value
				}
			}
		}
	}
	return m
}

func mapSlice[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// An answer whose body stalls after its headers costs one attempt of the client's
// AttemptTimeout, not the caller's budget: the next attempt is made and answered.
func TestClientAbandonsAnAttemptWhoseBodyStalls(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if calls.Add(1) == 1 {
			_, _ = io.WriteString(w, "{")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = io.WriteString(w, "{}")
	}))
	defer srv.Close()
	client, err := ddb.NewClient(t.Context(), ddb.Settings{Endpoint: srv.URL, Region: ddblocal.Region, AttemptTimeout: 200 * time.Millisecond},
		config.WithCredentialsProvider(credentials.StaticCredentialsProvider{Value: testCreds}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err = client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: "v"}}})
	if err != nil || calls.Load() != 2 {
		t.Fatalf("get past a stalled body: %v after %d attempts, want success on the 2nd", err, calls.Load())
	}
}
