package httpx_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

const openMetricsAccept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"

// TestRequestDurationPointsAtTheRequestsTrace: a sampled request's duration lands in a bucket
// whose exemplar names the request's trace, served to a scraper that asks for OpenMetrics; an
// unsampled request leaves none, and the text format, which cannot carry them, shows none.
func TestRequestDurationPointsAtTheRequestsTrace(t *testing.T) {
	tel, err := telemetry.New(sdktrace.NewTracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	engine := httpx.NewEngine(zap.NewNop(), func(context.Context) error { return nil })
	engine.GET("/events/:id", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"ok": true}) })
	h := httpx.Instrument(engine, tel)
	const (
		sampled   = "0af7651916cd43dd8448eb211c80319c"
		unsampled = "1af7651916cd43dd8448eb211c80319d"
	)
	for traceID, flags := range map[string]string{sampled: "01", unsampled: "00"} {
		r := httptest.NewRequest(http.MethodGet, "/events/evt_1", nil)
		r.Header.Set("Traceparent", "00-"+traceID+"-b7ad6b7169203331-"+flags)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("GET /events/evt_1: %d", w.Code)
		}
	}
	scrape := func(accept string) (string, string) {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Header().Get("Content-Type"), w.Body.String()
	}

	ct, om := scrape(openMetricsAccept)
	if !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("Content-Type %q, want OpenMetrics", ct)
	}
	var found bool
	for _, line := range strings.Split(om, "\n") {
		if !strings.HasPrefix(line, "http_server_request_duration_seconds_bucket{") {
			continue
		}
		if strings.Contains(line, unsampled) {
			t.Errorf("an unsampled request left an exemplar: %s", line)
		}
		if strings.Contains(line, `trace_id="`+sampled+`"`) && strings.Contains(line, `http_route="/events/:id"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no request-duration bucket of route /events/:id names trace %s:\n%s", sampled, om)
	}

	ct, text := scrape("")
	if !strings.HasPrefix(ct, "text/plain") || strings.Contains(text, "trace_id=") {
		t.Errorf("without an Accept header: Content-Type %q, exemplars present %v; want the text format, without", ct, strings.Contains(text, "trace_id="))
	}
}
