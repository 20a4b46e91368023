package stack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// DemoResult is what the demo saw.
type DemoResult struct {
	TenantA, TenantB string
	EventA, EventB   string
	// InboxA and InboxB are the event ids each inbox listed before the worker ran.
	InboxA, InboxB []string
	// Processed are the event ids the worker logged as processed.
	Processed []string
}

const (
	demoDeadline     = 60 * time.Second
	demoPollInterval = 200 * time.Millisecond
)

// Demo replays the seed's demo sequence (§9) through the gateway of a running stack, printing
// every call and its answer to w. The stack's own worker is already consuming its tenants, so
// the demo creates two fresh tenants and runs a worker of its own for them. Any answer other
// than the expected one ends it with an error.
func Demo(ctx context.Context, w io.Writer, env Env) (DemoResult, error) {
	out := &syncWriter{w: w}
	api := newCaller(env.GatewayURL, out)
	quiet := newCaller(env.GatewayURL, nil)
	var res DemoResult

	suffix := randomSuffix()
	res.TenantA, res.TenantB = "demo-acme-"+suffix, "demo-globex-"+suffix

	step(out, "1. Tenants and API keys: %s (A) and %s (B), created through the admin API", res.TenantA, res.TenantB)
	keyA, err := api.createTenantWithKey(ctx, env.AdminToken, res.TenantA, "Demo Acme")
	if err != nil {
		return res, unreachable(err, env)
	}
	keyB, err := api.createTenantWithKey(ctx, env.AdminToken, res.TenantB, "Demo Globex")
	if err != nil {
		return res, err
	}

	step(out, "2. POST /events as tenant A → stored")
	// The seed's bodies, kept as written: the service stores the exact bytes.
	if res.EventA, err = postEvent(ctx, api, keyA,
		`{"event_type":"customer.created","customer_id":"123","email":"alice@example.com"}`); err != nil {
		return res, err
	}
	step(out, "3. POST /events as tenant B → stored separately")
	if res.EventB, err = postEvent(ctx, api, keyB,
		`{"event_type":"invoice.paid","invoice_id":"inv_8912","amount":3200}`); err != nil {
		return res, err
	}

	step(out, "4. GET /inbox as tenant A → only A's events")
	if res.InboxA, err = inboxHolds(ctx, api, keyA, "A", res.EventA, res.EventB); err != nil {
		return res, err
	}
	step(out, "5. GET /inbox as tenant B → only B's events")
	if res.InboxB, err = inboxHolds(ctx, api, keyB, "B", res.EventB, res.EventA); err != nil {
		return res, err
	}

	step(out, "   Isolation: tenant B's key on tenant A's event → 404, as if it did not exist")
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/events/" + res.EventA, nil},
		{http.MethodPost, "/ack", map[string]string{"event_id": res.EventA}},
	} {
		a, err := api.call(ctx, c.method, c.path, keyB, c.body)
		if err != nil {
			return res, err
		}
		if a.Status != http.StatusNotFound {
			return res, fmt.Errorf("%s %s with tenant B's key on tenant A's event: want 404, got %d", c.method, c.path, a.Status)
		}
	}

	step(out, "6. Run the worker (%s) for both tenants → events processed and acknowledged", env.WorkerBin)
	if res.Processed, err = runWorker(ctx, out, quiet, env, []string{keyA, keyB},
		[]demoEvent{{keyA, res.EventA}, {keyB, res.EventB}}); err != nil {
		return res, err
	}

	step(out, "7. GET /inbox again → no undelivered events")
	for _, t := range []struct{ name, key string }{{"A", keyA}, {"B", keyB}} {
		ids, _, err := readInbox(ctx, api, t.key)
		if err != nil {
			return res, err
		}
		if len(ids) != 0 {
			return res, fmt.Errorf("tenant %s's inbox still lists %v after the worker ran", t.name, ids)
		}
	}
	step(out, "   Lifecycle: GET /events/{id} → delivered")
	for _, t := range []demoEvent{{keyA, res.EventA}, {keyB, res.EventB}} {
		status, err := eventStatus(ctx, api, t.key, t.id)
		if err != nil {
			return res, err
		}
		if status != "delivered" {
			return res, fmt.Errorf("GET /events/%s: want status delivered, got %q", t.id, status)
		}
	}
	fmt.Fprintf(out, "\nDemo passed: each tenant saw only its own event, the worker processed and acknowledged both, and both inboxes are empty.\n")
	return res, nil
}

func step(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "\n== "+format+"\n", args...)
}

// unreachable explains the usual cause of a first call failing: no stack behind the env file.
func unreachable(err error, env Env) error {
	return fmt.Errorf("%w\nis the stack running at %s? start it with `make run`", err, env.GatewayURL)
}

func randomSuffix() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [4]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

func postEvent(ctx context.Context, api *caller, key, body string) (string, error) {
	a, err := api.call(ctx, http.MethodPost, "/events", key, json.RawMessage(body))
	if err != nil {
		return "", err
	}
	var acc struct {
		EventID string `json:"event_id"`
		Status  string `json:"status"`
	}
	if a.Status != http.StatusAccepted {
		return "", fmt.Errorf("POST /events: want 202, got %d", a.Status)
	}
	if err := a.decode(&acc); err != nil {
		return "", err
	}
	if acc.EventID == "" || acc.Status != "accepted" {
		return "", fmt.Errorf("POST /events: want an event_id and status accepted, got %s", a.Body)
	}
	return acc.EventID, nil
}

func readInbox(ctx context.Context, api *caller, key string) ([]string, answer, error) {
	a, err := api.call(ctx, http.MethodGet, "/inbox?limit=100", key, nil)
	if err != nil {
		return nil, a, err
	}
	if a.Status != http.StatusOK {
		return nil, a, fmt.Errorf("GET /inbox: want 200, got %d", a.Status)
	}
	var page struct {
		Events []struct {
			EventID string `json:"event_id"`
		} `json:"events"`
	}
	if err := a.decode(&page); err != nil {
		return nil, a, err
	}
	ids := []string{}
	for _, e := range page.Events {
		ids = append(ids, e.EventID)
	}
	return ids, a, nil
}

// inboxHolds reads a fresh tenant's inbox until it lists the tenant's event, failing at once
// if it ever lists the other tenant's or anything else. It reads more than once only if the
// store's index lags the write, which DynamoDB allows.
func inboxHolds(ctx context.Context, api *caller, key, name, own, other string) ([]string, error) {
	deadline := time.Now().Add(demoDeadline)
	for {
		ids, _, err := readInbox(ctx, api, key)
		if err != nil {
			return nil, err
		}
		if slices.Contains(ids, other) {
			return ids, fmt.Errorf("isolation broken: tenant %s's inbox lists the other tenant's event %s", name, other)
		}
		for _, id := range ids {
			if id != own {
				return ids, fmt.Errorf("tenant %s's inbox lists %s, which it never posted", name, id)
			}
		}
		if len(ids) == 1 {
			return ids, nil
		}
		if time.Now().After(deadline) {
			return ids, fmt.Errorf("tenant %s's inbox does not list its event %s after %v", name, own, demoDeadline)
		}
		if err := pause(ctx, demoPollInterval); err != nil {
			return ids, err
		}
	}
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// demoEvent is an event the demo posted, with the key of the tenant that owns it.
type demoEvent struct{ key, id string }

// runWorker runs the real worker binary for the demo's keys until it has logged every event as
// processed, the inbox reports each one delivered and both inboxes are empty; then it stops the
// worker with SIGTERM as Kubernetes would and checks it exited cleanly. An empty inbox alone is
// not enough: an event leaves it when the inbox leases it, while the pull's answer may still be
// on its way to the worker, and the SIGTERM would make the worker hand it back.
func runWorker(ctx context.Context, out io.Writer, quiet *caller, env Env, keys []string, want []demoEvent) ([]string, error) {
	var buf bytes.Buffer
	// exec's copy goroutine writes the worker's output while the demo reads it.
	logs := &syncWriter{w: &buf}
	readLogs := func() string {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		return buf.String()
	}
	cmd := exec.Command(env.WorkerBin)
	// The worker's defaults: long polls, so it takes each event as soon as it is visible.
	cmd.Env = append(childEnviron(),
		"TRIGGER_INBOX_URL="+env.GatewayURL,
		"TRIGGER_API_KEYS="+strings.Join(keys, ","),
		"TRIGGER_SHUTDOWN_TIMEOUT="+childShutdown,
		"TRIGGER_REQUEST_TIMEOUT="+workerRequestTimeout,
	)
	w := io.MultiWriter(logs, &prefixWriter{prefix: "  worker | ", out: out})
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 3 * time.Second
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() error {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case err := <-done:
			return err
		case <-time.After(stopGrace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return errors.New("worker did not stop on SIGTERM and was killed")
		}
	}

	fmt.Fprintf(out, "   (waiting until the worker has processed and acknowledged every event, at most %v)\n", demoDeadline)
	deadline := time.Now().Add(demoDeadline)
	for {
		settled, state, err := workerSettled(ctx, quiet, readLogs(), keys, want)
		if err != nil {
			_ = stop()
			return nil, err
		}
		if settled {
			break
		}
		if time.Now().After(deadline) {
			_ = stop()
			return nil, fmt.Errorf("%v after starting the worker: %s", demoDeadline, state)
		}
		select {
		case err := <-done:
			return nil, fmt.Errorf("worker exited before acknowledging every event (%v): %s", err, state)
		case <-ctx.Done():
			_ = stop()
			return nil, ctx.Err()
		case <-time.After(demoPollInterval):
		}
	}
	fmt.Fprintf(out, "   every event processed and delivered, both inboxes empty; stopping the worker (SIGTERM)\n")
	if err := stop(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	return processedIn(readLogs(), want), nil
}

// workerSettled reports whether the worker's log has a processing line for every wanted event,
// the inbox reports each one delivered, and no inbox of keys lists anything; state says what
// is missing. The cheap log check comes first, so the API is asked only once it holds.
func workerSettled(ctx context.Context, api *caller, logs string, keys []string, want []demoEvent) (bool, string, error) {
	processed := processedIn(logs, want)
	for _, ev := range want {
		if !slices.Contains(processed, ev.id) {
			return false, fmt.Sprintf("the worker's log has no processing line for %s", ev.id), nil
		}
	}
	for _, ev := range want {
		status, err := eventStatus(ctx, api, ev.key, ev.id)
		if err != nil {
			return false, "", err
		}
		if status != "delivered" {
			return false, fmt.Sprintf("%s is %s, not delivered", ev.id, status), nil
		}
	}
	for i, key := range keys {
		ids, _, err := readInbox(ctx, api, key)
		if err != nil {
			return false, "", err
		}
		if len(ids) != 0 {
			return false, fmt.Sprintf("inbox %d still lists %v", i+1, ids), nil
		}
	}
	return true, "", nil
}

// processedIn returns the wanted event ids that have a "processing event" line in logs, in the
// order of those lines. A line still being written does not parse and is left for later.
func processedIn(logs string, want []demoEvent) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Msg     string `json:"msg"`
			EventID string `json:"event_id"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "processing event" {
			continue
		}
		if slices.ContainsFunc(want, func(ev demoEvent) bool { return ev.id == l.EventID }) {
			out = append(out, l.EventID)
		}
	}
	return out
}

// eventStatus reads an event's lifecycle status through GET /events/{id}.
func eventStatus(ctx context.Context, api *caller, key, id string) (string, error) {
	a, err := api.call(ctx, http.MethodGet, "/events/"+id, key, nil)
	if err != nil {
		return "", err
	}
	if a.Status != http.StatusOK {
		return "", fmt.Errorf("GET /events/%s: want 200, got %d", id, a.Status)
	}
	var ev struct {
		Status string `json:"status"`
	}
	if err := a.decode(&ev); err != nil {
		return "", fmt.Errorf("GET /events/%s: %w", id, err)
	}
	return ev.Status, nil
}
