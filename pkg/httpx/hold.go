package httpx

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// otelhttp ends the server span and records the request metrics when the handler returns. A
// parked request (see Park) is answered later, from another goroutine, so the providers handed
// to otelhttp wrap what they make: once a request is held, what otelhttp records at the
// handler's return is kept back, and its answer records it with the real status, size and
// duration. Every other request passes straight through.

// Keys otelhttp records that only the answer knows.
const (
	keyStatus       = attribute.Key("http.response.status_code")
	keyResponseSize = attribute.Key("http.response.body.size")
)

// Names of otelhttp's server instruments whose value the answer decides.
const (
	instDuration     = "http.server.request.duration"
	instResponseSize = "http.server.response.body.size"
)

type holdTracerProvider struct{ trace.TracerProvider }

func (p holdTracerProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return holdTracer{p.TracerProvider.Tracer(name, opts...)}
}

type holdTracer struct{ trace.Tracer }

func (t holdTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	ctx, span := t.Tracer.Start(ctx, name, opts...)
	hs := &holdSpan{Span: span, start: time.Now()}
	return trace.ContextWithSpan(ctx, hs), hs
}

// holdSpan is a server span that a parked request can hold open past its handler's return.
type holdSpan struct {
	trace.Span
	start time.Time

	mu    sync.Mutex
	held  bool
	ended func()               // told when otelhttp ends the span while held: it has recorded all it will
	attrs []attribute.KeyValue // set on the span while held
	recs  []heldRecord         // recorded while held
}

// heldRecord is one measurement otelhttp made at the handler's return, for the answer to
// make again with the values it knows.
type heldRecord struct {
	name  string
	attrs attribute.Set
	f64   metric.Float64Histogram
	i64   metric.Int64Histogram
	i     int64
}

func (s *holdSpan) hold(ended func()) {
	s.mu.Lock()
	s.held, s.ended = true, ended
	s.mu.Unlock()
}

func (s *holdSpan) isHeld() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

func (s *holdSpan) End(opts ...trace.SpanEndOption) {
	s.mu.Lock()
	held, ended := s.held, s.ended
	s.ended = nil
	s.mu.Unlock()
	if !held {
		s.Span.End(opts...)
		return
	}
	if ended != nil {
		ended()
	}
}

func (s *holdSpan) SetStatus(code codes.Code, desc string) {
	if !s.isHeld() {
		s.Span.SetStatus(code, desc)
	}
}

func (s *holdSpan) SetAttributes(kv ...attribute.KeyValue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held {
		s.attrs = append(s.attrs, kv...)
		return
	}
	s.Span.SetAttributes(kv...)
}

// keep records a measurement made while held; false: not held, record it now.
func (s *holdSpan) keep(r heldRecord) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held {
		s.recs = append(s.recs, r)
	}
	return s.held
}

// finish ends a held span with the answer's status and body size, and makes the held
// measurements with them and the time since the request began.
func (s *holdSpan) finish(ctx context.Context, status int, size int64) {
	s.mu.Lock()
	attrs, recs := s.attrs, s.recs
	s.held, s.attrs, s.recs = false, nil, nil
	s.mu.Unlock()
	answer := func(kv attribute.KeyValue) attribute.KeyValue {
		switch kv.Key {
		case keyStatus:
			return keyStatus.Int(status)
		case keyResponseSize:
			return keyResponseSize.Int64(size)
		}
		return kv
	}
	for i, kv := range attrs {
		attrs[i] = answer(kv)
	}
	if size > 0 {
		attrs = append(attrs, keyResponseSize.Int64(size))
	}
	s.Span.SetAttributes(attrs...)
	if status >= 500 {
		s.Span.SetStatus(codes.Error, "")
	}
	elapsed := time.Since(s.start)
	for _, r := range recs {
		kvs := r.attrs.ToSlice()
		for i, kv := range kvs {
			kvs[i] = answer(kv)
		}
		set := metric.WithAttributeSet(attribute.NewSet(kvs...))
		switch {
		case r.name == instDuration && r.f64 != nil:
			r.f64.Record(ctx, elapsed.Seconds(), set)
		case r.name == instResponseSize && r.i64 != nil:
			r.i64.Record(ctx, size, set)
		case r.i64 != nil:
			r.i64.Record(ctx, r.i, set)
		}
	}
	s.Span.End()
}

func heldSpan(ctx context.Context) *holdSpan {
	hs, _ := trace.SpanFromContext(ctx).(*holdSpan)
	return hs
}

type holdMeterProvider struct{ metric.MeterProvider }

func (p holdMeterProvider) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return holdMeter{p.MeterProvider.Meter(name, opts...)}
}

type holdMeter struct{ metric.Meter }

func (m holdMeter) Float64Histogram(name string, opts ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	h, err := m.Meter.Float64Histogram(name, opts...)
	return holdF64{h, name}, err
}

func (m holdMeter) Int64Histogram(name string, opts ...metric.Int64HistogramOption) (metric.Int64Histogram, error) {
	h, err := m.Meter.Int64Histogram(name, opts...)
	return holdI64{h, name}, err
}

type holdF64 struct {
	metric.Float64Histogram
	name string
}

func (h holdF64) Record(ctx context.Context, v float64, opts ...metric.RecordOption) {
	if hs := heldSpan(ctx); hs != nil && hs.keep(heldRecord{name: h.name, attrs: metric.NewRecordConfig(opts).Attributes(), f64: h.Float64Histogram}) {
		return
	}
	h.Float64Histogram.Record(ctx, v, opts...)
}

type holdI64 struct {
	metric.Int64Histogram
	name string
}

func (h holdI64) Record(ctx context.Context, v int64, opts ...metric.RecordOption) {
	if hs := heldSpan(ctx); hs != nil && hs.keep(heldRecord{name: h.name, attrs: metric.NewRecordConfig(opts).Attributes(), i64: h.Int64Histogram, i: v}) {
		return
	}
	h.Int64Histogram.Record(ctx, v, opts...)
}
