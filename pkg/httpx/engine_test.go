package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trigger-api/trigger-api/pkg/httpx"
)

// TestProbesCarryRequestIDsAndFailInTheEnvelope: the probes echo a request id like every other
// route, a failed readiness check answers the error envelope with Retry-After, and neither
// writes an access-log line.
func TestProbesCarryRequestIDsAndFailInTheEnvelope(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	var readyErr error
	engine := httpx.NewEngine(zap.New(core), func(context.Context) error { return readyErr })

	probe := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("X-Request-Id", "probe-1")
		rec := httptest.NewRecorder()
		engine.ServeHTTP(rec, req)
		return rec
	}
	for _, path := range []string{"/livez", "/readyz"} {
		rec := probe(path)
		if rec.Code != http.StatusOK || rec.Header().Get("X-Request-Id") != "probe-1" || rec.Body.String() != `{"status":"ok"}` {
			t.Fatalf("%s: %d %q %s", path, rec.Code, rec.Header().Get("X-Request-Id"), rec.Body)
		}
	}

	readyErr = errors.New("table Events: connection refused")
	rec := probe("/readyz")
	var env struct {
		Error struct {
			Code, Message string
			RequestID     string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Fatalf("503 body %s: %v", rec.Body, err)
	}
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
		env.Error.Code != "unavailable" || env.Error.RequestID != "probe-1" {
		t.Fatalf("not ready: %d Retry-After %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	// The cause is logged for the operator, not shown to the prober.
	if logs.FilterMessage("not ready").Len() != 1 || logs.FilterMessage("request").Len() != 0 {
		t.Fatalf("logs: %v", logs.All())
	}
	if got := env.Error.Message; got == "" || strings.Contains(got, "Events") || strings.Contains(got, "refused") {
		t.Fatalf("message %q shows the cause", got)
	}
}

// A query string that does not parse is refused, not served as if the broken pair were absent.
func TestMalformedQueryStringIsRefused(t *testing.T) {
	engine := httpx.NewEngine(zap.NewNop(), func(context.Context) error { return nil })
	engine.GET("/inbox", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"limit": c.Query("limit")}) })
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"limit=5", http.StatusOK},
		{"", http.StatusOK},
		{"limit=%%5", http.StatusBadRequest},
		{"limit=5&cursor=%zz", http.StatusBadRequest},
		{"limit=5;cursor=a", http.StatusBadRequest},
	} {
		rec := httptest.NewRecorder()
		engine.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/inbox?"+tc.query, nil))
		if rec.Code != tc.want || tc.want == http.StatusBadRequest && !strings.Contains(rec.Body.String(), `"invalid_request"`) {
			t.Errorf("?%s: %d %s, want %d", tc.query, rec.Code, rec.Body, tc.want)
		}
	}
}

// The access line names no caller (it would always be the access middleware, found by walking
// the stack on every request); the service's other lines keep theirs.
func TestAccessLineCarriesNoCaller(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	engine := httpx.NewEngine(zap.New(core, zap.AddCaller()), func(context.Context) error { return errors.New("down") })
	engine.GET("/thing", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	for _, path := range []string{"/thing", "/readyz"} {
		engine.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	access, other := logs.FilterMessage("request").All(), logs.FilterMessage("not ready").All()
	if len(access) != 1 || len(other) != 1 {
		t.Fatalf("logs: %v", logs.All())
	}
	if access[0].Caller.Defined {
		t.Errorf("access line names caller %s", access[0].Caller)
	}
	if !other[0].Caller.Defined {
		t.Error("the readiness line lost its caller")
	}
}
