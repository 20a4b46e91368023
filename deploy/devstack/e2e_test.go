package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/deploy/devstack/stack"
)

// TestEndToEnd builds the real binaries, starts DynamoDB Local, the three services, the gateway
// and the worker exactly as `make run` does, and checks the seed's demo and the guarantees
// around it. DynamoDB Local or Java missing fails it: nothing here is skipped.
func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	binDir := t.TempDir()
	stateDir := t.TempDir()
	st, err := stack.Start(ctx, stack.Options{
		BinDir:             binDir,
		BuildFlags:         childBuildFlags,
		StateDir:           stateDir,
		GatewayAddr:        "127.0.0.1:0",
		WorkerPollInterval: 100 * time.Millisecond,
		Progress:           testLog{t},
	})
	if err != nil {
		t.Fatalf("start the stack: %v", err)
	}
	t.Cleanup(func() {
		_ = st.Stop()
		if t.Failed() {
			dumpLogs(t, stateDir)
		}
	})
	acme, globex := st.Keys["acme"], st.Keys["globex"]

	t.Run("demo-sequence-keeps-tenants-apart", func(t *testing.T) {
		// The file `make demo` reads, so the hand-over between run and demo is tested too.
		env, err := stack.ReadEnvFile(st.EnvFile)
		if err != nil {
			t.Fatal(err)
		}
		if env.GatewayURL != st.GatewayURL || env.AdminToken != st.AdminToken || env.Keys["acme"] != acme || env.Keys["globex"] != globex {
			t.Fatalf("env file %+v does not describe the stack", env)
		}
		var out bytes.Buffer
		res, err := stack.Demo(ctx, &out, env)
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, out.String())
		}
		if !slices.Equal(res.InboxA, []string{res.EventA}) || !slices.Equal(res.InboxB, []string{res.EventB}) {
			t.Errorf("inboxes before the worker: A %v (want [%s]), B %v (want [%s])", res.InboxA, res.EventA, res.InboxB, res.EventB)
		}
		if !slices.Contains(res.Processed, res.EventA) || !slices.Contains(res.Processed, res.EventB) {
			t.Errorf("worker processed %v, want both %s and %s", res.Processed, res.EventA, res.EventB)
		}
		for _, want := range []string{"→ POST /events", "← 202 Accepted", "→ GET /inbox", "→ POST /ack", "Demo passed"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("demo output lacks %q", want)
			}
		}
		if strings.Contains(out.String(), st.AdminToken) {
			t.Error("demo output shows the admin token")
		}
	})

	var acmeEvent string
	t.Run("running-worker-delivers-acme-event", func(t *testing.T) {
		status, body := call(t, http.MethodPost, st.GatewayURL+"/events", acme, `{"event_type":"customer.created","customer_id":"e2e"}`)
		if status != http.StatusAccepted {
			t.Fatalf("POST /events: %d %s", status, body)
		}
		var acc struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(body, &acc); err != nil || acc.EventID == "" {
			t.Fatalf("POST /events answer %s", body)
		}
		acmeEvent = acc.EventID
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, body := call(t, http.MethodGet, st.GatewayURL+"/events/"+acmeEvent, acme, "")
			var ev struct {
				Status string `json:"status"`
			}
			if status != http.StatusOK || json.Unmarshal(body, &ev) != nil {
				t.Fatalf("GET /events/%s: %d %s", acmeEvent, status, body)
			}
			if ev.Status == "delivered" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("event still %q 30s after it was posted", ev.Status)
			}
			select {
			case <-st.Failed():
				t.Fatalf("stack failed: %v", st.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
		logs, err := os.ReadFile(filepath.Join(stateDir, "worker.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !hasProcessingLine(logs, "acme", acmeEvent) {
			t.Errorf("worker.log has no processing line for acme's %s", acmeEvent)
		}
		if bytes.Contains(logs, []byte(acme)) || bytes.Contains(logs, []byte(`"customer_id":"e2e"`)) {
			t.Error("worker.log contains a key or a payload")
		}
	})

	t.Run("cross-tenant-calls-answer-404", func(t *testing.T) {
		if acmeEvent == "" {
			t.Fatal("no acme event from the previous step")
		}
		if status, body := call(t, http.MethodGet, st.GatewayURL+"/events/"+acmeEvent, globex, ""); status != http.StatusNotFound {
			t.Errorf("globex GET /events/<acme's id>: %d %s, want 404", status, body)
		}
		if status, body := call(t, http.MethodPost, st.GatewayURL+"/ack", globex, `{"event_id":"`+acmeEvent+`"}`); status != http.StatusNotFound {
			t.Errorf("globex POST /ack <acme's id>: %d %s, want 404", status, body)
		}
		if status, body := call(t, http.MethodGet, st.GatewayURL+"/events/"+acmeEvent, acme, ""); status != http.StatusOK {
			t.Errorf("acme GET /events/<its own id>: %d %s, want 200", status, body)
		}
	})

	t.Run("component-death-stops-the-stack", func(t *testing.T) {
		// A second stack on the first one's DynamoDB, with tables of its own.
		other, err := stack.Start(ctx, stack.Options{
			BinDir:           binDir,
			NoBuild:          true,
			StateDir:         t.TempDir(),
			GatewayAddr:      "127.0.0.1:0",
			DynamoDBEndpoint: st.DynamoDBEndpoint,
			TablePrefix:      "failure_",
		})
		if err != nil {
			t.Fatalf("start a second stack: %v", err)
		}
		defer other.Stop()
		pids := other.PIDs()
		if err := syscall.Kill(pids[stack.Inbox], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = other.Wait(ctx)
		if err == nil || !strings.Contains(err.Error(), "inbox exited unexpectedly") {
			t.Fatalf("Wait after the inbox died: %v, want a failure naming the inbox", err)
		}
		for name, pid := range pids {
			if alive(pid) {
				t.Errorf("%s (pid %d) still runs after the stack failed", name, pid)
			}
		}
		if _, err := os.Stat(other.EnvFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("env file left behind: %v", err)
		}
	})

	t.Run("stop-leaves-no-child-process", func(t *testing.T) {
		pids := st.PIDs()
		if err := st.Stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		for name, pid := range pids {
			if alive(pid) {
				t.Errorf("%s (pid %d) still runs", name, pid)
			}
		}
		if runtime.GOOS == "linux" {
			// Covers DynamoDB Local as well, whose pid the stack does not expose.
			if kids := childrenOf(t, os.Getpid()); len(kids) > 0 {
				t.Errorf("child processes left: %v", kids)
			}
		}
		if _, err := http.Get(st.GatewayURL + "/inbox"); err == nil {
			t.Error("the gateway still answers")
		}
		if _, err := os.Stat(st.EnvFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("env file left behind: %v", err)
		}
	})
}

func call(t *testing.T, method, url, key, body string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

func hasProcessingLine(logs []byte, tenant, eventID string) bool {
	for _, line := range bytes.Split(logs, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		if m["msg"] == "processing event" && m["tenant_id"] == tenant && m["event_id"] == eventID {
			return true
		}
	}
	return false
}

// alive reports whether pid is a process that has not been reaped.
func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(t *testing.T, pid int) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // ended while we looked
		}
		// The command name is in parentheses and may contain spaces; the parent pid is the
		// second field after it.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, e.Name()+" "+s[:strings.LastIndexByte(s, ')')+1])
		}
	}
	return out
}

func dumpLogs(t *testing.T, dir string) {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		t.Logf("--- %s (last %d lines)\n%s", filepath.Base(p), len(lines), strings.Join(lines, "\n"))
	}
}

// testLog sends the stack's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
