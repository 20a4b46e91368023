package stack

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
	"github.com/trigger-api/trigger-api/pkg/proc"
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

// demoTenant is a tenant the demo created, with two clients of its key: printed shows every
// call, quiet none, for the polls while the worker runs, which would drown the output.
type demoTenant struct {
	name    string // A or B, as the steps call it
	key     string
	printed *client.Client
	quiet   *client.Client
	event   string // the one event it posted
}

// Demo replays the seed's demo sequence (§9) through the gateway of a running stack, printing
// every call and its answer to w. The stack's own worker is already consuming its tenants, so
// the demo creates two fresh tenants and runs a worker of its own for them. Any answer other
// than the expected one ends it with an error.
func Demo(ctx context.Context, w io.Writer, env Env) (DemoResult, error) {
	// The demo's lines and its worker's share one stream, so they never break up or mix.
	stream := proc.NewStream(w)
	out := stream.Prefixed("")
	var res DemoResult

	suffix := randomSuffix()
	res.TenantA, res.TenantB = "demo-acme-"+suffix, "demo-globex-"+suffix
	step(out, "1. Tenants and API keys: %s (A) and %s (B), created through the admin API", res.TenantA, res.TenantB)
	a, b, err := demoTenants(ctx, out, env, res.TenantA, res.TenantB)
	if err != nil {
		return res, err
	}
	if err := publishAndList(ctx, out, &a, &b, &res); err != nil {
		return res, err
	}

	step(out, "   Isolation: tenant B's key on tenant A's event → 404, as if it did not exist")
	if err := isolated(ctx, b, a.event); err != nil {
		return res, err
	}

	step(out, "6. Run the worker (%s) for both tenants → events processed and acknowledged", env.WorkerBin)
	tenants := []demoTenant{a, b}
	if res.Processed, err = runWorker(ctx, stream, out, env, tenants); err != nil {
		return res, err
	}
	if err := settledAfterWorker(ctx, out, tenants); err != nil {
		return res, err
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

// demoTenants creates tenants A and B through the admin API, with a key each, printing the
// calls to out.
func demoTenants(ctx context.Context, out io.Writer, env Env, idA, idB string) (a, b demoTenant, err error) {
	printing := &http.Client{Timeout: callTimeout, Transport: &printer{next: http.DefaultTransport, out: out}}
	// No retries anywhere in the demo: it shows, and judges, the first answer to each call.
	admin, err := client.NewAdmin(env.GatewayURL, env.AdminToken, client.WithHTTPClient(printing), client.WithRetries(0))
	if err != nil {
		return a, b, err
	}
	keyA, err := createTenantWithKey(ctx, admin, idA, "Demo Acme")
	if err != nil {
		return a, b, unreachable(err, env)
	}
	keyB, err := createTenantWithKey(ctx, admin, idB, "Demo Globex")
	if err != nil {
		return a, b, err
	}
	if a, err = newDemoTenant(env.GatewayURL, "A", keyA, printing); err != nil {
		return a, b, err
	}
	b, err = newDemoTenant(env.GatewayURL, "B", keyB, printing)
	return a, b, err
}

func newDemoTenant(baseURL, name, key string, printing *http.Client) (demoTenant, error) {
	t := demoTenant{name: name, key: key}
	var err error
	if t.printed, err = client.New(baseURL, key, client.WithHTTPClient(printing), client.WithRetries(0)); err != nil {
		return t, err
	}
	t.quiet, err = client.New(baseURL, key, client.WithHTTPClient(&http.Client{Timeout: callTimeout}), client.WithRetries(0))
	return t, err
}

// publishAndList posts one event as each tenant, then checks that each inbox lists its own
// event and nothing else.
func publishAndList(ctx context.Context, out io.Writer, a, b *demoTenant, res *DemoResult) error {
	var err error
	step(out, "2. POST /events as tenant A → stored")
	// The seed's bodies, kept as written: the service stores the exact bytes.
	if a.event, err = postEvent(ctx, a.printed,
		`{"event_type":"customer.created","customer_id":"123","email":"alice@example.com"}`); err != nil {
		return err
	}
	res.EventA = a.event
	step(out, "3. POST /events as tenant B → stored separately")
	if b.event, err = postEvent(ctx, b.printed,
		`{"event_type":"invoice.paid","invoice_id":"inv_8912","amount":3200}`); err != nil {
		return err
	}
	res.EventB = b.event

	step(out, "4. GET /inbox as tenant A → only A's events")
	if res.InboxA, err = inboxHolds(ctx, *a, b.event); err != nil {
		return err
	}
	step(out, "5. GET /inbox as tenant B → only B's events")
	res.InboxB, err = inboxHolds(ctx, *b, a.event)
	return err
}

func postEvent(ctx context.Context, c *client.Client, body string) (string, error) {
	acc, _, err := c.Publish(ctx, json.RawMessage(body), "")
	if err != nil {
		return "", err
	}
	if acc.EventID == "" || acc.Status != api.StatusAccepted {
		return "", fmt.Errorf("POST /events: want an event_id and status accepted, got %+v", acc)
	}
	return acc.EventID, nil
}

func readInbox(ctx context.Context, c *client.Client) ([]string, error) {
	page, err := c.Inbox(ctx, client.InboxQuery{Limit: api.MaxListLimit})
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, e := range page.Events {
		ids = append(ids, e.EventID)
	}
	return ids, nil
}

// inboxHolds reads a fresh tenant's inbox until it lists the tenant's event, failing at once
// if it ever lists the other tenant's or anything else. It reads more than once only if the
// store's index lags the write, which DynamoDB allows.
func inboxHolds(ctx context.Context, t demoTenant, other string) ([]string, error) {
	deadline := time.Now().Add(demoDeadline)
	for {
		ids, err := readInbox(ctx, t.printed)
		if err != nil {
			return nil, err
		}
		if slices.Contains(ids, other) {
			return ids, fmt.Errorf("isolation broken: tenant %s's inbox lists the other tenant's event %s", t.name, other)
		}
		for _, id := range ids {
			if id != t.event {
				return ids, fmt.Errorf("tenant %s's inbox lists %s, which it never posted", t.name, id)
			}
		}
		if len(ids) == 1 {
			return ids, nil
		}
		if time.Now().After(deadline) {
			return ids, fmt.Errorf("tenant %s's inbox does not list its event %s after %v", t.name, t.event, demoDeadline)
		}
		if err := client.Sleep(ctx, demoPollInterval); err != nil {
			return ids, err
		}
	}
}

// isolated checks that tenant B's key finds nothing of tenant A's event: a read and an ack
// both answer 404, as for an event that does not exist.
func isolated(ctx context.Context, b demoTenant, eventA string) error {
	_, err := b.printed.GetEvent(ctx, eventA)
	if err := wantNotFound(err, "GET /events/"+eventA); err != nil {
		return err
	}
	_, err = b.printed.Ack(ctx, eventA, "")
	return wantNotFound(err, "POST /ack of "+eventA)
}

func wantNotFound(err error, call string) error {
	e, ok := errors.AsType[*client.Error](err)
	switch {
	case err == nil:
		return fmt.Errorf("%s with tenant B's key on tenant A's event: want 404, got a success", call)
	case !ok:
		return err
	case e.Status != http.StatusNotFound:
		return fmt.Errorf("%s with tenant B's key on tenant A's event: want 404, got %d", call, e.Status)
	}
	return nil
}

// settledAfterWorker checks what the worker left behind: both inboxes empty, and each event
// delivered.
func settledAfterWorker(ctx context.Context, out io.Writer, tenants []demoTenant) error {
	step(out, "7. GET /inbox again → no undelivered events")
	for _, t := range tenants {
		ids, err := readInbox(ctx, t.printed)
		if err != nil {
			return err
		}
		if len(ids) != 0 {
			return fmt.Errorf("tenant %s's inbox still lists %v after the worker ran", t.name, ids)
		}
	}
	step(out, "   Lifecycle: GET /events/{id} → delivered")
	for _, t := range tenants {
		status, err := eventStatus(ctx, t.printed, t.event)
		if err != nil {
			return err
		}
		if status != "delivered" {
			return fmt.Errorf("GET /events/%s: want status delivered, got %q", t.event, status)
		}
	}
	return nil
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
func runWorker(ctx context.Context, stream *proc.Stream, out io.Writer, env Env, tenants []demoTenant) ([]string, error) {
	keys := make([]string, len(tenants))
	for i, t := range tenants {
		keys[i] = t.key
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
	fmt.Fprintf(out, "   (waiting until the worker has processed and acknowledged every event, at most %v)\n", demoDeadline)
	if err := waitWorkerSettled(ctx, p, logs, tenants); err != nil {
		_ = p.Stop(stopGrace)
		return nil, err
	}
	fmt.Fprintf(out, "   every event processed and delivered, both inboxes empty; stopping the worker (SIGTERM)\n")
	if err := p.Stop(stopGrace); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	return processedIn(logs.String(), eventsOf(tenants)), nil
}

// waitWorkerSettled polls workerSettled until it holds, the worker ends, ctx ends or the
// demo's deadline passes.
func waitWorkerSettled(ctx context.Context, p *proc.Process, logs *workerLog, tenants []demoTenant) error {
	deadline := time.Now().Add(demoDeadline)
	for {
		settled, state, err := workerSettled(ctx, logs.String(), tenants)
		if err != nil || settled {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%v after starting the worker: %s", demoDeadline, state)
		}
		select {
		case <-p.Done():
			return fmt.Errorf("worker exited before acknowledging every event (%v): %s", p.Err(), state)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(demoPollInterval):
		}
	}
}

// workerSettled reports whether the worker's log has a processing line for every tenant's
// event, the inbox reports each one delivered, and no tenant's inbox lists anything; state
// says what is missing. The cheap log check comes first, so the API is asked only once it
// holds.
func workerSettled(ctx context.Context, logs string, tenants []demoTenant) (bool, string, error) {
	processed := processedIn(logs, eventsOf(tenants))
	for _, t := range tenants {
		if !slices.Contains(processed, t.event) {
			return false, fmt.Sprintf("the worker's log has no processing line for %s", t.event), nil
		}
	}
	for _, t := range tenants {
		status, err := eventStatus(ctx, t.quiet, t.event)
		if err != nil {
			return false, "", err
		}
		if status != "delivered" {
			return false, fmt.Sprintf("%s is %s, not delivered", t.event, status), nil
		}
	}
	for _, t := range tenants {
		ids, err := readInbox(ctx, t.quiet)
		if err != nil {
			return false, "", err
		}
		if len(ids) != 0 {
			return false, fmt.Sprintf("tenant %s's inbox still lists %v", t.name, ids), nil
		}
	}
	return true, "", nil
}

func eventsOf(tenants []demoTenant) []string {
	ids := make([]string, len(tenants))
	for i, t := range tenants {
		ids[i] = t.event
	}
	return ids
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

// eventStatus reads an event's lifecycle status through GET /events/{id}.
func eventStatus(ctx context.Context, c *client.Client, id string) (string, error) {
	ev, err := c.GetEvent(ctx, id)
	if err != nil {
		return "", err
	}
	return ev.Status, nil
}
