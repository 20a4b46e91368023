package ddb_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// TestHealthGaugeExposed: WatchHealth puts trigger_dynamodb_healthy on /metrics, healthy until a
// check says otherwise, under the name the chart's TriggerDynamoDBUnhealthy alert reads.
func TestHealthGaugeExposed(t *testing.T) {
	tel, err := telemetry.New(tracenoop.NewTracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // registers the gauge and returns before its first check
	ddb.WatchHealth(ctx, zap.NewNop(), tel, nil)
	rec := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	found := false
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "trigger_dynamodb_healthy{") || strings.HasPrefix(line, "trigger_dynamodb_healthy ") {
			found = true
			if !strings.HasSuffix(line, " 1") {
				t.Errorf("%s: want 1 before any failed check", line)
			}
		}
	}
	if !found {
		t.Errorf("no trigger_dynamodb_healthy on /metrics:\n%s", rec.Body.String())
	}
}
