package telemetry_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/trigger-api/trigger-api/pkg/buildinfo"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

func TestBuildInfoGauge(t *testing.T) {
	tel, err := telemetry.New(tracenoop.NewTracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	bi := buildinfo.Info{Version: "v1.2.3", Commit: "0123abc", Date: "2026-12-05T05:00:00Z", GoVersion: "go1.26.8"}
	if err := telemetry.RegisterBuildInfo(tel.MeterProvider, bi); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	var line string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "trigger_build_info{") {
			line = l
		}
	}
	for _, want := range []string{`version="v1.2.3"`, `commit="0123abc"`, `date="2026-12-05T05:00:00Z"`, `goversion="go1.26.8"`} {
		if !strings.Contains(line, want) {
			t.Errorf("trigger_build_info lacks %s: %q", want, line)
		}
	}
	if !strings.HasSuffix(line, "} 1") {
		t.Errorf("trigger_build_info is not 1: %q", line)
	}
}
