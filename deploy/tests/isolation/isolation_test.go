// Package isolation proves one tenant cannot hurt another: while an abuser reads the largest
// answers the API gives, bursts over its rate limit, floods made-up keys, parks hundreds of long
// polls and redrives thousands of dead letters, a neighbour running the seed's workload against
// the same real binaries sees no error at all and has every event processed, and the abuser
// itself never gets a 5xx.
package isolation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
	"github.com/trigger-api/trigger-api/deploy/local/noisy"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
)

// TestAbuserCannotHurtNeighbour fails, never skips, when DynamoDB Local or Java is missing.
func TestAbuserCannotHurtNeighbour(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cfg := noisy.TestConfig()
	st, state := startStack(ctx, t)
	sc, err := noisy.Prepare(ctx, noisy.Target{GatewayURL: st.GatewayURL, AdminToken: st.AdminToken, InboxPID: st.PIDs()[stack.Inbox]}, cfg, testLog{t})
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(stack.LogTails(state, 30))
		}
	})

	sc.SetPhase("warm-up")
	if err := sc.StartNeighbour(ctx); err != nil {
		t.Fatal(err)
	}
	defer sc.StopNeighbour()
	if err := waitFor(ctx, time.Minute, func() bool { return sc.Processed() >= 10 }); err != nil {
		t.Fatalf("B's first events were not processed: %v (%+v)", err, sc.Figures("warm-up", "warm-up"))
	}

	sc.SetPhase("abused")
	if err := sc.StartAbuse(ctx); err != nil {
		t.Fatal(err)
	}
	// A runs until every kind of abuse has done its work at scale and B has sent its share,
	// not for a fixed time: on a busy machine the same work takes longer. Redrives count once
	// answered at all: whether they succeed is abuser-gets-no-5xx-but-503-with-retry-after's to judge.
	enough := func() bool {
		p := sc.Progress()
		return p.ReadPages >= 16 && p.BurstRefused >= 50 && p.BogusAnswered >= 200 &&
			p.ParkedMost >= int64(cfg.ParkedPolls) && p.RedriveTries >= 2 &&
			sc.Accepted("abused") >= 100
	}
	// The bound only catches a run where some abuse never happens: under `make test`'s load the
	// same work has taken anywhere from 20 s to over 50 s.
	abuseErr := waitFor(ctx, 3*time.Minute, enough)
	mem := sc.StopAbuse()

	sc.SetPhase("after")
	sc.StopProducer()
	drainCtx, stopDrain := context.WithTimeout(ctx, time.Minute)
	left := sc.WaitProcessed(drainCtx)
	stopDrain()
	sc.StopNeighbour()
	res := sc.Result()

	var out strings.Builder
	noisy.PrintFigures(&out, []noisy.Figures{sc.Figures("warm-up", "warm-up"), sc.Figures("abused", "abused"), sc.Figures("after", "after")})
	res.PrintActors(&out)
	fmt.Fprintf(&out, "inbox memory while A ran: %+v\n", mem)
	t.Log("\n" + out.String())

	t.Run("abuse-acted-at-scale", func(t *testing.T) {
		if abuseErr != nil {
			t.Errorf("A did not do all its abuse: %v; %+v; B accepted %d meanwhile", abuseErr, res.Progress, sc.Accepted("abused"))
		}
	})
	t.Run("neighbour-sees-no-error", func(t *testing.T) {
		if n := res.NeighbourErrors(); n != 0 || res.Neighbour.Statuses.Calls() == 0 {
			t.Errorf("B: %d errors in %d calls (answers: %s)", n, res.Neighbour.Statuses.Calls(), res.Neighbour.Statuses)
			for _, f := range append(res.Neighbour.Findings, res.NeighbourFailures...) {
				t.Error(f)
			}
			logLinesOf(t, state, append(res.Neighbour.Findings, res.NeighbourFailures...))
		}
	})
	t.Run("abuser-gets-no-5xx-but-503-with-retry-after", func(t *testing.T) {
		if res.Abuser.Unexpected != 0 {
			t.Errorf("A: %d answers outside 200/202/400/401/403/404/409/413/429 and 503 with Retry-After, or none at all (%d of them 5xx); answers: %s",
				res.Abuser.Unexpected, res.AbuserServerErrors(), res.Abuser.Statuses)
			for _, f := range res.Abuser.Findings {
				t.Error(f)
			}
			logLinesOf(t, state, res.Abuser.Findings)
		}
	})
	t.Run("every-neighbour-event-processed", func(t *testing.T) {
		if len(left) != 0 || res.Accepted == 0 {
			t.Errorf("%d of %d accepted events not acknowledged, e.g. %v", len(left), res.Accepted, left[:min(len(left), 5)])
		}
	})
}

// startStack runs the real binaries behind the gateway, on the DynamoDB Local `make test`
// shares (under tables of the test's own) or on one of its own.
func startStack(ctx context.Context, t *testing.T) (*stack.Stack, string) {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	state := t.TempDir()
	st, err := stack.Start(ctx, stack.Options{
		BinDir: t.TempDir(), StateDir: state, GatewayAddr: "127.0.0.1:0",
		DynamoDBEndpoint: os.Getenv(ddblocal.EndpointEnv), TablePrefix: "noisy" + hex.EncodeToString(b[:]) + "_",
		// The stack's own worker consumes this tenant only: B's events are B's consumers' to take.
		Tenants:  []string{"idle"},
		Progress: testLog{t},
	})
	if err != nil {
		t.Log(stack.LogTails(state, 30))
		t.Fatalf("start the stack: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Stop(); err != nil {
			t.Errorf("stop the stack: %v", err)
		}
	})
	return st, state
}

var requestID = regexp.MustCompile(`req_[0-9a-f]{8,}`)

// logLinesOf logs the services' log lines for each finding's request id: the evidence of what
// went wrong, which the test's temporary folder does not keep.
func logLinesOf(t *testing.T, state string, findings []noisy.Finding) {
	logs, _ := filepath.Glob(filepath.Join(state, "*.log"))
	for _, f := range findings {
		id := requestID.FindString(f.Body)
		if id == "" {
			continue
		}
		for _, path := range logs {
			b, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			for line := range strings.SplitSeq(string(b), "\n") {
				if strings.Contains(line, id) {
					t.Logf("%s: %s", filepath.Base(path), line)
				}
			}
		}
	}
}

// waitFor polls cond until it holds, or fails after limit.
func waitFor(ctx context.Context, limit time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within %v", limit)
		case <-tick.C:
		}
	}
	return nil
}

// testLog sends progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
