package inboxapi

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

// obs is the inbox's share of the event lifecycle: receive and settle spans, and the counts
// of events delivered, acknowledged, nacked and buried. They carry the tenant only when opts
// say so: tenants are unbounded, and so would the series be.
type obs struct {
	tracer      trace.Tracer
	delivered   metric.Int64Counter
	acked       metric.Int64Counter
	nacked      metric.Int64Counter
	dead        metric.Int64Counter
	timeInInbox metric.Float64Histogram
	longPoll    metric.Float64Histogram
	opts        telemetry.MetricsOptions
}

func newObs(tel *telemetry.Telemetry, auth *tenant.Authenticator, opts telemetry.MetricsOptions) obs {
	m := tel.MeterProvider.Meter(telemetry.ScopeName)
	// Instrument creation fails only on an invalid name; the names here are constants.
	counter := func(name, desc string) metric.Int64Counter {
		c, _ := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{event}"))
		return c
	}
	inInbox, _ := m.Float64Histogram("trigger.events.time_in_inbox",
		metric.WithDescription("from an event's receipt to its acknowledgement"), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400))
	longPoll, _ := m.Float64Histogram("trigger.inbox.long_poll.duration",
		metric.WithDescription("how long pulls with wait_seconds waited before answering"), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 20))
	if auth != nil {
		_ = telemetry.ObserveKeyCache(tel.MeterProvider, func() (uint64, uint64) {
			s := auth.Stats()
			return s.Hits, s.Misses
		})
	}
	return obs{
		tracer:      tel.TracerProvider.Tracer(telemetry.ScopeName),
		delivered:   counter("trigger.events.delivered", "events leased to a consumer by a pull"),
		acked:       counter("trigger.events.acknowledged", "events acknowledged"),
		nacked:      counter("trigger.events.nacked", "events handed back by a nack"),
		dead:        counter("trigger.events.dead", "events moved to the dead letters after their last delivery"),
		timeInInbox: inInbox,
		longPoll:    longPoll,
		opts:        opts,
	}
}

// receive starts the pull's receive span. Internal: the HTTP server span around it is the
// consumer's call; this one is the broker's work on the batch.
func (o obs) receive(ctx context.Context, tenantID string) (context.Context, trace.Span) {
	return o.tracer.Start(ctx, telemetry.SpanReceive,
		trace.WithAttributes(telemetry.MessagingAttrs("receive", tenantID)...))
}

// received closes the receive span over what the pull leased, linking each event's publish
// context so that a trace viewer can walk from the pull to every event's trace.
func (o obs) received(ctx context.Context, span trace.Span, tenantID string, got []events.Event, err error) {
	defer span.End()
	if err != nil {
		span.SetStatus(codes.Error, "lease failed")
		return
	}
	span.SetAttributes(attribute.Int("messaging.batch.message_count", len(got)))
	if len(got) == 1 {
		span.SetAttributes(telemetry.MessageID(got[0].ID), telemetry.AttrEventType.String(got[0].Type))
	}
	for _, e := range got {
		if sc := telemetry.SpanContextOf(e.Traceparent); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{telemetry.MessageID(e.ID)}})
		}
	}
	o.delivered.Add(ctx, int64(len(got)), o.opts.Attrs(tenantID))
}

// buried counts an event a pull moved to the dead letters.
func (o obs) buried(ctx context.Context, tenantID, eventID string) {
	trace.SpanFromContext(ctx).AddEvent("event buried", trace.WithAttributes(telemetry.MessageID(eventID)))
	o.dead.Add(ctx, 1, o.opts.Attrs(tenantID))
}

// settle starts one event's settle span; outcome is ack or nack. When the item names a trace
// context of another trace than the call's (one call settling several events), the span goes
// into that trace and links the call's span instead.
func (o obs) settle(ctx context.Context, tenantID string, r leaseRef, outcome string) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithAttributes(append(telemetry.MessagingAttrs("settle", tenantID),
		telemetry.MessageID(r.EventID), attribute.String("trigger.settle.outcome", outcome))...)}
	call := trace.SpanContextFromContext(ctx)
	if sc := telemetry.SpanContextOf(r.traceparent()); sc.IsValid() && sc.TraceID() != call.TraceID() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		if call.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: call}))
		}
	}
	return o.tracer.Start(ctx, telemetry.SpanSettle, opts...)
}

func endSettle(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "settle failed")
	}
	span.End()
}
