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
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client, err := ddb.NewClient(ctx, ddb.Settings{Endpoint: srv.URL, TablePrefix: "p_", Region: ddblocal.Region},
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
			if _, err := client.PutItem(t.Context(), in); err != nil {
				t.Fatal(err)
			}
			if _, err := client.PutItem(t.Context(), in, ddb.WithoutDirectPut); err != nil {
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
			out, err := client.PutItem(t.Context(), in)
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
		if _, err := client.PutItem(t.Context(), in); err != nil {
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
	_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("p_events"), Item: ddb.Item{"k": ddb.S("v")}})
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
			if _, err := directClient(t, t.Context(), f).PutItem(t.Context(), tc.in, tc.opts...); err != nil {
				t.Fatal(err)
			}
			if got := mapSlice(f.requests(), fromSDK); !reflect.DeepEqual(got, []bool{true}) {
				t.Errorf("requests from the SDK: got %v, want [true]", got)
			}
		})
	}
}

// A direct call is the same client span as the SDK's, with the answer's status and request id.
func TestDirectPutIsTraced(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDynamoDB{answers: []fakeAnswer{{status: 200, body: okAnswer}}}
	client := directClient(t, telemetry.NewContext(t.Context(), tel), f)
	if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String("p_events"), Item: ddb.Item{"k": ddb.S("v")}}); err != nil {
		t.Fatal(err)
	}
	if got := mapSlice(f.requests(), fromSDK); !reflect.DeepEqual(got, []bool{false}) {
		t.Fatalf("requests from the SDK: got %v, want [false]", got)
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "DynamoDB.PutItem" {
		t.Fatalf("spans: %v", mapSlice(spans, func(s sdktrace.ReadOnlySpan) string { return s.Name() }))
	}
	attrs := map[string]string{}
	for _, kv := range spans[0].Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	for k, want := range map[string]string{"rpc.method": "DynamoDB/PutItem", "http.response.status_code": "200", "aws.request_id": "req-1", "aws.dynamodb.table_names": `["p_events"]`} {
		if attrs[k] != want {
			t.Errorf("%s = %q, want %q (all: %v)", k, attrs[k], want, attrs)
		}
	}
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
