package tracing_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/services/inbox/inboxapi"
	"github.com/trigger-api/trigger-api/services/ingest/ingestapi"
	"github.com/trigger-api/trigger-api/worker/runner"
)

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

// TestLifecycleIsOneTraceAcrossServicesAndWorker runs ingest, inbox and the worker in this
// process against DynamoDB Local, all recording into one span recorder: a producer's POST, the
// worker's leased pull, its processing and its ack must form one trace rooted at the
// producer's span, every span under the right parent, the pull linked. The worker retries an
// ack that failed transiently, each attempt a settle span of its own, so the trace may hold
// several attempts, as it does on a loaded machine; the failing cases force one.
func TestLifecycleIsOneTraceAcrossServicesAndWorker(t *testing.T) {
	for _, c := range []struct {
		name  string
		flaky *flakyAck // nil: the worker's own HTTP client, failing only if the machine makes it
	}{
		{name: "acked"},
		{name: "acked-after-503", flaky: &flakyAck{}},
		{name: "acked-after-lost-answer", flaky: &flakyAck{afterInbox: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testLifecycle(t, c.flaky)
		})
	}
}

func testLifecycle(t *testing.T, flaky *flakyAck) {
	l := startLifecycle(t)
	eventID, producer := l.produce(t)
	l.consumeOnce(t, flaky, eventID)
	// Close waits for every handler, so every server span has ended.
	l.srv.Close()

	lt := newLifecycleTrace(l.rec.Ended(), producer.SpanContext(), eventID)
	steps := []apitest.Step{
		{Name: "post-publish-process-under-the-producer", Run: lt.postPublishProcess},
		{Name: "every-ack-attempt-continues-processing", Run: lt.ackAttempts},
		{Name: "one-ack-attempt-succeeded-the-last", Run: lt.oneAckSucceeded},
		{Name: "inbox-settled-the-successful-ack", Run: lt.inboxSettledAck},
	}
	if flaky != nil {
		steps = append(steps, apitest.Step{Name: "failed-ack-was-retried", Run: func(t *testing.T) { lt.failedAckRetried(t, flaky) }})
	}
	steps = append(steps,
		apitest.Step{Name: "processing-links-the-pull", Run: lt.processingLinksPull},
		apitest.Step{Name: "spans-name-the-event", Run: lt.spansNameTheEvent},
	)
	apitest.RunSteps(t, steps...)
}

// lifecycle is one case's deployment: ingest and inbox in this process, behind one origin,
// recording into one span recorder, with one tenant and its key.
type lifecycle struct {
	rec *tracetest.SpanRecorder
	tp  *sdktrace.TracerProvider
	tel *telemetry.Telemetry
	srv *httptest.Server
	key string
}

func startLifecycle(t *testing.T) *lifecycle {
	t.Helper()
	l := &lifecycle{rec: tracetest.NewSpanRecorder()}
	l.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(l.rec))
	tel, err := telemetry.New(l.tp)
	if err != nil {
		t.Fatal(err)
	}
	l.tel = tel
	tables := shared.Tables(t)
	client := dynamodb.New(shared.Client.Options(), ddb.WithTelemetry(tel))
	store, tenants := eventsdb.New(client, tables), tenantdb.New(client, tables)
	apitest.SeedTenant(t, tenantdb.New(shared.Client, tables), "acme", 1)
	l.key = apitest.SeedKey(t, tenantdb.New(shared.Client, tables), "acme", apitest.KeyOptions{})
	ready := func(context.Context) error { return nil }

	// One origin for both services, routed as the gateway and the Ingress route them.
	ingestH := ingestapi.NewHandler(ingestapi.Deps{Log: zap.NewNop(), Publisher: queue.NewPublisher(store, queue.Options{Tel: tel}), Ready: ready, Tel: tel,
		Auth: tenant.NewAuthenticator(tenants, tenant.AuthConfig{}, nil)})
	inboxH := inboxapi.NewHandler(inboxapi.Deps{Log: zap.NewNop(), Inbox: queue.NewInbox(store, queue.Options{Tel: tel}), Ready: ready, Tel: tel,
		Auth: tenant.NewAuthenticator(tenants, tenant.AuthConfig{}, nil)})
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/events") {
			ingestH.ServeHTTP(w, r)
			return
		}
		inboxH.ServeHTTP(w, r)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

// produce posts an event under the producer's own span, the trace's root, which it returns
// ended, with the event's id. The traceparent is set by hand, as a producer without
// OpenTelemetry's HTTP instrumentation would, so no client span comes between the two.
func (l *lifecycle) produce(t *testing.T) (string, trace.Span) {
	t.Helper()
	pctx, producer := l.tp.Tracer("producer").Start(context.Background(), "producer send")
	req, _ := http.NewRequestWithContext(pctx, http.MethodPost, l.srv.URL+"/events", strings.NewReader(`{"event_type":"order.paid","order_id":"o-1"}`))
	req.Header.Set("Authorization", "Bearer "+l.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", telemetry.Traceparent(pctx))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	producer.End()
	var posted struct {
		EventID string `json:"event_id"`
	}
	if resp.StatusCode/100 != 2 || json.Unmarshal(body, &posted) != nil || posted.EventID == "" {
		t.Fatalf("POST /events: %d %s", resp.StatusCode, body)
	}
	return posted.EventID, producer
}

// consumeOnce runs the worker until it has processed eventID, then stops it; stopping flushes
// its acks. A flaky transport, when given, carries the worker's calls.
func (l *lifecycle) consumeOnce(t *testing.T, flaky *flakyAck, eventID string) {
	t.Helper()
	processed := make(chan string, 1)
	opts := []runner.Option{runner.WithProcessor(func(_ context.Context, ev runner.Event) error {
		select {
		case processed <- ev.ID:
		default:
		}
		return nil
	})}
	if flaky != nil {
		flaky.base = l.srv.Client().Transport
		opts = append(opts, runner.WithHTTPClient(&http.Client{Transport: flaky}))
	}
	ctx, cancel := context.WithCancel(telemetry.NewContext(context.Background(), l.tel))
	done := make(chan error, 1)
	go func() {
		done <- runner.Run(ctx, zap.NewNop(), runner.Config{
			InboxURL: l.srv.URL, APIKeys: []string{l.key}, Concurrency: 1, BatchSize: 1, WaitSeconds: 1,
			VisibilityTimeout: 30 * time.Second, NackDelay: time.Second, AckInterval: time.Millisecond,
			PollInterval: 10 * time.Millisecond, ShutdownTimeout: 10 * time.Second, RequestTimeout: 10 * time.Second,
		}, opts...)
	}()
	select {
	case id := <-processed:
		if id != eventID {
			t.Fatalf("worker processed %s, want %s", id, eventID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not process the event")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// lifecycleTrace is the recorded spans, and the spans of the event's trace that the checks
// find and hand on to the checks after them.
type lifecycleTrace struct {
	spans    []sdktrace.ReadOnlySpan
	byID     map[trace.SpanID]sdktrace.ReadOnlySpan
	producer trace.SpanContext
	eventID  string

	publish, process   sdktrace.ReadOnlySpan
	settles            []sdktrace.ReadOnlySpan // the worker's ack attempts
	acked, inboxSettle sdktrace.ReadOnlySpan   // the attempt that succeeded, and the inbox's work for it
}

func newLifecycleTrace(spans []sdktrace.ReadOnlySpan, producer trace.SpanContext, eventID string) *lifecycleTrace {
	lt := &lifecycleTrace{spans: spans, byID: map[trace.SpanID]sdktrace.ReadOnlySpan{}, producer: producer, eventID: eventID}
	for _, s := range spans {
		lt.byID[s.SpanContext().SpanID()] = s
	}
	return lt
}

// all returns the spans of the event's trace with that name and kind whose parent passes.
func (lt *lifecycleTrace) all(name string, kind trace.SpanKind, parent func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	var found []sdktrace.ReadOnlySpan
	for _, s := range lt.spans {
		if s.Name() == name && s.SpanKind() == kind && s.SpanContext().TraceID() == lt.producer.TraceID() && parent(s) {
			found = append(found, s)
		}
	}
	return found
}

// inTrace is the one span of the event's trace with that name and kind whose parent passes.
func (lt *lifecycleTrace) inTrace(t *testing.T, name string, kind trace.SpanKind, parent func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
	t.Helper()
	found := lt.all(name, kind, parent)
	if len(found) != 1 {
		t.Fatalf("%d %v spans %q in the event's trace under the expected parent, want 1", len(found), kind, name)
	}
	return found[0]
}

func anyParent(sdktrace.ReadOnlySpan) bool { return true }

func childOf(ps ...sdktrace.ReadOnlySpan) func(sdktrace.ReadOnlySpan) bool {
	return func(s sdktrace.ReadOnlySpan) bool {
		return slices.ContainsFunc(ps, func(p sdktrace.ReadOnlySpan) bool { return s.Parent().SpanID() == p.SpanContext().SpanID() })
	}
}

func rootedAt(sc trace.SpanContext) func(sdktrace.ReadOnlySpan) bool {
	return func(s sdktrace.ReadOnlySpan) bool { return s.Parent().SpanID() == sc.SpanID() }
}

func (lt *lifecycleTrace) postPublishProcess(t *testing.T) {
	postSpan := lt.inTrace(t, "POST /events", trace.SpanKindServer, rootedAt(lt.producer))
	lt.publish = lt.inTrace(t, telemetry.SpanPublish, trace.SpanKindProducer, childOf(postSpan))
	lt.inTrace(t, "DynamoDB.PutItem", trace.SpanKindClient, childOf(lt.publish))
	lt.process = lt.inTrace(t, "trigger process", trace.SpanKindConsumer, childOf(lt.publish))
}

// ackAttempts: every ack attempt in the trace continues the event's processing, every ack call
// the worker made belongs to an attempt, and every call the inbox served is one of those.
func (lt *lifecycleTrace) ackAttempts(t *testing.T) {
	lt.settles = lt.all("trigger settle", trace.SpanKindClient, anyParent)
	if len(lt.settles) == 0 {
		t.Fatal("no worker settle span in the event's trace")
	}
	for _, s := range lt.settles {
		if !childOf(lt.process)(s) {
			t.Errorf("worker settle span %s: parent %s, want the processing span %s", s.SpanContext().SpanID(), s.Parent().SpanID(), lt.process.SpanContext().SpanID())
		}
	}
	ackCalls := lt.all("POST /ack", trace.SpanKindClient, anyParent)
	for _, s := range ackCalls {
		if !childOf(lt.settles...)(s) {
			t.Errorf("worker POST /ack span %s: parent %s is none of the settle attempts", s.SpanContext().SpanID(), s.Parent().SpanID())
		}
	}
	for _, s := range lt.all("POST /ack", trace.SpanKindServer, anyParent) {
		if !childOf(ackCalls...)(s) {
			t.Errorf("inbox POST /ack span %s: parent %s is none of the worker's ack calls", s.SpanContext().SpanID(), s.Parent().SpanID())
		}
	}
}

// oneAckSucceeded: the worker stops retrying at the first success, so exactly one attempt
// succeeded, the last; two would be an event acknowledged twice.
func (lt *lifecycleTrace) oneAckSucceeded(t *testing.T) {
	for _, s := range lt.settles {
		if s.Status().Code == codes.Error {
			continue
		}
		if lt.acked != nil {
			t.Fatalf("two successful ack attempts, %s and %s", lt.acked.SpanContext().SpanID(), s.SpanContext().SpanID())
		}
		lt.acked = s
	}
	if lt.acked == nil {
		t.Fatalf("none of %d ack attempts succeeded", len(lt.settles))
	}
	for _, s := range lt.settles {
		if s.StartTime().After(lt.acked.StartTime()) {
			t.Errorf("ack attempt %s started after the successful one", s.SpanContext().SpanID())
		}
	}
}

// inboxSettledAck: the successful attempt's call was answered 200 by the inbox, which settled
// the event and wrote it inside the same trace.
func (lt *lifecycleTrace) inboxSettledAck(t *testing.T) {
	ackClient := lt.inTrace(t, "POST /ack", trace.SpanKindClient, func(s sdktrace.ReadOnlySpan) bool {
		return childOf(lt.acked)(s) && httpStatus(s) == http.StatusOK
	})
	ackServer := lt.inTrace(t, "POST /ack", trace.SpanKindServer, childOf(ackClient))
	lt.inboxSettle = lt.inTrace(t, telemetry.SpanSettle, trace.SpanKindInternal, childOf(ackServer))
	if lt.inboxSettle.Status().Code == codes.Error {
		t.Errorf("the inbox's settle span under the successful ack failed: %s", lt.inboxSettle.Status().Description)
	}
	lt.inTrace(t, "DynamoDB.UpdateItem", trace.SpanKindClient, childOf(lt.inboxSettle))
}

func (lt *lifecycleTrace) failedAckRetried(t *testing.T, flaky *flakyAck) {
	if !flaky.failed.Load() {
		t.Fatal("the worker's ack was never failed")
	}
	if len(lt.settles) < 2 {
		t.Errorf("%d ack attempts, want a retry after the failed one", len(lt.settles))
	}
	// An answer lost on its way back leaves an inbox that settled the event twice, in one trace.
	if settled := lt.all(telemetry.SpanSettle, trace.SpanKindInternal, anyParent); flaky.afterInbox && len(settled) < 2 {
		t.Errorf("%d inbox settle spans, want the lost answer's and the retry's", len(settled))
	}
}

// processingLinksPull: the processing span links the worker's pull, whose HTTP call the inbox
// served.
func (lt *lifecycleTrace) processingLinksPull(t *testing.T) {
	links := lt.process.Links()
	if len(links) != 1 {
		t.Fatalf("processing span links %v, want the pull", links)
	}
	pull, ok := lt.byID[links[0].SpanContext.SpanID()]
	if !ok || pull.Name() != "trigger receive" || pull.SpanKind() != trace.SpanKindClient {
		t.Fatalf("processing span links %v, not the worker's receive span", links[0].SpanContext)
	}
	var served bool
	for _, s := range lt.spans {
		if s.Name() == "POST /inbox/pull" && s.SpanKind() == trace.SpanKindServer && s.SpanContext().TraceID() == pull.SpanContext().TraceID() {
			served = true
		}
	}
	if !served {
		t.Error("no inbox server span in the pull's trace")
	}
}

func (lt *lifecycleTrace) spansNameTheEvent(t *testing.T) {
	for _, s := range append([]sdktrace.ReadOnlySpan{lt.publish, lt.process, lt.inboxSettle}, lt.settles...) {
		var id string
		for _, a := range s.Attributes() {
			if a.Key == "messaging.message.id" {
				id = a.Value.AsString()
			}
		}
		if id != lt.eventID {
			t.Errorf("%s span names message %q, want %s", s.Name(), id, lt.eventID)
		}
	}
}

func httpStatus(s sdktrace.ReadOnlySpan) int64 {
	for _, a := range s.Attributes() {
		if a.Key == "http.response.status_code" {
			return a.Value.AsInt64()
		}
	}
	return 0
}

// flakyAck carries the worker's calls to the inbox and fails its first ack, as a loaded
// network or inbox does: with a 503 before the inbox sees it, or, when afterInbox, by losing
// the answer to an ack the inbox has already settled.
type flakyAck struct {
	base       http.RoundTripper
	afterInbox bool
	failed     atomic.Bool
}

func (f *flakyAck) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || r.URL.Path != "/ack" || !f.failed.CompareAndSwap(false, true) {
		return f.base.RoundTrip(r)
	}
	if !f.afterInbox {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return &http.Response{
			Status: "503 Service Unavailable", StatusCode: http.StatusServiceUnavailable,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:  http.Header{"Content-Type": {"application/json"}},
			Body:    io.NopCloser(strings.NewReader(`{"error":{"code":"unavailable","message":"try again"}}`)),
			Request: r,
		}, nil
	}
	resp, err := f.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return nil, errors.New("connection reset by peer")
}
