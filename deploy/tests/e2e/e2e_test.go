package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
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
		BinDir:      binDir,
		BuildFlags:  childBuildFlags,
		StateDir:    stateDir,
		GatewayAddr: "127.0.0.1:0",
		Progress:    testLog{t},
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

	t.Run("two-worker-replicas-process-each-event-once", func(t *testing.T) {
		const tenantID, total = "initech", 300
		key, err := st.CreateTenant(ctx, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		// A lease far longer than the drain takes: an event can reach both replicas only if
		// the inbox or the worker breaks a lease, so exactly once is what to expect. Debug
		// level logs each acknowledgement the inbox confirmed.
		env := []string{"TRIGGER_LOG_LEVEL=debug", "TRIGGER_VISIBILITY_TIMEOUT=300s"}
		var replicas []*stack.WorkerProc
		for i := range 2 {
			w, err := st.StartWorker(fmt.Sprintf("replica-%d", i+1), []string{key}, env...)
			if err != nil {
				t.Fatal(err)
			}
			replicas = append(replicas, w)
		}
		// Both consume before the first event exists, so they compete for every one.
		for _, w := range replicas {
			waitUntil(t, st, w, time.Minute, "a replica running", func() bool {
				return len(workerLines(t, w.LogPath(), "running", "")) == 1
			})
		}
		start := time.Now()
		posted, itemErrors := postEvents(t, st.GatewayURL, key, total)
		t.Logf("posted %d events in %v (%d item errors answered and posted again)", total, time.Since(start).Round(time.Millisecond), itemErrors)

		acked := func() map[string]int {
			out := map[string]int{}
			for _, w := range replicas {
				for _, l := range workerLines(t, w.LogPath(), "event acknowledged", tenantID) {
					out[l.EventID]++
				}
			}
			return out
		}
		waitUntil(t, st, nil, 2*time.Minute, "every event acknowledged and the inbox empty", func() bool {
			got := acked()
			for _, id := range posted {
				if got[id] == 0 {
					return false
				}
			}
			status, body := call(t, http.MethodGet, st.GatewayURL+"/inbox?limit=100", key, "")
			var page struct {
				Events []json.RawMessage `json:"events"`
			}
			if status != http.StatusOK || json.Unmarshal(body, &page) != nil {
				t.Fatalf("GET /inbox: %d %s", status, body)
			}
			return len(page.Events) == 0
		})
		t.Logf("all acknowledged and the inbox empty %v after the first post", time.Since(start).Round(time.Millisecond))
		for i, w := range replicas {
			if err := w.Stop(); err != nil {
				t.Errorf("replica %d did not exit cleanly on SIGTERM: %v", i+1, err)
			}
		}

		processed := map[string]int{}
		for i, w := range replicas {
			lines := workerLines(t, w.LogPath(), "processing event", tenantID)
			if len(lines) == 0 {
				t.Errorf("replica %d processed nothing: the two did not share the work", i+1)
			}
			for _, l := range lines {
				processed[l.EventID]++
				if l.DeliveryCount != 1 {
					t.Errorf("%s processed at delivery %d, want 1: a lease was broken", l.EventID, l.DeliveryCount)
				}
			}
			t.Logf("replica %d processed %d events", i+1, len(lines))
			logs, err := os.ReadFile(w.LogPath())
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range []string{"lease lost", "event nacked", `"level":"error"`, key, "e2e-replica-marker"} {
				if bytes.Contains(logs, []byte(bad)) {
					t.Errorf("replica %d's log contains %q", i+1, bad)
				}
			}
		}
		ackCounts := acked()
		for _, id := range posted {
			if processed[id] == 0 {
				t.Errorf("%s was never processed", id)
			}
		}
		// Every event processed, including any an ingest error answer hid from us, went to
		// exactly one replica exactly once.
		for id, n := range processed {
			if n != 1 || ackCounts[id] != 1 {
				t.Errorf("%s processed %d and acknowledged %d times, want once each", id, n, ackCounts[id])
			}
			if !slices.Contains(posted, id) && itemErrors == 0 {
				t.Errorf("%s processed although nobody posted it for %s", id, tenantID)
			}
		}
		// The inbox's own record agrees: every event delivered, leased once.
		ch := make(chan string)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for id := range ch {
					if err := checkDelivered(st.GatewayURL, key, id); err != nil {
						t.Error(err)
					}
				}
			})
		}
		for _, id := range posted {
			ch <- id
		}
		close(ch)
		wg.Wait()
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

// postEvents ingests n events for key through POST /events/batch, three batches side by side,
// and returns the ids of those the ingest accepted, with the number of item errors it answered
// on the way. An item the ingest could not write in time (a loaded machine running this under
// the race detector) is posted again as a new event, as a producer without idempotency keys
// would; the first may still have been stored, so the caller must allow for events it never
// heard of, but only then.
func postEvents(t *testing.T, gateway, key string, n int) (ids []string, itemErrors int) {
	t.Helper()
	type batchResult struct {
		ids    []string
		failed int
		err    error
	}
	post := func(first, count int) batchResult {
		items := make([]string, count)
		for j := range items {
			items[j] = fmt.Sprintf(`{"event_type":"order.placed","order":%d,"note":"e2e-replica-marker"}`, first+j)
		}
		req, err := http.NewRequest(http.MethodPost, gateway+"/events/batch", strings.NewReader(`{"events":[`+strings.Join(items, ",")+`]}`))
		if err != nil {
			return batchResult{err: err}
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			return batchResult{err: err}
		}
		defer resp.Body.Close()
		var res struct {
			Results []struct {
				EventID string          `json:"event_id"`
				Error   json.RawMessage `json:"error"`
			} `json:"results"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK || len(res.Results) != count {
			return batchResult{err: fmt.Errorf("POST /events/batch: %d, %d results for %d (%v)", resp.StatusCode, len(res.Results), count, err)}
		}
		var out batchResult
		for _, r := range res.Results {
			if r.EventID == "" || r.Error != nil {
				out.failed++
				continue
			}
			out.ids = append(out.ids, r.EventID)
		}
		return out
	}
	sent := 0
	for attempt := 1; len(ids) < n; attempt++ {
		if attempt > 5 {
			t.Fatalf("only %d of %d events ingested after 5 rounds", len(ids), n)
		}
		missing := n - len(ids)
		results := make([]batchResult, (missing+99)/100)
		var wg sync.WaitGroup
		for b := range results {
			wg.Go(func() { results[b] = post(sent+b*100, min(100, missing-b*100)) })
		}
		wg.Wait()
		sent += missing
		for _, r := range results {
			if r.err != nil {
				t.Fatal(r.err)
			}
			ids = append(ids, r.ids...)
			itemErrors += r.failed
		}
	}
	return ids, itemErrors
}

// checkDelivered reads one event back and wants it delivered at its first delivery.
func checkDelivered(gateway, key, id string) error {
	req, err := http.NewRequest(http.MethodGet, gateway+"/events/"+id, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var ev struct {
		Status        string `json:"status"`
		DeliveryCount int    `json:"delivery_count"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &ev) != nil || ev.Status != "delivered" || ev.DeliveryCount != 1 {
		return fmt.Errorf("GET /events/%s: %d %s, want delivered at delivery 1", id, resp.StatusCode, body)
	}
	return nil
}

// workerLine is what the end-to-end checks read from a worker's JSON log line.
type workerLine struct {
	Msg           string `json:"msg"`
	TenantID      string `json:"tenant_id"`
	EventID       string `json:"event_id"`
	DeliveryCount int    `json:"delivery_count"`
}

// workerLines returns a worker log's lines with message msg (and tenant, if not empty). A
// line still being written does not parse and is left for the next read.
func workerLines(t *testing.T, path, msg, tenant string) []workerLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []workerLine
	for _, raw := range bytes.Split(data, []byte("\n")) {
		var l workerLine
		if json.Unmarshal(raw, &l) != nil || l.Msg != msg || (tenant != "" && l.TenantID != tenant) {
			continue
		}
		out = append(out, l)
	}
	return out
}

// waitUntil checks cond every 50 ms until it holds, failing t at the deadline or as soon as the
// stack (or w, when given) fails: a condition wait, so a fast run is not slowed by a guess.
func waitUntil(t *testing.T, st *stack.Stack, w *stack.WorkerProc, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(within)
	var exited <-chan struct{}
	if w != nil {
		exited = w.Done()
	}
	for !cond() {
		select {
		case <-st.Failed():
			t.Fatalf("waiting for %s: stack failed: %v", what, st.Err())
		case <-exited:
			t.Fatalf("waiting for %s: the worker exited", what)
		case <-deadline:
			t.Fatalf("%s: not within %v", what, within)
		case <-time.After(50 * time.Millisecond):
		}
	}
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

func dumpLogs(t *testing.T, dir string) { t.Log(stack.LogTails(dir, 30)) }

// testLog sends the stack's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
