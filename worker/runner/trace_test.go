package runner_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/worker/runner"
)

// TestRunProcessesEachEventInItsOwnTrace checks the worker's share of the lifecycle trace:
// each processing span is a child of the event's publish span and links the pull that leased
// it; a settle call for one event continues that event's trace; a batch call links every
// event and names each one's processing span on its item, so the inbox can settle each event
// inside its own trace.
func TestRunProcessesEachEventInItsOwnTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tel, err := telemetry.New(tp)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.tel = tel
	acme := h.fake.tenant(t, "acme", 4)
	// Events 00–02 were published with tracing on; 03 without.
	publish := map[string]trace.SpanContext{}
	producer := tp.Tracer("producer")
	for _, id := range ids("acme", 0, 3) {
		ctx, span := producer.Start(context.Background(), "producer publish")
		span.End()
		publish[id] = span.SpanContext()
		h.fake.events[id].traceparent = telemetry.Traceparent(ctx)
	}
	h.start(t, []string{acme}, runner.WithProcessor(func(_ context.Context, ev runner.Event) error {
		if ev.ID == "evt_acme_01" {
			return errors.New("downstream said no")
		}
		return nil
	}))
	receive(t, h.idle, "consumer idle")
	h.stop(t)

	byName := map[string][]sdktrace.ReadOnlySpan{}
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = append(byName[s.Name()], s)
		byID[s.SpanContext().SpanID()] = s
	}
	attr := func(s sdktrace.ReadOnlySpan, key string) string {
		for _, a := range s.Attributes() {
			if string(a.Key) == key {
				return a.Value.Emit()
			}
		}
		return ""
	}

	// No span holds the key or a payload: attributes, events and status alike.
	for _, sp := range rec.Ended() {
		text := fmt.Sprint(sp.Name(), sp.Attributes(), sp.Events(), sp.Status(), sp.Links())
		if strings.Contains(text, acme) || strings.Contains(text, "PAYLOAD-") {
			t.Errorf("span %q holds the API key or a payload", sp.Name())
		}
	}
	h.assertNoSecrets(t, []string{acme})

	// Every pull's span is the parent of its HTTP client span.
	receives := byName["trigger receive"]
	if len(receives) == 0 {
		t.Fatal("no receive spans")
	}
	for _, s := range byName["POST /inbox/pull"] {
		if p, ok := byID[s.Parent().SpanID()]; !ok || p.Name() != "trigger receive" || s.SpanKind() != trace.SpanKindClient {
			t.Errorf("pull client span %v is not under a receive span", s.SpanContext().SpanID())
		}
	}

	process := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range byName["trigger process"] {
		process[attr(s, "messaging.message.id")] = s
	}
	if len(process) != 4 {
		t.Fatalf("processing spans for %d events, want 4", len(process))
	}
	for id, s := range process {
		if pub, ok := publish[id]; ok {
			if s.Parent().SpanID() != pub.SpanID() || s.SpanContext().TraceID() != pub.TraceID() {
				t.Errorf("%s: processing span is not a child of its publish span", id)
			}
		} else if s.Parent().IsValid() {
			t.Errorf("%s: published untraced, yet its processing span has parent %v", id, s.Parent())
		}
		if len(s.Links()) != 1 || byID[s.Links()[0].SpanContext.SpanID()] == nil ||
			byID[s.Links()[0].SpanContext.SpanID()].Name() != "trigger receive" {
			t.Errorf("%s: processing span links %v, want the pull's receive span", id, s.Links())
		}
		if s.SpanKind() != trace.SpanKindConsumer || attr(s, "trigger.tenant.id") != "acme" || attr(s, "trigger.event.type") != "type.acme" ||
			attr(s, "messaging.operation.type") != "process" {
			t.Errorf("%s: processing span kind %v attributes %v", id, s.SpanKind(), s.Attributes())
		}
	}
	if st := process["evt_acme_01"].Status(); st.Code.String() != "Error" {
		t.Errorf("the failed event's processing span has status %v", st)
	}

	// The nack of the failed event continues its trace: settle span, then the HTTP call.
	nacks := h.fake.callsTo("/nack")
	if len(nacks) != 1 || len(nacks[0].leases) != 1 {
		t.Fatalf("nack calls %+v", nacks)
	}
	failed := process["evt_acme_01"].SpanContext()
	if tc := nacks[0].leases[0].TraceContext; tc == nil || telemetry.SpanContextOf(tc.Traceparent).SpanID() != failed.SpanID() {
		t.Errorf("nack item trace_context %+v, want the processing span %v", tc, failed.SpanID())
	}
	if sc := telemetry.SpanContextOf(nacks[0].traceparent); sc.TraceID() != publish["evt_acme_01"].TraceID() {
		t.Errorf("nack call sent traceparent %q, outside the event's trace", nacks[0].traceparent)
	}

	// The three acks go in one call: its settle span is a root linking each processing span,
	// and each item names its own.
	acks := h.fake.callsTo("/ack")
	if len(acks) != 1 || len(acks[0].leases) != 3 {
		t.Fatalf("ack calls %+v, want one with three leases", acks)
	}
	for _, l := range acks[0].leases {
		want := process[l.EventID].SpanContext()
		if l.TraceContext == nil || !telemetry.SpanContextOf(l.TraceContext.Traceparent).Equal(want.WithRemote(true)) {
			t.Errorf("ack item %s trace_context %+v, want processing span %v", l.EventID, l.TraceContext, want.SpanID())
		}
	}
	var batch sdktrace.ReadOnlySpan
	for _, s := range byName["trigger settle"] {
		if attr(s, "trigger.settle.outcome") == "ack" {
			batch = s
		}
	}
	if batch == nil || batch.Parent().IsValid() || len(batch.Links()) != 3 || attr(batch, "messaging.batch.message_count") != "3" {
		t.Fatalf("ack settle span %+v, want a root linking three processing spans", batch)
	}
	if sc := telemetry.SpanContextOf(acks[0].traceparent); sc.TraceID() != batch.SpanContext().TraceID() {
		t.Errorf("ack call sent traceparent %q, not the settle span's trace", acks[0].traceparent)
	}
}

// TestRunSettlesWithAnInboxThatRefusesItemContexts: an inbox from before per-item trace
// contexts refuses them with 400. The worker sends the call again without them, once, and
// leaves them out from then on: every event is still settled exactly once.
func TestRunSettlesWithAnInboxThatRefusesItemContexts(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	tel, err := telemetry.New(tp)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.tel = tel
	// One event at a time, the first one failing: its nack is the first settle call, so the
	// refusal comes before any other call is sent.
	h.cfg.BatchSize, h.cfg.Concurrency = 1, 1
	h.fake.refuseItemContexts = true
	acme := h.fake.tenant(t, "acme", 4)
	producer := tp.Tracer("producer")
	for _, id := range ids("acme", 0, 4) {
		ctx, span := producer.Start(context.Background(), "producer publish")
		span.End()
		h.fake.events[id].traceparent = telemetry.Traceparent(ctx)
	}
	h.start(t, []string{acme}, runner.WithProcessor(func(_ context.Context, ev runner.Event) error {
		if ev.ID == "evt_acme_00" {
			return errors.New("downstream said no")
		}
		return nil
	}))
	h.fake.waitFor(t, "three acks and a nack", func(f *fakeInbox) bool {
		return f.countState("acme", "acked") == 3 && f.countState("acme", "delayed") == 1
	})
	h.stop(t)
	checkSettledOnce(t, h.fake, ids("acme", 1, 4))

	// The fake refuses every call that carries contexts, so one refusal means they were sent
	// once and never again.
	var refused, plain int
	for _, path := range []string{"/ack", "/nack"} {
		for _, c := range h.fake.callsTo(path) {
			if c.refused {
				refused++
			} else {
				plain++
			}
		}
	}
	if refused != 1 || plain != 4 {
		t.Errorf("%d refused and %d plain settle calls, want 1 and 4", refused, plain)
	}
}
