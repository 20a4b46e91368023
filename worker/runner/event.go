package runner

import (
	"context"
	"encoding/json"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// Event is one leased event as a processor sees it. The payload is the producer's JSON, kept
// raw; the worker never logs it.
type Event struct {
	TenantID      string
	ID            string
	Type          string
	Payload       json.RawMessage
	Timestamp     time.Time
	ReceivedAt    time.Time
	DeliveryCount int
}

func toEvent(tenantID string, e api.Event) Event {
	return Event{
		TenantID:      tenantID,
		ID:            e.EventID,
		Type:          e.EventType,
		Payload:       e.Payload,
		Timestamp:     fromMillis(e.Timestamp),
		ReceivedAt:    fromMillis(e.ReceivedAt),
		DeliveryCount: e.DeliveryCount,
	}
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// traced returns r carrying the context of the span in ctx, if that span is sampled: an
// unsampled one leaves no trace to join. Sent with acks and nacks, it lets the inbox settle
// the event inside the event's own trace even when the call carries several events.
func traced(ctx context.Context, r api.LeaseRef) api.LeaseRef {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return r
	}
	if tp := telemetry.Traceparent(ctx); tp != "" {
		r.TraceContext = &api.TraceContext{Traceparent: tp}
	}
	return r
}

func spanContextOf(r api.LeaseRef) trace.SpanContext { return telemetry.SpanContextOf(r.Traceparent()) }
