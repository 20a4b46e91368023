package ingestapi_test

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

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/services/ingest/ingestapi"
)

type traced struct {
	*fixture
	spans *tracetest.SpanRecorder
	tel   *telemetry.Telemetry
	logs  *observer.ObservedLogs
}

// newTraced is the fixture behind the real instrumentation, recording spans, metrics and logs.
func newTraced(t *testing.T) *traced {
	t.Helper()
	return newTracedWith(t, telemetry.MetricsOptions{})
}

func newTracedWith(t *testing.T, opts telemetry.MetricsOptions) *traced {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	tables := shared.Tables(t)
	client := dynamodb.New(shared.Client.Options(), ddb.WithTelemetry(tel))
	f := &fixture{tenants: tenantdb.New(shared.Client, tables), events: eventsdb.New(shared.Client, tables)}
	f.h = ingestapi.NewHandler(ingestapi.Deps{
		Log:       zap.New(core),
		Publisher: queue.NewPublisher(eventsdb.New(client, tables), queue.Options{Log: zap.New(core), Tel: tel, Metrics: opts}),
		Auth:      tenant.NewAuthenticator(tenantdb.New(client, tables), tenant.AuthConfig{}, nil),
		Ready:     func(context.Context) error { return nil },
		Tel:       tel,
	})
	return &traced{fixture: f, spans: rec, tel: tel, logs: logs}
}

func (tr *traced) span(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range tr.spans.Ended() {
		if s.Name() == name {
			return s
		}
	}
	t.Fatalf("no span %q among %v", name, names(tr.spans.Ended()))
	return nil
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func (tr *traced) metrics(t *testing.T) string {
	t.Helper()
	w := httptest.NewRecorder()
	tr.h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", w.Code)
	}
	b, _ := io.ReadAll(w.Body)
	return string(b)
}

// metricValue sums the samples of one Prometheus series name across its label sets.
func metricValue(t *testing.T, text, name string) float64 {
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
		t.Fatalf("no series %s in\n%s", name, text)
	}
	return sum
}

const producerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
const producerSpan = "00f067aa0ba902b7"

func TestIngestContinuesProducerTrace(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	apitest.SeedTenant(t, tr.tenants, "acme", 1)
	key := apitest.SeedKey(t, tr.tenants, "acme", apitest.KeyOptions{})
	res := apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/events", Key: key, Body: seedBody,
		Header: http.Header{"Traceparent": {"00-" + producerTrace + "-" + producerSpan + "-01"}}})
	if res.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	var acc struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(res.Body, &acc); err != nil {
		t.Fatal(err)
	}

	server := tr.span(t, "POST /events")
	if server.Parent().TraceID().String() != producerTrace || server.Parent().SpanID().String() != producerSpan {
		t.Fatalf("server span parent %v, want the producer's span", server.Parent())
	}
	if server.SpanKind() != trace.SpanKindServer {
		t.Fatalf("server span kind %v", server.SpanKind())
	}
	publish := tr.span(t, telemetry.SpanPublish)
	if publish.Parent().SpanID() != server.SpanContext().SpanID() {
		t.Fatal("publish span is not a child of the server span")
	}
	attrs := map[string]string{}
	for _, a := range publish.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	want := map[string]string{"messaging.system": "trigger", "messaging.operation.type": "publish",
		"messaging.message.id": acc.EventID, "trigger.tenant.id": "acme", "trigger.event.type": "customer.created"}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("publish %s = %q, want %q", k, attrs[k], v)
		}
	}
	put := tr.span(t, "DynamoDB.PutItem")
	if put.Parent().SpanID() != publish.SpanContext().SpanID() {
		t.Fatal("the DynamoDB write is not a child of the publish span")
	}

	stored, err := tr.events.Get(t.Context(), "acme", acc.EventID, publish.EndTime())
	if err != nil {
		t.Fatal(err)
	}
	wantTP := fmt.Sprintf("00-%s-%s-01", producerTrace, publish.SpanContext().SpanID())
	if stored.Traceparent != wantTP {
		t.Fatalf("stored traceparent %q, want %q", stored.Traceparent, wantTP)
	}
	got := apitest.Do(t, tr.h, apitest.Request{Method: "GET", Path: "/events/" + acc.EventID, Key: key})
	if !strings.Contains(string(got.Body), `"trace_context":{"traceparent":"`+wantTP+`"}`) {
		t.Fatalf("GET /events/{id} lacks trace_context: %s", got.Body)
	}

	// The access-log line carries the ids that join it to the trace.
	lines := tr.logs.FilterMessage("request").FilterFieldKey("trace_id").All()
	if len(lines) == 0 {
		t.Fatal("no access-log line with trace_id")
	}
	f := lines[0].ContextMap()
	if f["trace_id"] != producerTrace || f["span_id"] != server.SpanContext().SpanID().String() ||
		f["tenant_id"] != "acme" || f["request_id"] == "" || f["route"] != "/events" {
		t.Fatalf("access log fields %v", f)
	}
}

func TestBatchGivesEachEventItsOwnContext(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	apitest.SeedTenant(t, tr.tenants, "acme", 1)
	key := apitest.SeedKey(t, tr.tenants, "acme", apitest.KeyOptions{})
	body := `{"events":[{"event_type":"a.b","i":1},{"event_type":"a.b","i":2,"idempotency_key":"k1"}]}`
	res := apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/events/batch", Key: key, Body: body})
	var out struct {
		Results []struct {
			EventID string `json:"event_id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil || len(out.Results) != 2 {
		t.Fatalf("batch: %v %s", err, res.Body)
	}
	server := tr.span(t, "POST /events/batch")
	seen := map[string]bool{}
	for _, r := range out.Results {
		e, err := tr.events.Get(t.Context(), "acme", r.EventID, server.EndTime())
		if err != nil {
			t.Fatal(err)
		}
		sc := telemetry.SpanContextOf(e.Traceparent)
		if sc.TraceID() != server.SpanContext().TraceID() || seen[sc.SpanID().String()] {
			t.Fatalf("event %s context %q", r.EventID, e.Traceparent)
		}
		seen[sc.SpanID().String()] = true
	}
	publishes := 0
	for _, s := range tr.spans.Ended() {
		if s.Name() == telemetry.SpanPublish {
			publishes++
			if s.Parent().SpanID() != server.SpanContext().SpanID() || !seen[s.SpanContext().SpanID().String()] {
				t.Fatalf("publish span %v does not match a stored context", s.SpanContext())
			}
		}
	}
	if publishes != 2 {
		t.Fatalf("%d publish spans, want 2", publishes)
	}
}

func TestProbesAndMetricsAreNotTraced(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	for _, p := range []string{"/livez", "/readyz", "/metrics"} {
		w := httptest.NewRecorder()
		tr.h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d", p, w.Code)
		}
	}
	if n := len(tr.spans.Ended()); n != 0 {
		t.Fatalf("probes made spans: %v", names(tr.spans.Ended()))
	}
	if n := tr.logs.Len(); n != 0 {
		t.Fatalf("probes were logged: %v", tr.logs.All())
	}
}

func TestIngestMetricsCountExactly(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	apitest.SeedTenant(t, tr.tenants, "acme", 1)
	key := apitest.SeedKey(t, tr.tenants, "acme", apitest.KeyOptions{})
	const n = 7
	for range n {
		if res := post(t, tr.fixture, key, seedBody); res.Status != http.StatusAccepted {
			t.Fatalf("status %d", res.Status)
		}
	}
	if res := post(t, tr.fixture, key, `{"no_type":1}`); res.Status != http.StatusBadRequest {
		t.Fatalf("invalid event: status %d", res.Status)
	}
	text := tr.metrics(t)
	if got := metricValue(t, text, "trigger_events_ingested_total"); got != n {
		t.Fatalf("ingested %v, want %d", got, n)
	}
	re := regexp.MustCompile(`(?m)^http_server_request_duration_seconds_count\{[^}]*\} (\d+)$`)
	var posts, bad int
	for _, line := range re.FindAllString(text, -1) {
		if !strings.Contains(line, `http_route="/events"`) || strings.Contains(line, "tenant") {
			t.Fatalf("request metric without route or with a tenant label: %s", line)
		}
		v, _ := strconv.Atoi(line[strings.LastIndexByte(line, ' ')+1:])
		switch {
		case strings.Contains(line, `http_response_status_code="202"`):
			posts += v
		case strings.Contains(line, `http_response_status_code="400"`):
			bad += v
		}
	}
	if posts != n || bad != 1 {
		t.Fatalf("request durations: %d accepted, %d bad; want %d, 1\n%s", posts, bad, n, text)
	}
	// One write per accepted event; the refused one reached no table.
	if got, _ := labelledValue(t, text, "trigger_dynamodb_call_duration_seconds_count", `operation="PutItem"`, `outcome="ok"`); got != n {
		t.Fatalf("PutItem calls %v, want %d\n%s", got, n, text)
	}
	if hits, misses := metricValue(t, text, "trigger_auth_key_cache_hits_total"), metricValue(t, text, "trigger_auth_key_cache_misses_total"); hits+misses != n+1 || misses < 1 {
		t.Fatalf("key cache hits %v misses %v over %d lookups", hits, misses, n+1)
	}
}

// The tenant label is off unless asked for; on, it splits the count by tenant exactly.
func TestTenantLabelIsOptIn(t *testing.T) {
	t.Parallel()
	counts := map[string]int{"acme": 3, "globex": 2}
	for _, on := range []bool{false, true} {
		tr := newTracedWith(t, telemetry.MetricsOptions{MetricsTenantLabel: on})
		for id, n := range counts {
			apitest.SeedTenant(t, tr.tenants, id, 1)
			key := apitest.SeedKey(t, tr.tenants, id, apitest.KeyOptions{})
			for range n {
				if res := post(t, tr.fixture, key, seedBody); res.Status != http.StatusAccepted {
					t.Fatalf("status %d", res.Status)
				}
			}
		}
		text := tr.metrics(t)
		if got := metricValue(t, text, "trigger_events_ingested_total"); got != 5 {
			t.Fatalf("label %v: ingested %v, want 5", on, got)
		}
		for id, n := range counts {
			got, found := labelledValue(t, text, "trigger_events_ingested_total", `trigger_tenant_id="`+id+`"`)
			if found != on || (on && got != float64(n)) {
				t.Fatalf("label %v: %s series found %v with %v, want %d\n%s", on, id, found, got, n, text)
			}
		}
	}
}

// labelledValue sums the samples of one series name whose labels include every one of labels.
func labelledValue(t *testing.T, text, name string, labels ...string) (sum float64, found bool) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		if !containsAll(m[1], labels) {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		sum, found = sum+v, true
	}
	return sum, found
}

// The secrets and payloads a request carries never reach a span, a metric or a log line.
func TestTelemetryCarriesNoSecrets(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	apitest.SeedTenant(t, tr.tenants, "acme", 1)
	key := apitest.SeedKey(t, tr.tenants, "acme", apitest.KeyOptions{})
	const marker = "payload-marker-5d2c"
	body := `{"event_type":"secret.test","note":"` + marker + `"}`
	post(t, tr.fixture, key, body)
	post(t, tr.fixture, key, `{"event_type":"bad type!","note":"`+marker+`"}`)
	post(t, tr.fixture, key+"x", body)
	apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/events/batch", Key: key, Body: `{"events":[` + body + `]}`})
	const admin = "admin-token-secret-7f1e"
	apitest.Do(t, tr.h, apitest.Request{Method: "POST", Path: "/events", Body: body,
		Header: http.Header{"Authorization": {"Bearer " + admin}}})

	var dump strings.Builder
	for _, s := range tr.spans.Ended() {
		fmt.Fprintln(&dump, s.Name(), s.Attributes(), s.Events(), s.Links(), s.Status())
	}
	for _, e := range tr.logs.All() {
		fmt.Fprintln(&dump, e.Message, e.ContextMap())
	}
	dump.WriteString(tr.metrics(t))
	if len(tr.spans.Ended()) == 0 || tr.logs.Len() == 0 {
		t.Fatal("nothing recorded")
	}
	for _, secret := range []string{key, key[len(key)-12:], admin, marker} {
		if strings.Contains(dump.String(), secret) {
			t.Errorf("telemetry holds %q", secret)
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
