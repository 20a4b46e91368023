package tracing_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	inbox "github.com/trigger-api/trigger-api/services/inbox/app"
	ingest "github.com/trigger-api/trigger-api/services/ingest/app"
	worker "github.com/trigger-api/trigger-api/worker/app"
)

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

// TestLifecycleIsOneTraceAcrossServicesAndWorker runs ingest, inbox and the worker in this
// process against DynamoDB Local, all recording into one span recorder: a producer's POST, the
// worker's leased pull, its processing and its ack must form one trace rooted at the
// producer's span, every span under the right parent, the pull linked.
func TestLifecycleIsOneTraceAcrossServicesAndWorker(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tel, err := telemetry.New(tp)
	if err != nil {
		t.Fatal(err)
	}
	tables := shared.Tables(t)
	client := dynamodb.New(shared.Client.Options(), ddb.WithTracing(tel))
	store, tenants := eventsdb.New(client, tables), tenantdb.New(client, tables)
	apitest.SeedTenant(t, tenantdb.New(shared.Client, tables), "acme", 1)
	key := apitest.SeedKey(t, tenantdb.New(shared.Client, tables), "acme", apitest.KeyOptions{})
	ready := func(context.Context) error { return nil }

	// One origin for both services, routed as the gateway and the Ingress route them.
	ingestH := ingest.NewHandler(ingest.Deps{Log: zap.NewNop(), Events: store, Ready: ready, Tel: tel,
		Auth: tenant.NewAuthenticator(tenants, tenant.AuthConfig{}, nil)})
	inboxH := inbox.NewHandler(inbox.Deps{Log: zap.NewNop(), Events: store, Ready: ready, Tel: tel,
		Auth: tenant.NewAuthenticator(tenants, tenant.AuthConfig{}, nil)})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/events") {
			ingestH.ServeHTTP(w, r)
			return
		}
		inboxH.ServeHTTP(w, r)
	}))
	defer srv.Close()

	// The producer's own span: the trace's root.
	pctx, producer := tp.Tracer("producer").Start(context.Background(), "producer send")
	req, _ := http.NewRequestWithContext(pctx, http.MethodPost, srv.URL+"/events", strings.NewReader(`{"event_type":"order.paid","order_id":"o-1"}`))
	req.Header.Set("Authorization", "Bearer "+key)
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

	// The worker consumes it once and is stopped; stopping flushes its acks.
	processed := make(chan string, 1)
	ctx, cancel := context.WithCancel(telemetry.NewContext(context.Background(), tel))
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, zap.NewNop(), worker.Config{
			InboxURL: srv.URL, APIKeys: []string{key}, Concurrency: 1, BatchSize: 1, WaitSeconds: 1,
			VisibilityTimeout: 30 * time.Second, NackDelay: time.Second, AckInterval: time.Millisecond,
			PollInterval: 10 * time.Millisecond, ShutdownTimeout: 10 * time.Second, RequestTimeout: 10 * time.Second,
		}, worker.WithProcessor(func(_ context.Context, ev worker.Event) error {
			select {
			case processed <- ev.ID:
			default:
			}
			return nil
		}))
	}()
	select {
	case id := <-processed:
		if id != posted.EventID {
			t.Fatalf("worker processed %s, want %s", id, posted.EventID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not process the event")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Close waits for every handler, so every server span has ended.
	srv.Close()

	spans := rec.Ended()
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	inTrace := func(name string, kind trace.SpanKind, parent func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
		t.Helper()
		var found []sdktrace.ReadOnlySpan
		for _, s := range spans {
			if s.Name() == name && s.SpanKind() == kind && s.SpanContext().TraceID() == producer.SpanContext().TraceID() && parent(s) {
				found = append(found, s)
			}
		}
		if len(found) != 1 {
			t.Fatalf("%d %v spans %q in the event's trace under the expected parent, want 1", len(found), kind, name)
		}
		return found[0]
	}
	childOf := func(p sdktrace.ReadOnlySpan) func(sdktrace.ReadOnlySpan) bool {
		return func(s sdktrace.ReadOnlySpan) bool { return s.Parent().SpanID() == p.SpanContext().SpanID() }
	}
	rootedAt := func(sc trace.SpanContext) func(sdktrace.ReadOnlySpan) bool {
		return func(s sdktrace.ReadOnlySpan) bool { return s.Parent().SpanID() == sc.SpanID() }
	}

	postSpan := inTrace("POST /events", trace.SpanKindServer, rootedAt(producer.SpanContext()))
	publish := inTrace(telemetry.SpanPublish, trace.SpanKindProducer, childOf(postSpan))
	inTrace("DynamoDB.PutItem", trace.SpanKindClient, childOf(publish))
	process := inTrace("trigger process", trace.SpanKindConsumer, childOf(publish))
	settle := inTrace("trigger settle", trace.SpanKindClient, childOf(process))
	ackClient := inTrace("POST /ack", trace.SpanKindClient, childOf(settle))
	ackServer := inTrace("POST /ack", trace.SpanKindServer, childOf(ackClient))
	inboxSettle := inTrace(telemetry.SpanSettle, trace.SpanKindInternal, childOf(ackServer))
	inTrace("DynamoDB.UpdateItem", trace.SpanKindClient, childOf(inboxSettle))

	// The processing span links the worker's pull, whose HTTP call the inbox served.
	links := process.Links()
	if len(links) != 1 {
		t.Fatalf("processing span links %v, want the pull", links)
	}
	pull, ok := byID[links[0].SpanContext.SpanID()]
	if !ok || pull.Name() != "trigger receive" || pull.SpanKind() != trace.SpanKindClient {
		t.Fatalf("processing span links %v, not the worker's receive span", links[0].SpanContext)
	}
	var served bool
	for _, s := range spans {
		if s.Name() == "POST /inbox/pull" && s.SpanKind() == trace.SpanKindServer && s.SpanContext().TraceID() == pull.SpanContext().TraceID() {
			served = true
		}
	}
	if !served {
		t.Error("no inbox server span in the pull's trace")
	}
	for _, s := range []sdktrace.ReadOnlySpan{publish, process, settle, inboxSettle} {
		var id string
		for _, a := range s.Attributes() {
			if a.Key == "messaging.message.id" {
				id = a.Value.AsString()
			}
		}
		if id != posted.EventID {
			t.Errorf("%s span names message %q, want %s", s.Name(), id, posted.EventID)
		}
	}
}
