package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trigger-api/trigger-api/pkg/demo"
	"github.com/trigger-api/trigger-api/pkg/proc"
)

// DemoResult is what the demo saw.
type DemoResult = demo.Result

// Demo replays the seed's demo sequence (§9) through the gateway of a running stack, printing
// every call and its answer to w. The stack's own worker is already consuming its tenants, so
// the demo creates two fresh tenants and runs a worker of its own for them. Any answer other
// than the expected one ends it with an error.
func Demo(ctx context.Context, w io.Writer, env Env) (DemoResult, error) {
	// The demo's lines and its worker's share one stream, so they never break up or mix.
	stream := proc.NewStream(w)
	out := stream.Prefixed("")
	var res DemoResult

	suffix := demo.RandomSuffix()
	res.TenantA, res.TenantB = "demo-acme-"+suffix, "demo-globex-"+suffix
	demo.Step(out, "1. Tenants and API keys: %s (A) and %s (B), created through the admin API", res.TenantA, res.TenantB)
	gw := demo.Endpoints{Admin: env.GatewayURL, Ingest: env.GatewayURL, Inbox: env.GatewayURL}
	a, b, err := demo.NewTenants(ctx, out, gw, env.AdminToken, res.TenantA, res.TenantB)
	if err != nil {
		return res, unreachable(err, env)
	}
	if err := demo.PublishAndList(ctx, out, &a, &b, &res); err != nil {
		return res, err
	}

	demo.Step(out, "   Isolation: tenant B's key on tenant A's event → 404, as if it did not exist")
	if err := demo.Isolated(ctx, b, a.Event); err != nil {
		return res, err
	}

	demo.Step(out, "6. Run the worker (%s) for both tenants → events processed and acknowledged", env.WorkerBin)
	tenants := []demo.Tenant{a, b}
	if res.Processed, err = runWorker(ctx, stream, out, env, tenants); err != nil {
		return res, err
	}
	if err := demo.Settled(ctx, out, tenants); err != nil {
		return res, err
	}
	fmt.Fprintf(out, "\nDemo passed: each tenant saw only its own event, the worker processed and acknowledged both, and both inboxes are empty.\n")
	return res, nil
}

// unreachable explains the usual cause of a first call failing: no stack behind the env file.
func unreachable(err error, env Env) error {
	return fmt.Errorf("%w\nis the stack running at %s? start it with `make run`", err, env.GatewayURL)
}

// workerLog keeps the demo worker's output lines, which the demo reads while the worker
// writes them.
type workerLog struct {
	mu    sync.Mutex
	lines strings.Builder
}

func (l *workerLog) add(line []byte, _ time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines.Write(line)
	l.lines.WriteByte('\n')
}

func (l *workerLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines.String()
}

// runWorker runs the real worker binary for the demo's tenants until it has logged every event
// as processed, the inbox reports each one delivered and both inboxes are empty; then it stops
// the worker with SIGTERM as Kubernetes would and checks it exited cleanly. An empty inbox
// alone is not enough: an event leaves it when the inbox leases it, while the pull's answer
// may still be on its way to the worker, and the SIGTERM would make the worker hand it back.
func runWorker(ctx context.Context, stream *proc.Stream, out io.Writer, env Env, tenants []demo.Tenant) ([]string, error) {
	keys := make([]string, len(tenants))
	for i, t := range tenants {
		keys[i] = t.Key
	}
	logs := &workerLog{}
	p, err := proc.Start(proc.Options{
		Name: "worker", Path: env.WorkerBin,
		// The worker's defaults: long polls, so it takes each event as soon as it is visible.
		Env: append(childEnviron(),
			"TRIGGER_INBOX_URL="+env.GatewayURL,
			"TRIGGER_API_KEYS="+strings.Join(keys, ","),
			"TRIGGER_SHUTDOWN_TIMEOUT="+childShutdown,
			"TRIGGER_REQUEST_TIMEOUT="+workerRequestTimeout,
		),
		Stream: stream, Prefix: "  worker | ",
		OnLine: logs.add,
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "   (waiting until the worker has processed and acknowledged every event, at most %v)\n", demo.Deadline)
	if err := waitWorkerSettled(ctx, p, logs, tenants); err != nil {
		_ = p.Stop(stopGrace)
		return nil, err
	}
	fmt.Fprintf(out, "   every event processed and delivered, both inboxes empty; stopping the worker (SIGTERM)\n")
	if err := p.Stop(stopGrace); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	return processedIn(logs.String(), demo.EventsOf(tenants)), nil
}

// waitWorkerSettled polls workerSettled until it holds, the worker ends, ctx ends or the
// demo's deadline passes.
func waitWorkerSettled(ctx context.Context, p *proc.Process, logs *workerLog, tenants []demo.Tenant) error {
	deadline := time.Now().Add(demo.Deadline)
	for {
		settled, state, err := workerSettled(ctx, logs.String(), tenants)
		if err != nil || settled {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%v after starting the worker: %s", demo.Deadline, state)
		}
		select {
		case <-p.Done():
			return fmt.Errorf("worker exited before acknowledging every event (%v): %s", p.Err(), state)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(demo.PollInterval):
		}
	}
}

// workerSettled reports whether the worker's log has a processing line for every tenant's
// event, the inbox reports each one delivered, and no tenant's inbox lists anything; state
// says what is missing. The cheap log check comes first, so the API is asked only once it
// holds.
func workerSettled(ctx context.Context, logs string, tenants []demo.Tenant) (bool, string, error) {
	processed := processedIn(logs, demo.EventsOf(tenants))
	for _, t := range tenants {
		if !slices.Contains(processed, t.Event) {
			return false, fmt.Sprintf("the worker's log has no processing line for %s", t.Event), nil
		}
	}
	for _, t := range tenants {
		status, err := demo.EventStatus(ctx, t.Quiet.Ingest, t.Event)
		if err != nil {
			return false, "", err
		}
		if status != "delivered" {
			return false, fmt.Sprintf("%s is %s, not delivered", t.Event, status), nil
		}
	}
	for _, t := range tenants {
		ids, err := demo.ReadInbox(ctx, t.Quiet.Inbox)
		if err != nil {
			return false, "", err
		}
		if len(ids) != 0 {
			return false, fmt.Sprintf("tenant %s's inbox still lists %v", t.Name, ids), nil
		}
	}
	return true, "", nil
}

// processedIn returns the wanted event ids that have a "processing event" line in logs, in the
// order of those lines. A line that does not parse, such as a piece of one too long to pass
// whole, is skipped.
func processedIn(logs string, want []string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Msg     string `json:"msg"`
			EventID string `json:"event_id"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "processing event" {
			continue
		}
		if slices.Contains(want, l.EventID) {
			out = append(out, l.EventID)
		}
	}
	return out
}
