package contract_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
)

// One stack serves every test of this binary that needs one: building and starting the four
// binaries is the slow part, and each test creates tenants of its own, so they cannot see each
// other's events. It starts on first use, so tests that need none (-run TestRoutes...) start
// nothing.
var live struct {
	once     sync.Once
	st       *stack.Stack
	err      error
	dir      string
	progress syncBuffer
}

func TestMain(m *testing.M) {
	code := m.Run()
	if live.st != nil {
		if err := live.st.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop the stack:", err)
			code = 1
		}
	}
	if live.dir != "" {
		if code != 0 {
			dumpLogs(filepath.Join(live.dir, "state"))
		}
		_ = os.RemoveAll(live.dir)
	}
	os.Exit(code)
}

// sharedStack returns the running stack: DynamoDB Local (the one named by
// $TRIGGER_TEST_DYNAMODB_ENDPOINT, else one of its own), the three services, the gateway and
// the worker, as `make run` starts them. A stack that cannot start fails the test.
func sharedStack(t *testing.T) *stack.Stack {
	t.Helper()
	live.once.Do(func() {
		live.dir, live.err = os.MkdirTemp("", "trigger-contract-")
		if live.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		live.st, live.err = stack.Start(ctx, stack.Options{
			BinDir:           filepath.Join(live.dir, "bin"),
			StateDir:         filepath.Join(live.dir, "state"),
			GatewayAddr:      "127.0.0.1:0",
			DynamoDBEndpoint: os.Getenv(ddblocal.EndpointEnv),
			// Its own tables on a shared DynamoDB Local: other test binaries create theirs.
			TablePrefix: "contract" + randomHex(4) + "_",
			Progress:    &live.progress,
		})
	})
	if live.err != nil {
		t.Fatalf("start the stack: %v\n%s", live.err, live.progress.String())
	}
	if err := live.st.Err(); err != nil {
		t.Fatalf("the stack failed: %v", err)
	}
	return live.st
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// dumpLogs prints the end of every component's log, so a failure in CI can be read.
func dumpLogs(dir string) { fmt.Fprint(os.Stderr, stack.LogTails(dir, 40)) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
