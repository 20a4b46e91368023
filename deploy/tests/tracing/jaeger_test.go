package tracing_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
)

// TestLifecycleTraceReachesJaeger runs the real binaries exporting to a real Jaeger, as
// `TRACING=jaeger make run` does: an event posted with a producer's traceparent, consumed by
// the stack's worker, must appear in Jaeger's API as one trace under the producer's trace id,
// with spans from ingest, the worker and inbox correctly parented. A missing Jaeger binary
// fails the test (make jaeger builds it); nothing is skipped.
func TestLifecycleTraceReachesJaeger(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st := startTracingStack(ctx, t, "trace")
	traceID, producerSpan := randomHex(t, 16), randomHex(t, 8)
	eventID := postWithTraceparent(ctx, t, st, "00-"+traceID+"-"+producerSpan+"-01")
	tr, ack := waitForLifecycle(ctx, t, st, eventID)

	t.Run("one-trace-under-the-producers-id", func(t *testing.T) {
		if tr.ID != traceID {
			t.Errorf("trace id %s, want the producer's %s", tr.ID, traceID)
		}
		if got := tr.Services(); !slices.Equal(got, []string{stack.Inbox, stack.Ingest, stack.Worker}) {
			t.Errorf("services %v, want inbox, ingest and worker", got)
		}
	})
	t.Run("spans-under-their-parents", func(t *testing.T) { spansUnderTheirParents(t, tr, ack, producerSpan, eventID) })
	t.Run("timeline-shows-the-lifecycle-and-no-secret", func(t *testing.T) { timelineShowsNoSecret(t, tr, st, eventID) })
}

// startTracingStack starts the real binaries exporting to a Jaeger of their own, under tables
// named from prefix; more adds options (Prometheus) before the start.
func startTracingStack(ctx context.Context, t *testing.T, prefix string, more ...func(*stack.Options)) *stack.Stack {
	t.Helper()
	stateDir := t.TempDir()
	o := stack.Options{
		BinDir:           t.TempDir(),
		BuildFlags:       childBuildFlags,
		StateDir:         stateDir,
		GatewayAddr:      "127.0.0.1:0",
		DynamoDBEndpoint: os.Getenv(ddblocal.EndpointEnv),
		TablePrefix:      prefix + randomHex(t, 4) + "_",
		Tracing:          true,
		Progress:         testLog{t},
	}
	for _, f := range more {
		f(&o)
	}
	st, err := stack.Start(ctx, o)
	if err != nil {
		t.Fatalf("start the stack: %v\n%s", err, stack.LogTails(stateDir, 30))
	}
	t.Cleanup(func() {
		if err := st.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() {
			t.Log(stack.LogTails(stateDir, 30))
		}
	})
	return st
}

// postWithTraceparent posts acme's event under the producer's traceparent, set by hand so that
// the trace id is one the test chose, and returns the event's id.
func postWithTraceparent(ctx context.Context, t *testing.T, st *stack.Stack, traceparent string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, st.GatewayURL+"/events",
		strings.NewReader(`{"event_type":"order.paid","order_id":"o-42"}`))
	req.Header.Set("Authorization", "Bearer "+st.Keys["acme"])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", traceparent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var posted struct {
		EventID string `json:"event_id"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(body, &posted) != nil || posted.EventID == "" {
		t.Fatalf("POST /events: %d %s", resp.StatusCode, body)
	}
	return posted.EventID
}

// lifecycleSpans are the spans of the event's lifecycle, down to the inbox's write for the ack.
var lifecycleSpans = []struct{ service, name string }{
	{stack.Ingest, "POST /events"}, {stack.Ingest, "trigger publish"}, {stack.Ingest, "DynamoDB.PutItem"},
	{stack.Worker, "trigger process"}, {stack.Worker, "trigger settle"}, {stack.Worker, "POST /ack"},
	{stack.Inbox, "POST /ack"}, {stack.Inbox, "trigger settle"}, {stack.Inbox, "DynamoDB.UpdateItem"},
}

// waitForLifecycle returns the event's trace once Jaeger holds its whole lifecycle. The stack's
// worker acks the event at once, but the spans reach Jaeger in batches, so this polls Jaeger's
// API until every lifecycle span is there and the ack attempt that succeeded (a loaded machine
// may have the worker retry the ack) is chained down to the inbox's write.
func waitForLifecycle(ctx context.Context, t *testing.T, st *stack.Stack, eventID string) (stack.Trace, ackChain) {
	t.Helper()
	var (
		tr  stack.Trace
		ack ackChain
		err error
	)
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		tr, err = stack.EventTrace(ctx, st.JaegerURL, eventID)
		if err != nil && !errors.Is(err, stack.ErrNoTrace) {
			t.Fatal(err)
		}
		if err == nil {
			if i := slices.IndexFunc(lifecycleSpans, func(w struct{ service, name string }) bool {
				_, ok := tr.Find(w.service, w.name)
				return !ok
			}); i >= 0 {
				err = fmt.Errorf("no %s span %q", lifecycleSpans[i].service, lifecycleSpans[i].name)
			}
		}
		if err == nil {
			if ack, err = successfulAck(tr); err == nil {
				return tr, ack
			}
		}
		select {
		case <-deadline.C:
			var b bytes.Buffer
			_ = tr.Timeline(&b)
			t.Fatalf("Jaeger never held the whole lifecycle of %s (last error %v); what it had:\n%s", eventID, err, b.String())
		case <-tick.C:
		}
	}
}

// spansUnderTheirParents checks the lifecycle's spans are each under the right parent, from the
// producer's span down, its attributes, and the processing span's link.
func spansUnderTheirParents(t *testing.T, tr stack.Trace, ack ackChain, producerSpan, eventID string) {
	span := func(service, name string) stack.Span {
		s, _ := tr.Find(service, name)
		return s
	}
	post, publish, process := span(stack.Ingest, "POST /events"), span(stack.Ingest, "trigger publish"), span(stack.Worker, "trigger process")
	for _, c := range []struct {
		child, parent stack.Span
		parentID      string
	}{
		{post, stack.Span{Name: "the producer's span"}, producerSpan},
		{publish, post, post.SpanID},
		{process, publish, publish.SpanID},
	} {
		if c.child.ParentID != c.parentID {
			t.Errorf("%s %s: parent %s, want %s (%s)", c.child.Service, c.child.Name, c.child.ParentID, c.parentID, c.parent.Name)
		}
	}
	// successfulAck has chained the ack from the worker's settle span down to the inbox's
	// write. Every ack attempt, that one too, continues the event's processing, and every ack
	// call belongs to an attempt; the worker stops at the first success, so the others failed.
	attempts := map[string]bool{}
	for _, s := range tr.Spans {
		if s.Service != stack.Worker || s.Name != "trigger settle" {
			continue
		}
		attempts[s.SpanID] = true
		if s.ParentID != process.SpanID {
			t.Errorf("worker settle span %s: parent %s, want the processing span %s", s.SpanID, s.ParentID, process.SpanID)
		}
		if !s.Error && s.SpanID != ack.settle.SpanID {
			t.Errorf("worker settle spans %s and %s both succeeded: the event was acknowledged twice", ack.settle.SpanID, s.SpanID)
		}
	}
	for _, s := range tr.Spans {
		if s.Service == stack.Worker && s.Name == "POST /ack" && !attempts[s.ParentID] {
			t.Errorf("worker POST /ack span %s: parent %s is none of the settle attempts", s.SpanID, s.ParentID)
		}
	}
	if process.Attrs["messaging.message.id"] != eventID || publish.Attrs["trigger.tenant.id"] != "acme" {
		t.Errorf("lifecycle attributes: process %v, publish %v", process.Attrs, publish.Attrs)
	}
	// The processing span links the worker's pull, which lives in a trace of its own.
	if len(process.Links) != 1 || process.Links[0].TraceID == tr.ID {
		t.Errorf("processing span links %v, want the pull's span in its own trace", process.Links)
	}
}

// timelineShowsNoSecret checks what `make trace EVENT=...` prints: the same spans, indented
// under their parents, and neither a credential nor the payload.
func timelineShowsNoSecret(t *testing.T, tr stack.Trace, st *stack.Stack, eventID string) {
	var b bytes.Buffer
	if err := tr.Timeline(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("make trace EVENT=%s:\n%s", eventID, out)
	for _, w := range lifecycleSpans {
		if !strings.Contains(out, w.name) {
			t.Errorf("timeline lacks %s", w.name)
		}
	}
	for _, secret := range []string{st.Keys["acme"], st.AdminToken, "o-42"} {
		if strings.Contains(out, secret) || strings.Contains(strings.Join(attrValues(tr), " "), secret) {
			t.Errorf("the trace holds a secret or the payload: %.12s…", secret)
		}
	}
}

// ackChain is the worker's successful ack attempt and the inbox's work for it.
type ackChain struct{ settle, client, server, inboxSettle, update stack.Span }

// successfulAck finds, among the worker's ack attempts, the one that succeeded, its call the
// inbox answered 200, and under that call the inbox's settle span, which succeeded, and its
// write; each span the child of the one before.
func successfulAck(tr stack.Trace) (ackChain, error) {
	child := func(parent stack.Span, service, name string, ok func(stack.Span) bool) (stack.Span, error) {
		for _, s := range tr.Spans {
			if s.Service == service && s.Name == name && s.ParentID == parent.SpanID && ok(s) {
				return s, nil
			}
		}
		return stack.Span{}, fmt.Errorf("no %s span %q under %s %q %s", service, name, parent.Service, parent.Name, parent.SpanID)
	}
	succeeded := func(s stack.Span) bool { return !s.Error }
	answered := func(s stack.Span) bool { return s.Attrs["http.response.status_code"] == "200" }
	anyOne := func(stack.Span) bool { return true }
	err := errors.New("no successful worker settle span")
	for _, s := range tr.Spans {
		if s.Service != stack.Worker || s.Name != "trigger settle" || s.Error {
			continue
		}
		c := ackChain{settle: s}
		if c.client, err = child(c.settle, stack.Worker, "POST /ack", answered); err != nil {
			continue
		}
		if c.server, err = child(c.client, stack.Inbox, "POST /ack", anyOne); err != nil {
			continue
		}
		if c.inboxSettle, err = child(c.server, stack.Inbox, "trigger settle", succeeded); err != nil {
			continue
		}
		if c.update, err = child(c.inboxSettle, stack.Inbox, "DynamoDB.UpdateItem", anyOne); err != nil {
			continue
		}
		return c, nil
	}
	return ackChain{}, err
}

func attrValues(tr stack.Trace) []string {
	var out []string
	for _, s := range tr.Spans {
		for k, v := range s.Attrs {
			out = append(out, k+"="+v)
		}
	}
	return out
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testLog sends the stack's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
