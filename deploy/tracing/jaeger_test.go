package tracing_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/deploy/devstack/stack"
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
	stateDir := t.TempDir()
	st, err := stack.Start(ctx, stack.Options{
		BinDir:           t.TempDir(),
		BuildFlags:       childBuildFlags,
		StateDir:         stateDir,
		GatewayAddr:      "127.0.0.1:0",
		DynamoDBEndpoint: os.Getenv(ddblocal.EndpointEnv),
		TablePrefix:      "trace" + randomHex(t, 4) + "_",
		Tracing:          true,
		Progress:         testLog{t},
	})
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

	traceID, producerSpan := randomHex(t, 16), randomHex(t, 8)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, st.GatewayURL+"/events",
		strings.NewReader(`{"event_type":"order.paid","order_id":"o-42"}`))
	req.Header.Set("Authorization", "Bearer "+st.Keys["acme"])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-"+traceID+"-"+producerSpan+"-01")
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

	// The stack's worker acks the event at once; the spans then reach Jaeger in batches, so
	// the test polls its API until the whole lifecycle is there.
	want := []struct{ service, name string }{
		{stack.Ingest, "POST /events"}, {stack.Ingest, "trigger publish"}, {stack.Ingest, "DynamoDB.PutItem"},
		{stack.Worker, "trigger process"}, {stack.Worker, "trigger settle"}, {stack.Worker, "POST /ack"},
		{stack.Inbox, "POST /ack"}, {stack.Inbox, "trigger settle"}, {stack.Inbox, "DynamoDB.UpdateItem"},
	}
	var tr stack.Trace
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for complete := false; !complete; {
		tr, err = stack.EventTrace(ctx, st.JaegerURL, posted.EventID)
		if err != nil && !errors.Is(err, stack.ErrNoTrace) {
			t.Fatal(err)
		}
		complete = err == nil && slices.IndexFunc(want, func(w struct{ service, name string }) bool {
			_, ok := tr.Find(w.service, w.name)
			return !ok
		}) < 0
		if complete {
			break
		}
		select {
		case <-deadline.C:
			var b bytes.Buffer
			_ = tr.Timeline(&b)
			t.Fatalf("Jaeger never held the whole lifecycle of %s (last error %v); what it had:\n%s", posted.EventID, err, b.String())
		case <-tick.C:
		}
	}

	if tr.ID != traceID {
		t.Errorf("trace id %s, want the producer's %s", tr.ID, traceID)
	}
	if got := tr.Services(); !slices.Equal(got, []string{stack.Inbox, stack.Ingest, stack.Worker}) {
		t.Errorf("services %v, want inbox, ingest and worker", got)
	}
	span := func(service, name string) stack.Span {
		s, _ := tr.Find(service, name)
		return s
	}
	post, publish, process := span(stack.Ingest, "POST /events"), span(stack.Ingest, "trigger publish"), span(stack.Worker, "trigger process")
	wSettle, ackClient, ackServer := span(stack.Worker, "trigger settle"), span(stack.Worker, "POST /ack"), span(stack.Inbox, "POST /ack")
	iSettle, update := span(stack.Inbox, "trigger settle"), span(stack.Inbox, "DynamoDB.UpdateItem")
	for _, c := range []struct {
		child, parent stack.Span
		parentID      string
	}{
		{post, stack.Span{Name: "the producer's span"}, producerSpan},
		{publish, post, post.SpanID},
		{process, publish, publish.SpanID},
		{wSettle, process, process.SpanID},
		{ackClient, wSettle, wSettle.SpanID},
		{ackServer, ackClient, ackClient.SpanID},
		{iSettle, ackServer, ackServer.SpanID},
		{update, iSettle, iSettle.SpanID},
	} {
		if c.child.ParentID != c.parentID {
			t.Errorf("%s %s: parent %s, want %s (%s)", c.child.Service, c.child.Name, c.child.ParentID, c.parentID, c.parent.Name)
		}
	}
	if process.Attrs["messaging.message.id"] != posted.EventID || publish.Attrs["trigger.tenant.id"] != "acme" {
		t.Errorf("lifecycle attributes: process %v, publish %v", process.Attrs, publish.Attrs)
	}
	// The processing span links the worker's pull, which lives in a trace of its own.
	if len(process.Links) != 1 || process.Links[0].TraceID == tr.ID {
		t.Errorf("processing span links %v, want the pull's span in its own trace", process.Links)
	}

	// What `make trace EVENT=...` prints: the same spans, indented under their parents.
	var b bytes.Buffer
	if err := tr.Timeline(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("make trace EVENT=%s:\n%s", posted.EventID, out)
	for _, w := range want {
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
