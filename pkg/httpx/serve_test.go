package httpx_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// TestServeMetricsOnAPortOfItsOwn: with MetricsAddr set, a second server answers GET /metrics
// and nothing else (not even /openapi.json), the API port serves everything but /metrics, and
// both stop with ctx.
func TestServeMetricsOnAPortOfItsOwn(t *testing.T) {
	tel, err := telemetry.New(noop.NewTracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	engine := httpx.NewEngine(zap.NewNop(), func(context.Context) error { return nil })
	engine.GET("/events/:id", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"ok": true}) })
	// Every service routes its OpenAPI part: it is the API's, not the metrics port's.
	engine.GET("/openapi.json", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"openapi": "3.1.0"}) })
	api, metrics, stop := serveBoth(t, httpx.ServerConfig{ShutdownTimeout: 5 * time.Second, MetricsAddr: "127.0.0.1:0"}, httpx.Instrument(engine, tel))
	for _, path := range []string{"/events/evt_1", "/openapi.json"} {
		if code, _ := get(t, api, path); code != http.StatusOK {
			t.Fatalf("GET %s on the API port: %d", path, code)
		}
	}
	if code, body := get(t, metrics, "/metrics"); code != http.StatusOK || !strings.Contains(body, "http_server_request_duration_seconds") {
		t.Errorf("GET %s/metrics: %d, request metrics missing", metrics, code)
	}
	// The metrics are the metrics port's alone: the API port faces tenants.
	if code, body := get(t, api, "/metrics"); code != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
		t.Errorf("GET /metrics on the API port: %d %s, want 404 in the error envelope", code, body)
	}
	for _, path := range []string{"/events/evt_1", "/openapi.json", "/livez", "/readyz", "/"} {
		if code, _ := get(t, metrics, path); code != http.StatusNotFound {
			t.Errorf("metrics port answered %s with %d, want 404", path, code)
		}
	}
	stop()
}

func TestServeRefusesABadMetricsAddress(t *testing.T) {
	err := httpx.Serve(context.Background(), zap.NewNop(), "127.0.0.1:0",
		httpx.ServerConfig{ShutdownTimeout: time.Second, MetricsAddr: "127.0.0.1:notaport"}, http.NotFoundHandler())
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:notaport") {
		t.Fatalf("err %v, want one naming the metrics address", err)
	}
}

// TestServePprofOnTheMetricsPortOnly: profiles are the metrics port's, and asking for them
// without one is refused rather than served to tenants.
func TestServePprofOnTheMetricsPortOnly(t *testing.T) {
	engine := httpx.NewEngine(zap.NewNop(), func(context.Context) error { return nil })
	api, metrics, stop := serveBoth(t, httpx.ServerConfig{ShutdownTimeout: 5 * time.Second, MetricsAddr: "127.0.0.1:0", Pprof: true},
		httpx.Instrument(engine, telemetry.Nop()))
	defer stop()
	if code, body := get(t, metrics, "/debug/pprof/cmdline"); code != http.StatusOK || body == "" {
		t.Errorf("GET /debug/pprof/cmdline on the metrics port: %d %q", code, body)
	}
	if code, _ := get(t, metrics, "/metrics"); code != http.StatusOK {
		t.Errorf("GET /metrics beside the profiles: %d", code)
	}
	if code, _ := get(t, api, "/debug/pprof/cmdline"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/cmdline on the API port: %d, want 404", code)
	}

	err := httpx.Serve(context.Background(), zap.NewNop(), "127.0.0.1:0",
		httpx.ServerConfig{ShutdownTimeout: time.Second, Pprof: true}, http.NotFoundHandler())
	if err == nil || !strings.Contains(err.Error(), "TRIGGER_METRICS_ADDR") {
		t.Fatalf("Pprof without a metrics port: %v, want a refusal naming TRIGGER_METRICS_ADDR", err)
	}
}

// serveBoth runs Serve with a metrics port and returns both addresses once each server
// accepts connections, and a stop that waits for Serve to return cleanly.
func serveBoth(t *testing.T, cfg httpx.ServerConfig, h http.Handler) (api, metrics string, stop func()) {
	t.Helper()
	// Each server logs "listening" with its address once it accepts connections.
	core, logs := observer.New(zap.InfoLevel)
	listening := make(chan struct{}, 2)
	hooked := zapcore.RegisterHooks(core, func(e zapcore.Entry) error {
		if e.Message == "listening" {
			listening <- struct{}{}
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpx.Serve(ctx, zap.New(hooked), "127.0.0.1:0", cfg, h) }()
	for range 2 {
		select {
		case <-listening:
		case err := <-done:
			cancel()
			t.Fatalf("Serve returned early: %v", err)
		case <-time.After(10 * time.Second):
			cancel()
			t.Fatal("the servers did not start")
		}
	}
	for _, e := range logs.FilterMessage("listening").All() {
		addr, _ := e.ContextMap()["addr"].(string)
		if e.ContextMap()["server"] == "metrics" {
			metrics = addr
		} else {
			api = addr
		}
	}
	return api, metrics, func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after ctx ended")
		}
	}
}

func get(t *testing.T, base, path string) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
