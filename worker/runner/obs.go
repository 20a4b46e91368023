package runner

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// Worker-side span names. Receive and settle are the consumer's calls (kind client); process
// is the work on one event, a child of the span that published it.
const (
	spanReceive = "trigger receive"
	spanProcess = "trigger process"
	spanSettle  = "trigger settle"
)

// obs is one consumer's share of the event lifecycle: its spans and its counts. The counts
// carry the tenant only when opts say so: tenants are unbounded, and so would the series be.
type obs struct {
	tracer    trace.Tracer
	processed metric.Int64Counter
	duration  metric.Float64Histogram
	settled   metric.Int64Counter
	opts      telemetry.MetricsOptions
	tenant    string
}

func newObs(tel *telemetry.Telemetry, opts telemetry.MetricsOptions, tenantID string) obs {
	m := tel.MeterProvider.Meter(telemetry.ScopeName)
	// Instrument creation fails only on an invalid name; the names here are constants.
	processed, _ := m.Int64Counter("trigger.worker.events.processed", metric.WithUnit("{event}"),
		metric.WithDescription("events the processor finished, by outcome: ok or failed"))
	duration, _ := m.Float64Histogram("trigger.worker.process.duration", metric.WithUnit("s"),
		metric.WithDescription("how long the processor took per event"),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
	settled, _ := m.Int64Counter("trigger.worker.events.settled", metric.WithUnit("{event}"),
		metric.WithDescription("ack and nack outcomes per event, by operation and outcome: ok, lease_lost, not_found, failed"))
	return obs{tracer: tel.TracerProvider.Tracer(telemetry.ScopeName), processed: processed, duration: duration, settled: settled,
		opts: opts, tenant: tenantID}
}

// countProcessed records one finished processing.
func (o obs) countProcessed(ctx context.Context, took time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	o.processed.Add(ctx, 1, o.opts.Attrs(o.tenant, attribute.String("outcome", outcome)))
	o.duration.Record(ctx, took.Seconds(), o.opts.Attrs(o.tenant))
}

// countSettled records the outcome of each item of an ack or nack call; err is the call's own.
func (o obs) countSettled(ctx context.Context, op string, results []api.SettleResult, items int, err error) {
	if err != nil {
		o.settled.Add(ctx, int64(items), o.opts.Attrs(o.tenant, attribute.String("operation", op), attribute.String("outcome", "failed")))
		return
	}
	for _, r := range results {
		outcome := "ok"
		if r.Error != nil {
			switch r.Error.Code {
			case api.CodeLeaseLost, api.CodeNotFound:
				outcome = r.Error.Code
			default:
				outcome = "failed"
			}
		}
		o.settled.Add(ctx, 1, o.opts.Attrs(o.tenant, attribute.String("operation", op), attribute.String("outcome", outcome)))
	}
}

// tracedClient returns c with its transport wrapped in otelhttp client spans that send the
// caller's context on: a copy, so an injected client is not changed under its owner.
func tracedClient(c *http.Client, tel *telemetry.Telemetry) *http.Client {
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out := *c
	out.Transport = otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(tel.TracerProvider),
		otelhttp.WithMeterProvider(tel.MeterProvider),
		otelhttp.WithPropagators(tel.Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	)
	return &out
}

// receive starts the span of one pull; every event it leases links back to it.
func (o obs) receive(ctx context.Context, tenantID string, max int) (context.Context, trace.Span) {
	return o.tracer.Start(ctx, spanReceive, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(telemetry.MessagingAttrs("receive", tenantID), attribute.Int("trigger.pull.max_events", max))...))
}

func (o obs) received(span trace.Span, got int, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "pull failed")
	}
	span.SetAttributes(attribute.Int("messaging.batch.message_count", got))
	span.End()
}

// process starts the span of one event's processing: a child of the event's publish span
// when the event carries one, so the event's whole life is one trace, and linked to the pull
// that leased it.
func (o obs) process(ctx context.Context, tenantID string, ev Event, traceparent string, pull trace.SpanContext) (context.Context, trace.Span) {
	if sc := telemetry.SpanContextOf(traceparent); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(append(telemetry.MessagingAttrs("process", tenantID),
			telemetry.MessageID(ev.ID), telemetry.AttrEventType.String(ev.Type),
			attribute.Int("messaging.message.delivery_count", ev.DeliveryCount))...),
	}
	if pull.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: pull}))
	}
	return o.tracer.Start(ctx, spanProcess, opts...)
}

func processed(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "processing failed")
	}
	span.End()
}

// settle starts the span of one ack or nack call. A call for one event continues that event's
// trace; a batch starts its own and links every event's processing span. Either way each
// item carries its own context, so the inbox settles every event inside its own trace.
func (o obs) settle(ctx context.Context, tenantID, outcome string, refs []api.LeaseRef) (context.Context, trace.Span) {
	attrs := append(telemetry.MessagingAttrs("settle", tenantID),
		attribute.String("trigger.settle.outcome", outcome), attribute.Int("messaging.batch.message_count", len(refs)))
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
	if len(refs) == 1 {
		attrs = append(attrs, telemetry.MessageID(refs[0].EventID))
		if sc := spanContextOf(refs[0]); sc.IsValid() {
			ctx = trace.ContextWithSpanContext(ctx, sc)
		}
	} else {
		opts = append(opts, trace.WithNewRoot())
		for _, r := range refs {
			if sc := spanContextOf(r); sc.IsValid() {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{telemetry.MessageID(r.EventID)}}))
			}
		}
	}
	return o.tracer.Start(ctx, spanSettle, append(opts, trace.WithAttributes(attrs...))...)
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
