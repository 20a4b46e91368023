package ddb_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
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
	ddb.WatchHealth(ctx, zap.NewNop(), tel, nil, ddb.ComponentIngest, ddb.TableNames("p_"))
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

// The check passes on the real tables for every service, and names a missing table as the
// start-up check does, for both kinds of read.
func TestHealthCheckAgainstDynamoDBLocal(t *testing.T) {
	t.Parallel()
	tables := shared.Tables(t)
	ctx := context.Background()
	client, err := ddblocal.Client(ctx, shared.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for _, component := range []string{ddb.ComponentIngest, ddb.ComponentInbox, ddb.ComponentKeysAdmin} {
		if err := ddb.CheckHealth(ctx, client, component, tables); err != nil {
			t.Errorf("%s on its tables: %v", component, err)
		}
	}
	missing := ddb.TableNames("missing_")
	for _, component := range []string{ddb.ComponentIngest, ddb.ComponentKeysAdmin} {
		err := ddb.CheckHealth(ctx, client, component, missing)
		if !errors.Is(err, ddb.ErrMisconfigured) || !strings.Contains(err.Error(), "missing_") {
			t.Errorf("%s without its tables: %v, want ErrMisconfigured naming the table", component, err)
		}
	}
}
