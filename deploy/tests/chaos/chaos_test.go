// Package chaos runs the short chaos plan against the real binaries: one SIGKILL each of an
// ingest, an inbox and a worker replica, a DynamoDB stall, and a spell of DynamoDB 503s and
// applied-then-dropped calls, then checks the ledger. `make chaos` runs the full plan.
package chaos

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/chaos/harness"
	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
)

// TestShortChaosRunLosesNothing fails, never skips, when DynamoDB Local or Java is missing.
func TestShortChaosRunLosesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	state := t.TempDir()
	report, err := harness.Run(ctx, harness.Short(), harness.Options{
		BinDir: t.TempDir(), StateDir: state,
		// The DynamoDB Local `make test` shares, under tables of the run's own; empty starts one.
		DynamoDBEndpoint: os.Getenv(ddblocal.EndpointEnv),
		Progress:         testLog{t},
	})
	if err != nil {
		t.Log(stack.LogTails(state, 30))
		t.Fatalf("chaos run: %v", err)
	}
	var table strings.Builder
	report.PrintTable(&table)
	t.Log("\n" + table.String())
	if err := report.WriteJSON(filepath.Join(state, "ledger.json")); err != nil {
		t.Error(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(stack.LogTails(state, 30))
		}
	})

	t.Run("every-fault-acted", func(t *testing.T) {
		for kind, n := range report.FaultsActed {
			if n == 0 {
				t.Errorf("the proxy never acted with %s", kind)
			}
		}
		if len(report.Phases) != 6 {
			t.Errorf("%d phases ran, want 6: %+v", len(report.Phases), report.Phases)
		}
	})
	t.Run("accepted-events-all-processed-or-dead", func(t *testing.T) {
		if report.Accepted == 0 || report.Lost != 0 || report.Processed+len(report.Dead) < report.Accepted {
			t.Errorf("accepted %d, processed %d, dead %d, lost %d", report.Accepted, report.Processed, len(report.Dead), report.Lost)
		}
	})
	t.Run("nothing-processed-unaccepted", func(t *testing.T) {
		if report.Unexpected != 0 || report.Unconfirmed != 0 || report.Rejected != 0 || report.IDMismatches != 0 {
			t.Errorf("unexpected %d, unconfirmed %d, rejected %d, id mismatches %d",
				report.Unexpected, report.Unconfirmed, report.Rejected, report.IDMismatches)
		}
	})
	t.Run("no-5xx-but-503-each-with-retry-after", func(t *testing.T) {
		if report.Other5xx != 0 || report.RetryAfterMissing != 0 || report.TransportErrors != 0 {
			t.Errorf("statuses %v: %d other 5xx, %d without Retry-After, %d calls without an answer",
				report.StatusCounts, report.Other5xx, report.RetryAfterMissing, report.TransportErrors)
		}
	})
	t.Run("drained", func(t *testing.T) {
		if report.LeftInInbox != 0 {
			t.Errorf("%d events still in the inbox", report.LeftInInbox)
		}
	})
	t.Run("no-other-violation", func(t *testing.T) {
		for _, v := range append(report.Violations, report.Evidence...) {
			t.Error(v)
		}
	})
}

// testLog sends the run's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
