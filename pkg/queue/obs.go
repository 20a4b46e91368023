package queue

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// The event's lifecycle as telemetry: publish, receive and settle spans that join the trace
// the event was published in, and the counts of events ingested, delivered, acknowledged,
// nacked and buried. Counts carry the tenant only when the options say so: tenants are
// unbounded, and so would the series be.

// publishObs is ingest's share: the publish span and the ingested count.
type publishObs struct {
	tracer   trace.Tracer
	ingested metric.Int64Counter
	opts     telemetry.MetricsOptions
}

func newPublishObs(o Options) publishObs {
	m := o.Tel.MeterProvider.Meter(telemetry.ScopeName)
	// Instrument creation fails only on an invalid name; the names here are constants.
	ingested, _ := m.Int64Counter("trigger.events.ingested", metric.WithDescription("events accepted and stored"), metric.WithUnit("{event}"))
	return publishObs{tracer: o.Tel.TracerProvider.Tracer(telemetry.ScopeName), ingested: ingested, opts: o.Metrics}
}

var producer = trace.WithSpanKind(trace.SpanKindProducer)

// publish starts the event's publish span and stamps the event with its context, which the
// stored item keeps so that delivery and acknowledgement join this trace.
func (o publishObs) publish(ctx context.Context, e *events.Event) (context.Context, trace.Span) {
	// Producer: the span that creates the message, which consumers' spans point back to.
	ctx, span := o.tracer.Start(ctx, telemetry.SpanPublish, producer)
	// Set after the start, and only on a span that keeps them: with no exporter no span is
	// recorded, and building them cost every event an allocation. No sampler here reads them.
	if span.IsRecording() {
		span.SetAttributes(telemetry.MessagingAttrs("publish", e.TenantID)...)
		span.SetAttributes(telemetry.MessageID(e.ID), telemetry.AttrEventType.String(e.Type))
	}
	e.Traceparent = telemetry.Traceparent(ctx)
	return ctx, span
}

// published records the outcome of one event's write. A replay names the original event.
func (o publishObs) published(ctx context.Context, span trace.Span, e events.Event, replayed bool, err error) {
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

// inboxObs is the inbox's share: receive and settle spans, and the counts of events delivered,
// acknowledged, nacked and buried.
type inboxObs struct {
	tracer      trace.Tracer
	delivered   metric.Int64Counter
	acked       metric.Int64Counter
	nacked      metric.Int64Counter
	dead        metric.Int64Counter
	givenBack   metric.Int64Counter
	timeInInbox metric.Float64Histogram
	longPoll    metric.Float64Histogram
	wakeups     metric.Int64Counter
	opts        telemetry.MetricsOptions
}

func newInboxObs(o Options) inboxObs {
	m := o.Tel.MeterProvider.Meter(telemetry.ScopeName)
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
	wakeups, _ := m.Int64Counter("trigger.inbox.long_poll.wakeups",
		metric.WithDescription("waiting pulls released, by cause: notification, timer (a known visibility time), backstop (a periodic check found events no notice announced) or chain (the pull before leased a full batch)"),
		metric.WithUnit("{pull}"))
	return inboxObs{
		tracer:      o.Tel.TracerProvider.Tracer(telemetry.ScopeName),
		delivered:   counter("trigger.events.delivered", "events leased to a consumer by a pull"),
		acked:       counter("trigger.events.acknowledged", "events acknowledged"),
		nacked:      counter("trigger.events.nacked", "events handed back by a nack"),
		dead:        counter("trigger.events.dead", "events moved to the dead letters after their last delivery"),
		givenBack:   counter("trigger.events.released", "leases given back because the pull's answer never reached the consumer"),
		timeInInbox: inInbox,
		longPoll:    longPoll,
		wakeups:     wakeups,
		opts:        o.Metrics,
	}
}

// woke counts waiting pulls released, by cause.
func (o inboxObs) woke(cause string, n int) {
	o.wakeups.Add(context.Background(), int64(n), metric.WithAttributes(attribute.String("trigger.cause", cause)))
}

// released counts a lease given back; one that could not be is logged by the caller's span.
func (o inboxObs) released(ctx context.Context, tenantID string, err error) {
	if err == nil {
		o.givenBack.Add(ctx, 1, o.opts.Attrs(tenantID))
	}
}

// receive starts the pull's receive span. Internal: the HTTP server span around it is the
// consumer's call; this one is the broker's work on the batch.
func (o inboxObs) receive(ctx context.Context, tenantID string) (context.Context, trace.Span) {
	return o.tracer.Start(ctx, telemetry.SpanReceive,
		trace.WithAttributes(telemetry.MessagingAttrs("receive", tenantID)...))
}

// received closes the receive span over what the pull leased and buried, linking each event's
// publish context so that a trace viewer can walk from the pull to every event's trace.
func (o inboxObs) received(ctx context.Context, span trace.Span, tenantID string, got events.Leased, err error) {
	defer span.End()
	for _, id := range got.Buried {
		span.AddEvent("event buried", trace.WithAttributes(telemetry.MessageID(id)))
	}
	o.dead.Add(ctx, int64(len(got.Buried)), o.opts.Attrs(tenantID))
	if err != nil {
		span.SetStatus(codes.Error, "lease failed")
		return
	}
	span.SetAttributes(attribute.Int("messaging.batch.message_count", len(got.Events)))
	if len(got.Events) == 1 {
		span.SetAttributes(telemetry.MessageID(got.Events[0].ID), telemetry.AttrEventType.String(got.Events[0].Type))
	}
	for _, e := range got.Events {
		if sc := telemetry.SpanContextOf(e.Traceparent); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{telemetry.MessageID(e.ID)}})
		}
	}
	o.delivered.Add(ctx, int64(len(got.Events)), o.opts.Attrs(tenantID))
}

// settle starts one event's settle span; outcome is ack or nack. When the item names a trace
// context of another trace than the call's (one call settling several events), the span goes
// into that trace and links the call's span instead.
func (o inboxObs) settle(ctx context.Context, tenantID string, r Ref, outcome string) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithAttributes(append(telemetry.MessagingAttrs("settle", tenantID),
		telemetry.MessageID(r.EventID), attribute.String("trigger.settle.outcome", outcome))...)}
	call := trace.SpanContextFromContext(ctx)
	if sc := telemetry.SpanContextOf(r.Traceparent); sc.IsValid() && sc.TraceID() != call.TraceID() {
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
