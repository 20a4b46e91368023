// Package telemetry builds each binary's OpenTelemetry providers from the standard OTEL_*
// variables: traces over OTLP (gRPC or HTTP) when an endpoint is configured, metrics always,
// scraped from a Prometheus registry of the binary's own.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Telemetry is what instrumented code needs: the providers, the propagator and the handler
// that serves the metrics. It is passed down, never read from a global.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
	// Metrics serves the binary's registry: in the OpenMetrics format, with exemplars, to a
	// scraper that asks for it, else in the Prometheus text format.
	Metrics http.Handler
}

// Propagator is W3C trace context plus baggage, the pair every binary speaks.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Setup builds the providers for one binary and returns the shutdown that flushes them. With
// no OTLP endpoint configured, or OTEL_TRACES_EXPORTER=none, spans still get ids (so logs carry
// trace ids) but are neither recorded nor exported. OTEL_SDK_DISABLED=true turns tracing off
// altogether; /metrics is served either way.
func Setup(ctx context.Context, serviceName, version string) (*Telemetry, func(context.Context) error, error) {
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(resourceAttributes(serviceName, version)...),
		// Last, so an operator's OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES wins.
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, nil, fmt.Errorf("telemetry resource: %w", err)
	}
	// The one global: instrumentation that cannot be handed a propagator (the AWS SDK's, say)
	// still speaks the same format.
	otel.SetTextMapPropagator(Propagator())
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		tel, shutdownMetrics, err := build(tracenoop.NewTracerProvider(), res)
		return tel, shutdownMetrics, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	exp, err := newExporter(ctx)
	if err != nil {
		return nil, nil, err
	}
	if exp != nil {
		opts = append(opts, sdktrace.WithBatcher(exp))
	} else {
		// Nothing would read them: spans keep their ids, for the logs and the stored
		// traceparent, but record nothing. The traceparent says "not sampled", so services
		// downstream that do export leave this event's trace out too.
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	tel, shutdownMetrics, err := build(tp, res)
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, nil, err
	}
	shutdown := func(ctx context.Context) error {
		return errors.Join(tp.Shutdown(ctx), shutdownMetrics(ctx))
	}
	return tel, shutdown, nil
}

// New wraps a tracer provider the caller built (a test's span recorder, say) with a fresh
// meter provider and registry.
func New(tp trace.TracerProvider) (*Telemetry, error) {
	tel, _, err := build(tp, resource.Empty())
	return tel, err
}

// Nop records nothing and serves an empty registry: the default where no telemetry is given.
func Nop() *Telemetry {
	return &Telemetry{
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Propagator:     Propagator(),
		Metrics:        promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{}),
	}
}

func build(tp trace.TracerProvider, res *resource.Resource) (*Telemetry, func(context.Context) error, error) {
	// A registry per binary rather than the default one: tests build several in one process,
	// and nothing registered by a dependency leaks onto /metrics.
	reg := prometheus.NewRegistry()
	// go_gc_heap_live_bytes, the heap the last collection kept, is what a pod's memory limit
	// must hold; the memstats gauges beside it include garbage, which under a memory limit and
	// GOGC=400 (pkg/startup) fills the room the limit leaves.
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	// The SDK's default exemplar filter keeps a measurement's trace and span ids when its
	// context holds a sampled span (OTEL_METRICS_EXEMPLAR_FILTER changes that), so a histogram's
	// buckets point at traces of requests and events that landed in them.
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	return &Telemetry{
		TracerProvider: tp,
		MeterProvider:  mp,
		Propagator:     Propagator(),
		Metrics:        metricsHandler(reg),
	}, mp.Shutdown, nil
}

// metricsHandler serves reg. Only the OpenMetrics format carries exemplars; promhttp answers
// in it when the scraper's Accept header asks (Prometheus does), and in the text format
// otherwise, so curl and text parsers see what they always saw. No _created series: they
// would double the counters' series for what the resets already tell.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

func resourceAttributes(serviceName, version string) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("service.name", serviceName),
		attribute.String("service.version", version),
	}
	// Set by the chart through the downward API.
	if v := os.Getenv("POD_NAME"); v != "" {
		attrs = append(attrs, attribute.String("k8s.pod.name", v))
	}
	if v := os.Getenv("POD_NAMESPACE"); v != "" {
		attrs = append(attrs, attribute.String("k8s.namespace.name", v))
	}
	return attrs
}

// newExporter picks the OTLP transport from the standard variables; the exporters read the
// endpoint, headers, timeout and TLS settings themselves. nil means export nothing.
func newExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	if os.Getenv("OTEL_TRACES_EXPORTER") == "none" {
		return nil, nil
	}
	endpoint := firstEnv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
	if endpoint == "" {
		return nil, nil
	}
	// The exporters would otherwise take a bare host:port silently and fail at the first export.
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("OTLP endpoint %q must be an http:// or https:// URL", endpoint)
	}
	switch proto := firstEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"); proto {
	case "grpc":
		return otlptracegrpc.New(ctx)
	case "", "http/protobuf": // the specification's default
		return otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("OTLP protocol %q is not supported; use grpc or http/protobuf", proto)
	}
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

type ctxKey struct{}

// NewContext carries tel to code started from ctx, so start-up shared by every binary can hand
// it down without changing each binary's run signature.
func NewContext(ctx context.Context, tel *Telemetry) context.Context {
	return context.WithValue(ctx, ctxKey{}, tel)
}

// FromContext returns the telemetry NewContext stored, or Nop.
func FromContext(ctx context.Context) *Telemetry {
	if tel, ok := ctx.Value(ctxKey{}).(*Telemetry); ok && tel != nil {
		return tel
	}
	return Nop()
}

// Enabled reports whether ctx carries real telemetry rather than Nop.
func Enabled(ctx context.Context) bool {
	tel, ok := ctx.Value(ctxKey{}).(*Telemetry)
	return ok && tel != nil
}
