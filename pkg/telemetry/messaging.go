package telemetry

import (
	"context"
	"encoding/hex"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName names the tracer and meter of the event lifecycle.
const ScopeName = "github.com/trigger-api/trigger-api"

// Span names and attributes of the event lifecycle, after the messaging semantic conventions:
// the system is the inbox itself, the message id is the event id.
const (
	SpanPublish = "trigger publish"
	SpanReceive = "trigger receive"
	SpanSettle  = "trigger settle"

	AttrTenantID  = attribute.Key("trigger.tenant.id")
	AttrEventType = attribute.Key("trigger.event.type")
)

// MessagingAttrs are the attributes every lifecycle span carries.
func MessagingAttrs(operation, tenantID string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.system", "trigger"),
		attribute.String("messaging.operation.type", operation),
		attribute.String("messaging.operation.name", operation),
		AttrTenantID.String(tenantID),
	}
}

// MessageID is messaging.message.id.
func MessageID(id string) attribute.KeyValue { return attribute.String("messaging.message.id", id) }

// Traceparent renders sc as a W3C traceparent header value; "" when sc is not valid (tracing
// off), so nothing meaningless is stored. Written out here rather than through a propagator
// and a map carrier, which cost a map and several strings for every event stored.
func Traceparent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	// Version 00, trace id, span id and the flags that version defines, as TraceContext writes them.
	var b [2 + 1 + 32 + 1 + 16 + 1 + 2]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:], []byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))})
	return string(b[:])
}

// SpanContextOf parses a stored traceparent; the zero span context when it is absent or bad.
func SpanContextOf(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	return trace.SpanContextFromContext(ctx)
}

// ObserveKeyCache reports the key cache's hits and misses as two cumulative counters.
func ObserveKeyCache(mp metric.MeterProvider, stats func() (hits, misses uint64)) error {
	m := mp.Meter(ScopeName)
	hits, err := m.Int64ObservableCounter("trigger.auth.key_cache.hits", metric.WithDescription("API key lookups answered from the cache"))
	if err != nil {
		return err
	}
	misses, err := m.Int64ObservableCounter("trigger.auth.key_cache.misses", metric.WithDescription("API key lookups that read the database"))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		h, mi := stats()
		o.ObserveInt64(hits, int64(h))
		o.ObserveInt64(misses, int64(mi))
		return nil
	}, hits, misses)
	return err
}
