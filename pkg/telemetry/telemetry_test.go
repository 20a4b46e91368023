package telemetry_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

func clearEnv(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER",
		"POD_NAME", "POD_NAMESPACE", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"} {
		t.Setenv(k, "")
	}
}

func TestSetupWithoutEndpointStillGivesIDs(t *testing.T) {
	clearEnv(t)
	tel, shutdown, err := telemetry.Setup(context.Background(), "svc", "v1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "op")
	if !span.SpanContext().IsValid() {
		t.Fatal("no span ids without an exporter")
	}
	// Nothing would read a recorded span: it is not recorded, and says so downstream.
	if span.IsRecording() || span.SpanContext().IsSampled() {
		t.Error("a span is recorded though nothing exports it")
	}
	tp := telemetry.Traceparent(ctx)
	span.End()
	if sc := telemetry.SpanContextOf(tp); sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("traceparent %q does not round-trip", tp)
	}
	if fields := strings.Join(otel.GetTextMapPropagator().Fields(), ","); !strings.Contains(fields, "traceparent") || !strings.Contains(fields, "baggage") {
		t.Fatalf("global propagator fields %v", otel.GetTextMapPropagator().Fields())
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestSetupPicksTheConfiguredTransport(t *testing.T) {
	for _, proto := range []string{"grpc", "http/protobuf", ""} {
		clearEnv(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
		_, shutdown, err := telemetry.Setup(context.Background(), "svc", "v1")
		if err != nil {
			t.Fatalf("%q: %v", proto, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 0)
		_ = shutdown(ctx) // nothing listens; only that set-up succeeded matters
		cancel()
	}
}

func TestSetupRefusesBadSettings(t *testing.T) {
	for _, c := range []struct{ endpoint, proto string }{
		{"127.0.0.1:4317", ""},
		{"http://127.0.0.1:4318", "http/json"},
	} {
		clearEnv(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.endpoint)
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", c.proto)
		if _, _, err := telemetry.Setup(context.Background(), "svc", "v1"); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	// Disabled wins over a bad endpoint: nothing is exported, so nothing is checked.
	clearEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4317")
	t.Setenv("OTEL_SDK_DISABLED", "true")
	tel, _, err := telemetry.Setup(context.Background(), "svc", "v1")
	if err != nil {
		t.Fatal(err)
	}
	// Off means off: no span, so nothing to carry or store.
	if _, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "op"); span.SpanContext().IsValid() || span.IsRecording() {
		t.Error("OTEL_SDK_DISABLED=true still makes spans")
	}
}

func TestResourceNamesServiceAndPod(t *testing.T) {
	clearEnv(t)
	t.Setenv("POD_NAME", "ingest-7c9")
	t.Setenv("POD_NAMESPACE", "trigger")
	wantMetrics(t, "v1.2.3", `service_name="ingest"`, `service_version="v1.2.3"`, `k8s_pod_name="ingest-7c9"`,
		`k8s_namespace_name="trigger"`, "probe_count_total{", "go_goroutines", "\ngo_gc_heap_live_bytes ")
}

func TestOperatorServiceNameWins(t *testing.T) {
	clearEnv(t)
	t.Setenv("OTEL_SERVICE_NAME", "ingest-canary")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging")
	wantMetrics(t, "v1", `service_name="ingest-canary"`, `deployment_environment_name="staging"`)
}

// wantMetrics sets up telemetry for "ingest" at version, counts one probe and checks that
// /metrics holds every one of want: the resource shows on every series.
func wantMetrics(t *testing.T, version string, want ...string) {
	t.Helper()
	tel, shutdown, err := telemetry.Setup(context.Background(), "ingest", version)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	c, _ := tel.MeterProvider.Meter("t").Int64Counter("probe.count")
	c.Add(context.Background(), 1)
	w := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(w.Body)
	for _, s := range want {
		if !strings.Contains(string(b), s) {
			t.Errorf("metrics lack %s", s)
		}
	}
}

func TestFromContextDefaultsToNop(t *testing.T) {
	if telemetry.Enabled(context.Background()) {
		t.Fatal("enabled without telemetry")
	}
	_, span := telemetry.FromContext(context.Background()).TracerProvider.Tracer("t").Start(context.Background(), "op")
	if span.SpanContext().IsValid() || telemetry.Traceparent(trace.ContextWithSpan(context.Background(), span)) != "" {
		t.Fatal("Nop made a real span")
	}
}

// TestTraceparentIsTheW3CHeader: what is stored on an event is what the propagator would send.
func TestTraceparentIsTheW3CHeader(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	for _, flags := range []trace.TraceFlags{0, trace.FlagsSampled, 0xff} {
		ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags}))
		c := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(ctx, c)
		if got := telemetry.Traceparent(ctx); got != c["traceparent"] {
			t.Errorf("flags %x: %q, the propagator says %q", flags, got, c["traceparent"])
		}
	}
}
