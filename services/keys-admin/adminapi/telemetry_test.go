package adminapi_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// Admin tokens and issued keys never reach a span, a metric or a log line.
func TestTelemetryCarriesNoSecrets(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	e := newEnv(t, envOptions{client: dynamodb.New(shared.Client.Options(), ddb.WithTelemetry(tel)), log: zap.New(core)})
	h := httpx.Instrument(e.router, tel)
	do := func(method, path, token, body string) string {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		b, _ := io.ReadAll(w.Body)
		return string(b)
	}
	do("POST", "/admin/tenants", adminToken, `{"tenant_id":"acme","name":"Acme"}`)
	issued := do("POST", "/admin/tenants/acme/keys", adminToken, `{"scopes":["events:write"]}`)
	do("GET", "/admin/tenants", adminToken+"x", "")

	var dump strings.Builder
	for _, s := range rec.Ended() {
		fmt.Fprintln(&dump, s.Name(), s.Attributes(), s.Events(), s.Status())
	}
	for _, l := range logs.All() {
		fmt.Fprintln(&dump, l.Message, l.ContextMap())
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	dump.WriteString(w.Body.String())
	if !strings.Contains(dump.String(), "POST /admin/tenants/:tenant_id/keys") || logs.Len() == 0 {
		t.Fatalf("the requests were not recorded:\n%s", dump.String())
	}
	secrets := []string{adminToken}
	if i := strings.Index(issued, `"api_key":"`); i >= 0 {
		k := issued[i+len(`"api_key":"`):]
		secrets = append(secrets, k[:strings.IndexByte(k, '"')])
	} else {
		t.Fatalf("no key in %s", issued)
	}
	for _, s := range secrets {
		if strings.Contains(dump.String(), s) {
			t.Errorf("telemetry holds %q", s)
		}
	}
}
