package ddbfault

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
)

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

// fixture is a proxy in front of the shared DynamoDB Local, a client that reaches a fresh table
// through it, and the table's name.
type fixture struct {
	proxy  *Proxy
	client *dynamodb.Client
	table  string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	p := startProxy(t, shared.Endpoint)
	// Attempts long enough that only the test decides when a held call ends: an attempt timeout
	// would let the SDK retry past a stall and hide whether Release worked.
	client, err := ddblocal.ClientWith(context.Background(), ddb.Settings{Endpoint: p.URL(), AttemptTimeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{proxy: p, client: client, table: shared.Tables(t).Tenants}
}

func startProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

// noRetry makes one call a single attempt, so the fault itself is what the caller sees.
func noRetry(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }

func key(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"tenant_id": &types.AttributeValueMemberS{Value: id}}
}

// put is the SDK's PutItem alone (not ddb.PutItem): these tests count the attempts each fault
// meets, and a direct first attempt that fails would add one.
func (f fixture) put(ctx context.Context, id string, opts ...func(*dynamodb.Options)) error {
	_, err := f.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: key(id)}, opts...)
	return err
}

func (f fixture) get(ctx context.Context, id string, opts ...func(*dynamodb.Options)) error {
	_, err := f.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(f.table), Key: key(id)}, opts...)
	return err
}

// stored looks past the proxy at whether DynamoDB holds the item.
func (f fixture) stored(t *testing.T, id string) bool {
	t.Helper()
	out, err := shared.Client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(f.table), Key: key(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("get %s directly: %v", id, err)
	}
	return out.Item != nil
}

// idle waits until the proxy serves no request: whatever it was going to do with one is done.
func (f fixture) idle(t *testing.T) {
	t.Helper()
	waitFor(t, "the proxy to finish its requests", func() bool { return f.proxy.active.Load() == 0 })
}

func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) {
		return resp.HTTPStatusCode()
	}
	return 0
}

func isSendError(err error) bool {
	var send *smithyhttp.RequestSendError
	return errors.As(err, &send)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// received is what a stand-in DynamoDB got.
type received struct {
	method, uri, host string
	header            http.Header
	body              []byte
}

// splitAnswerBackend stands in for DynamoDB: it answers in two parts and sends the second only
// once firstRead is closed. heldBack reports that it gave up waiting, because the client never
// saw the first part on its own.
func splitAnswerBackend(t *testing.T, firstRead <-chan struct{}) (url string, got <-chan received, heldBack *atomic.Bool) {
	t.Helper()
	ch := make(chan received, 1)
	heldBack = new(atomic.Bool)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ch <- received{r.Method, r.RequestURI, r.Host, r.Header.Clone(), body}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amzn-Requestid", "req-1")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"first":`)
		w.(http.Flusher).Flush()
		select {
		case <-firstRead:
		case <-time.After(30 * time.Second):
			heldBack.Store(true)
		}
		_, _ = io.WriteString(w, `"second"}`)
	}))
	t.Cleanup(backend.Close)
	return backend.URL, ch, heldBack
}

// The SDK signs what it sends, so the proxy must pass the request on byte for byte, Host
// included, and hand the answer back as it arrives rather than once it is complete.
func TestForwardsUnchangedAndStreams(t *testing.T) {
	t.Parallel()
	firstRead := make(chan struct{})
	backendURL, got, heldBack := splitAnswerBackend(t, firstRead)
	p := startProxy(t, backendURL)

	body := []byte(`{"TableName":"t","Item":{"k":{"B":"AAEC/w=="}}}`)
	req, err := http.NewRequest("POST", p.URL()+"/?probe=1", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sent := http.Header{
		"X-Amz-Target":    {"DynamoDB_20120810.PutItem"},
		"Content-Type":    {"application/x-amz-json-1.0"},
		"Authorization":   {"AWS4-HMAC-SHA256 Credential=local/20261204/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"},
		"X-Amz-Date":      {"20261204T120000Z"},
		"Amz-Sdk-Request": {"attempt=1; max=3"},
	}
	for k, v := range sent {
		req.Header[k] = v
	}
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len(`{"first":`))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first part: %v", err)
	}
	close(firstRead)
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("rest: %v", err)
	}
	if heldBack.Load() {
		t.Error("the answer's first part reached the client only with the rest")
	}
	if s := string(first) + string(rest); resp.StatusCode != http.StatusCreated || s != `{"first":"second"}` ||
		resp.Header.Get("X-Amzn-Requestid") != "req-1" || resp.Header.Get("Content-Type") != "application/x-amz-json-1.0" {
		t.Errorf("answer: %d %v %q", resp.StatusCode, resp.Header, s)
	}

	r := <-got
	if r.method != "POST" || r.uri != "/?probe=1" || r.host != strings.TrimPrefix(p.URL(), "http://") || !bytes.Equal(r.body, body) {
		t.Errorf("DynamoDB received %s %s Host %q body %q; want POST /?probe=1 Host %q body %q",
			r.method, r.uri, r.host, r.body, strings.TrimPrefix(p.URL(), "http://"), body)
	}
	for k, v := range sent {
		if g := r.header.Values(k); strings.Join(g, ",") != strings.Join(v, ",") {
			t.Errorf("header %s: DynamoDB received %q, the client sent %q", k, g, v)
		}
	}
	if n := p.Seen("PutItem"); n != 1 {
		t.Errorf("Seen(PutItem) = %d, want 1", n)
	}
}

// The SDK keeps its connections alive between calls; the proxy must not turn every call into
// a new connection, and a reset connection must be replaced by a working one.
func TestKeepsClientConnectionsAlive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	for i := range 5 {
		if err := f.get(ctx, "a"); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
	}
	if n := f.proxy.conns.Load(); n != 1 {
		t.Fatalf("5 calls in a row took %d connections, want 1", n)
	}
	f.proxy.Add(Rule{Kind: Reset, Times: 1})
	if err := f.get(ctx, "a", noRetry); err == nil {
		t.Fatal("get on a reset connection succeeded")
	}
	if err := f.get(ctx, "a"); err != nil {
		t.Fatalf("get after a reset: %v", err)
	}
	if n := f.proxy.conns.Load(); n != 2 {
		t.Fatalf("connections after a reset: %d, want 2", n)
	}
}

func TestStartRejectsTargetsItCannotForwardTo(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"", "127.0.0.1:8000", "ftp://127.0.0.1:8000", "http://127.0.0.1:8000/prefix", "http:///x"} {
		if p, err := Start(target); err == nil {
			_ = p.Close()
			t.Errorf("Start(%q) succeeded", target)
		}
	}
}

// Close must not wait for what it holds: stalled and delayed calls end without reaching
// DynamoDB, and nothing of the proxy keeps running. Not parallel, so that the goroutines left
// afterwards can only be this proxy's.
func TestCloseEndsHeldRequestsAndLeavesNothingRunning(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.proxy.Add(Rule{Op: "PutItem", Kind: Stall})
	f.proxy.Add(Rule{Op: "UpdateItem", Kind: Delay, Delay: time.Hour})
	errs := make(chan error, 2)
	go func() { errs <- f.put(ctx, "stalled", noRetry) }()
	go func() {
		_, err := f.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(f.table), Key: key("delayed")}, noRetry)
		errs <- err
	}()
	waitFor(t, "a stall and a delay", func() bool {
		return f.proxy.Stalled() == 1 && f.proxy.Acted("UpdateItem", Delay) == 1
	})

	closed := make(chan error, 1)
	go func() { closed <- f.proxy.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
		if n := f.proxy.active.Load(); n != 0 {
			t.Fatalf("Close returned with %d requests still being served", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close hung on held requests")
	}
	for range 2 {
		if err := <-errs; err == nil {
			t.Error("a call held when the proxy closed succeeded")
		}
	}
	if f.stored(t, "stalled") || f.stored(t, "delayed") {
		t.Error("a call held when the proxy closed reached DynamoDB")
	}
	// A request's goroutine may still be returning from its last deferred call when Close does.
	waitFor(t, "no goroutine of the proxy to run", func() bool {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(stacks, "ddbfault.(*Proxy).") && !strings.Contains(stacks, "ddbfault.Start.")
	})
	if conn, err := net.Dial("tcp", strings.TrimPrefix(f.proxy.URL(), "http://")); err == nil {
		_ = conn.Close()
		t.Error("the proxy still accepts connections after Close")
	}
	if err := f.proxy.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}
