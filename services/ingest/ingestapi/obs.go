package ingestapi

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// obs is the ingest's share of the event lifecycle: the publish span and the ingested count.
type obs struct {
	tracer   trace.Tracer
	ingested metric.Int64Counter
	opts     telemetry.MetricsOptions
}

func newObs(tel *telemetry.Telemetry, auth *tenant.Authenticator, opts telemetry.MetricsOptions) obs {
	m := tel.MeterProvider.Meter(telemetry.ScopeName)
	// Instrument creation fails only on an invalid name; the names here are constants.
	ingested, _ := m.Int64Counter("trigger.events.ingested", metric.WithDescription("events accepted and stored"), metric.WithUnit("{event}"))
	if auth != nil {
		_ = telemetry.ObserveKeyCache(tel.MeterProvider, func() (uint64, uint64) {
			s := auth.Stats()
			return s.Hits, s.Misses
		})
	}
	return obs{tracer: tel.TracerProvider.Tracer(telemetry.ScopeName), ingested: ingested, opts: opts}
}

// publish starts the event's publish span and stamps the event with its context, which the
// stored item keeps so that delivery and acknowledgement join this trace.
func (o obs) publish(ctx context.Context, e *events.Event) (context.Context, trace.Span) {
	ctx, span := o.tracer.Start(ctx, telemetry.SpanPublish,
		// Producer: the span that creates the message, which consumers' spans point back to.
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(append(telemetry.MessagingAttrs("publish", e.TenantID),
			telemetry.MessageID(e.ID), telemetry.AttrEventType.String(e.Type))...))
	e.Traceparent = telemetry.Traceparent(ctx)
	return ctx, span
}

// published records the outcome of one event's write. A replay names the original event.
func (o obs) published(ctx context.Context, span trace.Span, e events.Event, replayed bool, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "store write failed")
		return
	}
	if replayed {
		span.SetAttributes(telemetry.MessageID(e.ID), attribute.Bool("trigger.idempotent_replay", true))
		return
	}
	o.ingested.Add(ctx, 1, o.opts.Attrs(e.TenantID))
}
