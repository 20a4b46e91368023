package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
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
	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/client"
)

// TestEndToEnd builds the real binaries, starts DynamoDB Local, the three services, the gateway
// and the worker exactly as `make run` does, and checks the seed's demo and the guarantees
// around it. DynamoDB Local or Java missing fails it: nothing here is skipped.
func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e := startStack(ctx, t)

	t.Run("demo-sequence-keeps-tenants-apart", func(t *testing.T) { demoKeepsTenantsApart(ctx, t, e.st) })
	var acmeEvent string
	t.Run("running-worker-delivers-acme-event", func(t *testing.T) { workerDeliversAcmeEvent(t, e, &acmeEvent) })
	t.Run("cross-tenant-calls-answer-404", func(t *testing.T) { crossTenantCallsAnswer404(t, e.st, acmeEvent) })
	t.Run("worker-demo-command-through-each-service", func(t *testing.T) { workerDemoCommand(ctx, t, e) })
	t.Run("two-worker-replicas-process-each-event-once", func(t *testing.T) { replicasProcessEachEventOnce(ctx, t, e.st) })
	t.Run("component-death-stops-the-stack", func(t *testing.T) { componentDeathStopsTheStack(ctx, t, e) })
	// Last: it stops the stack the others use.
	t.Run("stop-leaves-no-child-process", func(t *testing.T) { stopLeavesNoChildProcess(t, e.st) })
}

// e2eStack is the stack under test and the directories it was started with.
type e2eStack struct {
	st               *stack.Stack
	binDir, stateDir string
}

func startStack(ctx context.Context, t *testing.T) e2eStack {
	t.Helper()
	e := e2eStack{binDir: t.TempDir(), stateDir: t.TempDir()}
	st, err := stack.Start(ctx, stack.Options{
		BinDir:      e.binDir,
		BuildFlags:  childBuildFlags,
		StateDir:    e.stateDir,
		GatewayAddr: "127.0.0.1:0",
		Progress:    testLog{t},
	})
	if err != nil {
		t.Fatalf("start the stack: %v", err)
	}
	t.Cleanup(func() {
		_ = st.Stop()
		if t.Failed() {
			dumpLogs(t, e.stateDir)
		}
	})
	e.st = st
	return e
}

// tenantClient calls the stack as a tenant's producer or consumer does, through the Go client,
// with each call bounded by timeout and none retried: the checks judge the stack's first
// answer, so a 429 or 503 it should not give fails the check that met it instead of being
// hidden by a second attempt.
func tenantClient(t *testing.T, gateway, key string, timeout time.Duration) *client.Client {
	t.Helper()
	c, err := client.New(gateway, key, client.WithHTTPClient(&http.Client{Timeout: timeout}), client.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// statusOf is the HTTP status of an answer the client reported as an error, 0 if none came.
func statusOf(err error) int {
	if e, ok := errors.AsType[*client.Error](err); ok {
		return e.Status
	}
	return 0
}

func demoKeepsTenantsApart(ctx context.Context, t *testing.T, st *stack.Stack) {
	acme, globex := st.Keys["acme"], st.Keys["globex"]
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
}

// workerDemoCommand runs `worker demo`, what the chart's helm test runs, against each service's
// own address, as the in-cluster Services are reached, with the admin tokens as the Secret
// holds them. It must pass, show the calls, keep the token out of its output, and leave both of
// its tenants suspended.
func workerDemoCommand(ctx context.Context, t *testing.T, e e2eStack) {
	cmd := exec.CommandContext(ctx, filepath.Join(e.binDir, stack.Worker), "demo")
	cmd.Env = append(withoutTrigger(os.Environ()),
		"TRIGGER_ADMIN_URL="+e.st.ServiceURLs[stack.KeysAdmin],
		"TRIGGER_INGEST_URL="+e.st.ServiceURLs[stack.Ingest],
		"TRIGGER_INBOX_URL="+e.st.ServiceURLs[stack.Inbox],
		"TRIGGER_ADMIN_TOKENS="+e.st.AdminToken+",\nspare:"+strings.Repeat("s", 40),
		"TRIGGER_DEMO_TENANT_PREFIX=e2e",
		"OTEL_TRACES_EXPORTER=none",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("worker demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"→ POST /admin/tenants", "→ POST /events", "→ POST /inbox/pull", "→ POST /ack", "Demo passed", "Suspended the demo's tenants"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("worker demo output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), e.st.AdminToken) {
		t.Error("worker demo output shows the admin token")
	}
	admin, err := client.NewAdmin(e.st.GatewayURL, e.st.AdminToken, client.WithHTTPClient(&http.Client{Timeout: 15 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	list, err := admin.ListTenants(ctx, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	suspended := 0
	for _, tn := range list.Tenants {
		if strings.HasPrefix(tn.TenantID, "e2e-") {
			if tn.Status != "suspended" {
				t.Errorf("the demo left tenant %s %s", tn.TenantID, tn.Status)
			}
			suspended++
		}
	}
	if suspended != 2 {
		t.Errorf("%d demo tenants, want its two", suspended)
	}
}

func withoutTrigger(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "TRIGGER_") {
			out = append(out, kv)
		}
	}
	return out
}

// workerDeliversAcmeEvent publishes an event for acme, sets *published to its id as soon as it
// is accepted, and waits for the stack's worker to deliver it.
func workerDeliversAcmeEvent(t *testing.T, e e2eStack, published *string) {
	acmeKey := e.st.Keys["acme"]
	acme := tenantClient(t, e.st.GatewayURL, acmeKey, 15*time.Second)
	acc, replayed, err := acme.Publish(t.Context(), json.RawMessage(`{"event_type":"customer.created","customer_id":"e2e"}`), "")
	if err != nil {
		t.Fatalf("POST /events: %v", err)
	}
	// A publish without an idempotency key is new: 202 accepted, never a 200 replay.
	if replayed || acc.Status != api.StatusAccepted || acc.EventID == "" {
		t.Fatalf("POST /events answer %+v (replayed %v)", acc, replayed)
	}
	id := acc.EventID
	*published = id
	waitUntil(t, e.st, nil, 30*time.Second, "acme's event delivered", func() bool {
		ev, err := acme.GetEvent(t.Context(), id)
		if err != nil {
			t.Fatalf("GET /events/%s: %v", id, err)
		}
		return ev.Status == "delivered"
	})
	logs, err := os.ReadFile(filepath.Join(e.stateDir, "worker.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !hasProcessingLine(logs, "acme", id) {
		t.Errorf("worker.log has no processing line for acme's %s", id)
	}
	if bytes.Contains(logs, []byte(acmeKey)) || bytes.Contains(logs, []byte(`"customer_id":"e2e"`)) {
		t.Error("worker.log contains a key or a payload")
	}
}

func crossTenantCallsAnswer404(t *testing.T, st *stack.Stack, acmeEvent string) {
	if acmeEvent == "" {
		t.Fatal("no acme event from the previous step")
	}
	acme := tenantClient(t, st.GatewayURL, st.Keys["acme"], 15*time.Second)
	globex := tenantClient(t, st.GatewayURL, st.Keys["globex"], 15*time.Second)
	if _, err := globex.GetEvent(t.Context(), acmeEvent); statusOf(err) != http.StatusNotFound {
		t.Errorf("globex GET /events/<acme's id>: %v, want 404", err)
	}
	if _, err := globex.Ack(t.Context(), acmeEvent, ""); statusOf(err) != http.StatusNotFound {
		t.Errorf("globex POST /ack <acme's id>: %v, want 404", err)
	}
	if _, err := acme.GetEvent(t.Context(), acmeEvent); err != nil {
		t.Errorf("acme GET /events/<its own id>: %v, want 200", err)
	}
}

// The two-replica check: one tenant, replicaEvents events, two workers competing for them.
const replicaTenant, replicaEvents = "initech", 300

// replicaRun is what the steps of the two-replica check hand on to each other.
type replicaRun struct {
	st         *stack.Stack
	key        string
	replicas   []*stack.WorkerProc
	start      time.Time
	posted     []string // the ids the ingest accepted
	itemErrors int      // items it answered with an error, posted again as new events
}

func replicasProcessEachEventOnce(ctx context.Context, t *testing.T, st *stack.Stack) {
	r := &replicaRun{st: st}
	apitest.RunSteps(t,
		apitest.Step{Name: "replicas-compete-from-the-start", Run: func(t *testing.T) { r.startReplicas(ctx, t) }},
		apitest.Step{Name: "events-posted", Run: r.postEvents},
		apitest.Step{Name: "all-acknowledged-and-inbox-empty", Run: r.waitDrained},
		apitest.Step{Name: "replicas-exit-cleanly", Run: r.stopReplicas},
		apitest.Step{Name: "each-event-processed-and-acknowledged-once", Run: r.checkLogs},
		apitest.Step{Name: "inbox-records-each-event-delivered-once", Run: r.checkInbox},
	)
}

func (r *replicaRun) startReplicas(ctx context.Context, t *testing.T) {
	key, err := r.st.CreateTenant(ctx, replicaTenant)
	if err != nil {
		t.Fatal(err)
	}
	r.key = key
	// A lease far longer than the drain takes: an event can reach both replicas only if
	// the inbox or the worker breaks a lease, so exactly once is what to expect. Debug
	// level logs each acknowledgement the inbox confirmed.
	env := []string{"TRIGGER_LOG_LEVEL=debug", "TRIGGER_VISIBILITY_TIMEOUT=300s"}
	for i := range 2 {
		w, err := r.st.StartWorker(fmt.Sprintf("replica-%d", i+1), []string{key}, env...)
		if err != nil {
			t.Fatal(err)
		}
		r.replicas = append(r.replicas, w)
	}
	// Both consume before the first event exists, so they compete for every one.
	for _, w := range r.replicas {
		waitUntil(t, r.st, w, time.Minute, "a replica running", func() bool {
			return len(workerLines(t, w.LogPath(), "running", "")) == 1
		})
	}
}

func (r *replicaRun) postEvents(t *testing.T) {
	r.start = time.Now()
	r.posted, r.itemErrors = postEvents(t, r.st.GatewayURL, r.key, replicaEvents)
	t.Logf("posted %d events in %v (%d item errors answered and posted again)", replicaEvents, time.Since(r.start).Round(time.Millisecond), r.itemErrors)
}

func (r *replicaRun) waitDrained(t *testing.T) {
	inbox := tenantClient(t, r.st.GatewayURL, r.key, 15*time.Second)
	waitUntil(t, r.st, nil, 2*time.Minute, "every event acknowledged and the inbox empty", func() bool {
		got := r.acked(t)
		for _, id := range r.posted {
			if got[id] == 0 {
				return false
			}
		}
		page, err := inbox.Inbox(t.Context(), client.InboxQuery{Limit: 100})
		if err != nil {
			t.Fatalf("GET /inbox: %v", err)
		}
		return len(page.Events) == 0
	})
	t.Logf("all acknowledged and the inbox empty %v after the first post", time.Since(r.start).Round(time.Millisecond))
}

// acked counts the acknowledgements the inbox confirmed to either replica, per event.
func (r *replicaRun) acked(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, w := range r.replicas {
		for _, l := range workerLines(t, w.LogPath(), "event acknowledged", replicaTenant) {
			out[l.EventID]++
		}
	}
	return out
}

func (r *replicaRun) stopReplicas(t *testing.T) {
	for i, w := range r.replicas {
		if err := w.Stop(); err != nil {
			t.Errorf("replica %d did not exit cleanly on SIGTERM: %v", i+1, err)
		}
	}
}

func (r *replicaRun) checkLogs(t *testing.T) {
	processed := map[string]int{}
	for i, w := range r.replicas {
		lines := workerLines(t, w.LogPath(), "processing event", replicaTenant)
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
		for _, bad := range []string{"lease lost", "event nacked", `"level":"error"`, r.key, "e2e-replica-marker"} {
			if bytes.Contains(logs, []byte(bad)) {
				t.Errorf("replica %d's log contains %q", i+1, bad)
			}
		}
	}
	ackCounts := r.acked(t)
	for _, id := range r.posted {
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
		if !slices.Contains(r.posted, id) && r.itemErrors == 0 {
			t.Errorf("%s processed although nobody posted it for %s", id, replicaTenant)
		}
	}
}

// checkInbox: the inbox's own record agrees, every event delivered, leased once.
func (r *replicaRun) checkInbox(t *testing.T) {
	c := tenantClient(t, r.st.GatewayURL, r.key, 15*time.Second)
	ch := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for id := range ch {
				if err := checkDelivered(t.Context(), c, id); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for _, id := range r.posted {
		ch <- id
	}
	close(ch)
	wg.Wait()
}

func componentDeathStopsTheStack(ctx context.Context, t *testing.T, e e2eStack) {
	// A second stack on the first one's DynamoDB, with tables of its own.
	other, err := stack.Start(ctx, stack.Options{
		BinDir:           e.binDir,
		NoBuild:          true,
		StateDir:         t.TempDir(),
		GatewayAddr:      "127.0.0.1:0",
		DynamoDBEndpoint: e.st.DynamoDBEndpoint,
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
}

func stopLeavesNoChildProcess(t *testing.T, st *stack.Stack) {
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
	// A probe of the listening socket, not a call of the API: any answer at all fails it.
	if resp, err := http.Get(st.GatewayURL + "/inbox"); err == nil {
		_ = resp.Body.Close()
		t.Error("the gateway still answers")
	}
	if _, err := os.Stat(st.EnvFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("env file left behind: %v", err)
	}
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
	c := tenantClient(t, gateway, key, time.Minute)
	type batchResult struct {
		ids    []string
		failed int
		err    error
	}
	post := func(first, count int) batchResult {
		items := make([]json.RawMessage, count)
		for j := range items {
			items[j] = json.RawMessage(fmt.Sprintf(`{"event_type":"order.placed","order":%d,"note":"e2e-replica-marker"}`, first+j))
		}
		res, err := c.PublishBatch(t.Context(), items)
		if err != nil || len(res.Results) != count {
			return batchResult{err: fmt.Errorf("POST /events/batch: %d results for %d (%v)", len(res.Results), count, err)}
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
func checkDelivered(ctx context.Context, c *client.Client, id string) error {
	ev, err := c.GetEvent(ctx, id)
	if err != nil {
		return fmt.Errorf("GET /events/%s: %w, want delivered at delivery 1", id, err)
	}
	if ev.Status != "delivered" || ev.DeliveryCount != 1 {
		return fmt.Errorf("GET /events/%s: %s at delivery %d, want delivered at delivery 1", id, ev.Status, ev.DeliveryCount)
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
