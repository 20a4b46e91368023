package inboxapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/events"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/services/inbox/inboxapi"
)

type traced struct {
	*fixture
	spans  *tracetest.SpanRecorder
	tracer trace.Tracer // plays the producer and the worker
	logs   *observer.ObservedLogs
	auth   *tenant.Authenticator
}

func newTraced(t *testing.T) *traced {
	t.Helper()
	return newTracedWith(t, telemetry.MetricsOptions{})
}

func newTracedWith(t *testing.T, opts telemetry.MetricsOptions) *traced {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tel, err := telemetry.New(tp)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	tables := shared.Tables(t)
	client := dynamodb.New(shared.Client.Options(), ddb.WithTelemetry(tel))
	f := &fixture{tenants: tenantdb.New(shared.Client, tables), events: eventsdb.New(shared.Client, tables)}
	auth := tenant.NewAuthenticator(tenantdb.New(client, tables), tenant.AuthConfig{}, nil)
	f.h = inboxapi.NewHandler(inboxapi.Deps{
		Log:   zap.New(core),
		Inbox: queue.NewInbox(eventsdb.New(client, tables), queue.Options{Log: zap.New(core), Tel: tel, Metrics: opts}),
		Auth:  auth,
		Ready: func(context.Context) error { return nil },
		Tel:   tel,
	})
	return &traced{fixture: f, spans: rec, tracer: tp.Tracer("test"), logs: logs, auth: auth}
}

// publish stores an event as ingest would: stamped with the context of a publish span.
func (tr *traced) publish(t *testing.T, tenantID string, at time.Time) (events.Event, trace.SpanContext) {
	t.Helper()
	ctx, span := tr.tracer.Start(context.Background(), "producer publish")
	defer span.End()
	e := events.New(tenantID, "order.paid", []byte(`{"event_type":"order.paid"}`), 1, at)
	e.Traceparent = telemetry.Traceparent(ctx)
	if err := tr.events.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	return e, span.SpanContext()
}

func (tr *traced) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tr.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func (tr *traced) one(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	got := tr.ended(name)
	if len(got) != 1 {
		var all []string
		for _, s := range tr.spans.Ended() {
			all = append(all, s.Name())
		}
		t.Fatalf("%d spans %q among %v", len(got), name, all)
	}
	return got[0]
}

type pullAnswer struct {
	Events []struct {
		EventID      string `json:"event_id"`
		LeaseID      string `json:"lease_id"`
		TraceContext struct {
			Traceparent string `json:"traceparent"`
		} `json:"trace_context"`
	} `json:"events"`
}

func TestLifecycleIsOneTrace(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	apitest.SeedTenant(t, tr.tenants, "acme", 1)
	key := apitest.SeedKey(t, tr.tenants, "acme", apitest.KeyOptions{})
	e, publish := tr.publish(t, "acme", time.Now().Add(-time.Second))

	list := apitest.Do(t, tr.h, apitest.Request{Method: "GET", Path: "/inbox", Key: key})
	if !strings.Contains(string(list.Body), `"trace_context":{"traceparent":"`+e.Traceparent+`"}`) {
		t.Fatalf("GET /inbox lacks trace_context: %s", list.Body)
	}
	res := apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/inbox/pull", Key: key, Body: `{}`})
	var p pullAnswer
	if err := json.Unmarshal(res.Body, &p); err != nil || len(p.Events) != 1 {
		t.Fatalf("pull: %v %s", err, res.Body)
	}
	if p.Events[0].TraceContext.Traceparent != e.Traceparent {
		t.Fatalf("pull trace_context %q, want %q", p.Events[0].TraceContext.Traceparent, e.Traceparent)
	}
	receive := tr.one(t, telemetry.SpanReceive)
	if len(receive.Links()) != 1 || receive.Links()[0].SpanContext.SpanID() != publish.SpanID() {
		t.Fatalf("receive span links %v, want the publish span", receive.Links())
	}
	if receive.Parent().SpanID() != tr.one(t, "POST /inbox/pull").SpanContext().SpanID() {
		t.Fatal("receive span is not under the pull's server span")
	}

	// The worker processes the event in a child of its context and acks with its own.
	wctx := trace.ContextWithRemoteSpanContext(context.Background(), telemetry.SpanContextOf(p.Events[0].TraceContext.Traceparent))
	wctx, process := tr.tracer.Start(wctx, "trigger process")
	body := fmt.Sprintf(`{"event_id":%q,"lease_id":%q}`, e.ID, p.Events[0].LeaseID)
	ack := apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/ack", Key: key, Body: body,
		Header: http.Header{"Traceparent": {telemetry.Traceparent(wctx)}}})
	process.End()
	if ack.Status != http.StatusOK {
		t.Fatalf("ack: %d %s", ack.Status, ack.Body)
	}

	server := tr.one(t, "POST /ack")
	settle := tr.one(t, telemetry.SpanSettle)
	var update sdktrace.ReadOnlySpan
	for _, s := range tr.ended("DynamoDB.UpdateItem") {
		if s.Parent().SpanID() == settle.SpanContext().SpanID() {
			update = s
		}
	}
	switch {
	case server.SpanContext().TraceID() != publish.TraceID():
		t.Fatal("the ack is not in the event's trace")
	case server.Parent().SpanID() != process.SpanContext().SpanID():
		t.Fatal("the ack's server span is not a child of the processing span")
	case settle.Parent().SpanID() != server.SpanContext().SpanID():
		t.Fatal("the settle span is not under the ack's server span")
	case update == nil:
		t.Fatal("the ack's UpdateItem is not a child of the settle span")
	case update.SpanContext().TraceID() != publish.TraceID():
		t.Fatal("the ack's UpdateItem is not in the event's trace")
	}
	attrs := map[string]string{}
	for _, a := range settle.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["messaging.operation.type"] != "settle" || attrs["messaging.message.id"] != e.ID ||
		attrs["trigger.tenant.id"] != "acme" || attrs["trigger.event.type"] != "order.paid" {
		t.Fatalf("settle attributes %v", attrs)
	}
}

// TestBatchAckSettlesEachEventInItsOwnTrace: one ack call for events of two traces puts each
// event's settle span and write into that event's trace, linked to the call's span.
func TestBatchAckSettlesEachEventInItsOwnTrace(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	apitest.SeedTenant(t, tr.tenants, "acme", 1)
	key := apitest.SeedKey(t, tr.tenants, "acme", apitest.KeyOptions{})
	published := map[string]trace.SpanContext{}
	for i := range 2 {
		e, sc := tr.publish(t, "acme", time.Now().Add(-time.Minute+time.Duration(i)*time.Millisecond))
		published[e.ID] = sc
	}
	res := apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/inbox/pull", Key: key, Body: `{"max_events":2}`})
	var p pullAnswer
	if err := json.Unmarshal(res.Body, &p); err != nil || len(p.Events) != 2 {
		t.Fatalf("pull: %v %s", err, res.Body)
	}
	// The worker's side: a processing span per event, and one batch call of its own.
	processing := map[string]trace.SpanContext{}
	var items []string
	for _, ev := range p.Events {
		ctx := trace.ContextWithRemoteSpanContext(context.Background(), telemetry.SpanContextOf(ev.TraceContext.Traceparent))
		ctx, span := tr.tracer.Start(ctx, "trigger process")
		span.End()
		processing[ev.EventID] = span.SpanContext()
		items = append(items, fmt.Sprintf(`{"event_id":%q,"lease_id":%q,"trace_context":{"traceparent":%q}}`, ev.EventID, ev.LeaseID, telemetry.Traceparent(ctx)))
	}
	bctx, batch := tr.tracer.Start(context.Background(), "worker settle batch")
	ack := apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/ack", Key: key, Body: `{"leases":[` + strings.Join(items, ",") + `]}`,
		Header: http.Header{"Traceparent": {telemetry.Traceparent(bctx)}}})
	batch.End()
	if ack.Status != http.StatusOK || !strings.Contains(string(ack.Body), `"succeeded_count":2`) {
		t.Fatalf("ack: %d %s", ack.Status, ack.Body)
	}

	server := tr.one(t, "POST /ack")
	if server.SpanContext().TraceID() != batch.SpanContext().TraceID() {
		t.Fatal("the call's server span is not in the batch's trace")
	}
	settles := tr.ended(telemetry.SpanSettle)
	if len(settles) != 2 {
		t.Fatalf("%d settle spans, want 2", len(settles))
	}
	for _, s := range settles {
		var id string
		for _, a := range s.Attributes() {
			if a.Key == "messaging.message.id" {
				id = a.Value.AsString()
			}
		}
		want, ok := processing[id]
		switch {
		case !ok:
			t.Fatalf("settle span for unknown event %q", id)
		case s.Parent().SpanID() != want.SpanID() || s.SpanContext().TraceID() != published[id].TraceID():
			t.Errorf("%s: settle span is not under its processing span in the event's trace", id)
		case len(s.Links()) != 1 || s.Links()[0].SpanContext.SpanID() != server.SpanContext().SpanID():
			t.Errorf("%s: settle span links %v, want the call's server span", id, s.Links())
		}
		var write bool
		for _, u := range tr.ended("DynamoDB.UpdateItem") {
			write = write || (u.Parent().SpanID() == s.SpanContext().SpanID() && u.SpanContext().TraceID() == published[id].TraceID())
		}
		if !write {
			t.Errorf("%s: no UpdateItem under its settle span", id)
		}
	}
}

func TestInboxMetricsCountExactly(t *testing.T) {
	t.Parallel()
	for _, label := range []bool{false, true} {
		t.Run(fmt.Sprintf("tenant-label-%v", label), func(t *testing.T) {
			t.Parallel()
			inboxMetricsCountExactly(t, label)
		})
	}
}

func inboxMetricsCountExactly(t *testing.T, label bool) {
	tr := newTracedWith(t, telemetry.MetricsOptions{MetricsTenantLabel: label})
	apitest.SeedTenant(t, tr.tenants, "acme", 1)
	key := apitest.SeedKey(t, tr.tenants, "acme", apitest.KeyOptions{})
	const n, m = 6, 4
	for i := range n {
		tr.publish(t, "acme", time.Now().Add(-time.Minute+time.Duration(i)*time.Millisecond))
	}
	res := apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/inbox/pull", Key: key, Body: fmt.Sprintf(`{"max_events":%d}`, n)})
	var p pullAnswer
	if err := json.Unmarshal(res.Body, &p); err != nil || len(p.Events) != n {
		t.Fatalf("pull: %v %s", err, res.Body)
	}
	for _, ev := range p.Events[:m] {
		body := fmt.Sprintf(`{"event_id":%q,"lease_id":%q}`, ev.EventID, ev.LeaseID)
		if r := apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/ack", Key: key, Body: body}); r.Status != http.StatusOK {
			t.Fatalf("ack: %d %s", r.Status, r.Body)
		}
	}
	// A repeated ack settles nothing new and is not counted again.
	again := fmt.Sprintf(`{"event_id":%q}`, p.Events[0].EventID)
	apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/ack", Key: key, Body: again})
	nack := fmt.Sprintf(`{"leases":[{"event_id":%q,"lease_id":%q}]}`, p.Events[m].EventID, p.Events[m].LeaseID)
	if r := apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/nack", Key: key, Body: nack}); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"succeeded_count":1`) {
		t.Fatalf("nack: %d %s", r.Status, r.Body)
	}
	apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/inbox/pull", Key: key, Body: `{"wait_seconds":1,"max_events":1}`})
	// The key's last_used_at write happens beside the first request; wait for it to count it.
	tr.auth.WaitWrites()

	w := httptest.NewRecorder()
	tr.h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(w.Body)
	text := string(b)
	for name, want := range map[string]float64{
		"trigger_events_delivered_total":                 n + 1,
		"trigger_events_acknowledged_total":              m,
		"trigger_events_nacked_total":                    1,
		"trigger_events_time_in_inbox_seconds_count":     m,
		"trigger_inbox_long_poll_duration_seconds_count": 1,
	} {
		if got := sample(t, text, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// A conditional write per lease, ack and nack, and the key's last_used_at; the repeated
	// ack's condition fails, which is the store telling a settled event apart, not an error.
	for outcome, want := range map[string]float64{"ok": n + 1 + m + 1 + 1, "condition_failed": 1} {
		re := regexp.MustCompile(`(?m)^trigger_dynamodb_call_duration_seconds_count\{([^}]*)\} (\S+)$`)
		var got []string
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			if strings.Contains(m[1], `operation="UpdateItem"`) && strings.Contains(m[1], `outcome="`+outcome+`"`) {
				got = append(got, m[2])
			}
		}
		if len(got) != 1 || got[0] != strconv.FormatFloat(want, 'f', -1, 64) {
			t.Errorf("UpdateItem %s: %v, want %v", outcome, got, want)
		}
	}
	// Each acked event waited about a minute: the histogram's sum says so.
	if sum := sample(t, text, "trigger_events_time_in_inbox_seconds_sum"); sum < m*50 || sum > m*600 {
		t.Errorf("time in inbox sum %v", sum)
	}
	if !label && strings.Contains(text, "acme") {
		t.Error("a metric names the tenant")
	}
	if label {
		for _, name := range []string{"trigger_events_delivered_total", "trigger_events_acknowledged_total", "trigger_events_nacked_total", "trigger_events_time_in_inbox_seconds_count"} {
			re := regexp.MustCompile(`(?m)^` + name + `\{[^}]*trigger_tenant_id="acme"[^}]*\} `)
			if !re.MatchString(text) {
				t.Errorf("%s has no trigger_tenant_id=\"acme\" series", name)
			}
		}
	}
}

func TestDeadEventsAreCounted(t *testing.T) {
	t.Parallel()
	for _, label := range []bool{false, true} {
		t.Run(fmt.Sprintf("tenant-label-%v", label), func(t *testing.T) {
			t.Parallel()
			deadEventsAreCounted(t, label)
		})
	}
}

func deadEventsAreCounted(t *testing.T, label bool) {
	tr := newTracedWith(t, telemetry.MetricsOptions{MetricsTenantLabel: label})
	apitest.SeedTenant(t, tr.tenants, "acme", 1)
	key := apitest.SeedKey(t, tr.tenants, "acme", apitest.KeyOptions{})
	e, _ := tr.publish(t, "acme", time.Now().Add(-time.Minute))
	// Use up every delivery, then one more pull buries the event.
	for range tenant.DefaultMaxDeliveries {
		res := apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/inbox/pull", Key: key, Body: `{"visibility_timeout_seconds":1}`})
		var p pullAnswer
		if err := json.Unmarshal(res.Body, &p); err != nil || len(p.Events) != 1 {
			t.Fatalf("pull: %v %s", err, res.Body)
		}
		nack := fmt.Sprintf(`{"leases":[{"event_id":%q,"lease_id":%q}]}`, e.ID, p.Events[0].LeaseID)
		apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/nack", Key: key, Body: nack})
	}
	apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/inbox/pull", Key: key, Body: `{}`})
	w := httptest.NewRecorder()
	tr.h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(w.Body)
	if got := sample(t, string(b), "trigger_events_dead_total"); got != 1 {
		t.Fatalf("dead %v, want 1", got)
	}
	if got := regexp.MustCompile(`(?m)^trigger_events_dead_total\{[^}]*trigger_tenant_id="acme"`).Match(b); got != label {
		t.Fatalf("dead count names the tenant: %v, want %v\n%s", got, label, b)
	}
}

func sample(t *testing.T, text, name string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{[^}]*\})? (\S+)$`)
	var sum float64
	found := false
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		sum, found = sum+v, true
	}
	if !found {
		t.Fatalf("no series %s", name)
	}
	return sum
}
