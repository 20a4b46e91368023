package runner_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/worker/runner"
)

// TestRunServesMetricsThatCountEachOutcome: with TRIGGER_METRICS_ADDR set, the worker serves
// /metrics and /livez, and after four events (one failing) its counters say exactly that.
func TestRunServesMetricsThatCountEachOutcome(t *testing.T) {
	tel, err := telemetry.New(sdktrace.NewTracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.tel = tel
	h.cfg.MetricsAddr = "127.0.0.1:0"
	acme := h.fake.tenant(t, "acme", 4)
	serving := h.when("serving metrics")
	// Both lines are written after their call's outcomes are counted.
	acked, nacked := h.when("event acknowledged"), h.when("event nacked")
	h.start(t, []string{acme}, runner.WithProcessor(func(_ context.Context, ev runner.Event) error {
		if ev.ID == "evt_acme_01" {
			return errors.New("downstream said no")
		}
		return nil
	}))
	receive(t, serving, "the metrics server")
	addr, _ := h.logs.FilterMessage("serving metrics").All()[0].ContextMap()["addr"].(string)
	receive(t, acked, "the acks")
	receive(t, nacked, "the nack")

	get := func(path string) string {
		t.Helper()
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
		}
		return string(b)
	}
	if body := get("/livez"); body != `{"status":"ok"}` {
		t.Errorf("/livez: %s", body)
	}
	text := get("/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"trigger_worker_events_processed_total", []string{`outcome="ok"`}, 3},
		{"trigger_worker_events_processed_total", []string{`outcome="failed"`}, 1},
		{"trigger_worker_process_duration_seconds_count", nil, 4},
		{"trigger_worker_events_settled_total", []string{`operation="ack"`, `outcome="ok"`}, 3},
		{"trigger_worker_events_settled_total", []string{`operation="nack"`, `outcome="ok"`}, 1},
		{"http_client_request_duration_seconds_count", []string{`trigger_operation="ack"`}, 1},
		{"http_client_request_duration_seconds_count", []string{`trigger_operation="nack"`}, 1},
	} {
		if got, ok := sampleValue(text, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if n, ok := sampleValue(text, "http_client_request_duration_seconds_count", `trigger_operation="pull"`); !ok || n < 2 {
		t.Errorf("pull calls counted %v (found %v), want at least the two that leased", n, ok)
	}
	if regexp.MustCompile(`acme|tenant_id`).MatchString(text) {
		t.Error("a metric names the tenant")
	}
	h.stop(t)
}

// sampleValue finds the one series of name whose labels include every one of labels.
func sampleValue(text, name string, labels ...string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(series, name+"{") {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(series, l)
		}
		if all {
			v, err := strconv.ParseFloat(value, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// TestTenantLabelSplitsTheCountsWhenAskedFor: with TRIGGER_METRICS_TENANT_LABEL on, each
// consumer's counts carry its tenant.
func TestTenantLabelSplitsTheCountsWhenAskedFor(t *testing.T) {
	tel, err := telemetry.New(sdktrace.NewTracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.tel = tel
	h.cfg.MetricsTenantLabel = true
	h.cfg.AckInterval = time.Millisecond
	h.cfg.MetricsAddr = "127.0.0.1:0"
	acme, globex := h.fake.tenant(t, "acme", 2), h.fake.tenant(t, "globex", 1)
	serving := h.when("serving metrics")
	h.start(t, []string{acme, globex}, runner.WithProcessor(func(context.Context, runner.Event) error { return nil }))
	receive(t, serving, "the metrics server")
	addr, _ := h.logs.FilterMessage("serving metrics").All()[0].ContextMap()["addr"].(string)
	// An event is counted as processed before its ack is queued, so acked implies counted.
	h.fake.waitFor(t, "every event acked", func(f *fakeInbox) bool {
		return f.countState("acme", "acked") == 2 && f.countState("globex", "acked") == 1
	})
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for tenant, want := range map[string]float64{"acme": 2, "globex": 1} {
		label := `trigger_tenant_id="` + tenant + `"`
		if got, ok := sampleValue(string(b), "trigger_worker_events_processed_total", `outcome="ok"`, label); !ok || got != want {
			t.Errorf("processed for %s = %v (found %v), want %v\n%s", tenant, got, ok, want, b)
		}
	}
	h.stop(t)
}
