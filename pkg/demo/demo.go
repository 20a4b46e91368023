// Package demo replays the seed's demo sequence through the public and admin APIs with the typed
// client: two tenants, one event each, each inbox holding only its own, the other tenant's key
// finding nothing, then every event consumed and delivered. devstack's `make demo` runs it
// through its gateway with the real worker binary as consumer; `worker demo` runs it against a
// release's Services, consuming itself (the chart's `helm test`).
package demo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
)

// Deadline bounds each wait of the demo: for an index to list an event, for a consumer to
// settle everything.
const Deadline = 60 * time.Second

// PollInterval is the pace of those waits.
const PollInterval = 200 * time.Millisecond

// Endpoints are the base URLs of the three services; behind a gateway all three are the same.
type Endpoints struct {
	Admin, Ingest, Inbox string
}

// Clients are one key's clients of ingest and inbox.
type Clients struct {
	Ingest, Inbox *client.Client
}

// Tenant is a tenant the demo created, with two sets of clients of its key: Printed shows every
// call, Quiet none, for the polls while a consumer runs, which would drown the output.
type Tenant struct {
	Name    string // A or B, as the steps call it
	ID, Key string
	Printed Clients
	Quiet   Clients
	Event   string // the one event it posted
}

// Result is what the demo saw.
type Result struct {
	TenantA, TenantB string
	EventA, EventB   string
	// InboxA and InboxB are the event ids each inbox listed before the events were consumed.
	InboxA, InboxB []string
	// Processed are the event ids the consumer processed.
	Processed []string
}

// Step prints a step's heading.
func Step(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "\n== "+format+"\n", args...)
}

// RandomSuffix makes tenant ids of one run unique: four lower-case letters or digits.
func RandomSuffix() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [4]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// NewTenants creates tenants A and B (ids idA and idB) through the admin API, with a key each,
// printing the calls to out. No call is retried anywhere in the demo: it shows, and judges, the
// first answer to each.
func NewTenants(ctx context.Context, out io.Writer, ep Endpoints, adminToken, idA, idB string) (a, b Tenant, err error) {
	printing := &http.Client{Timeout: CallTimeout, Transport: &Printer{Next: http.DefaultTransport, Out: out}}
	admin, err := client.NewAdmin(ep.Admin, adminToken, client.WithHTTPClient(printing), client.WithRetries(0))
	if err != nil {
		return a, b, err
	}
	a = Tenant{Name: "A", ID: idA}
	b = Tenant{Name: "B", ID: idB}
	for _, t := range []*Tenant{&a, &b} {
		if t.Key, err = CreateTenantWithKey(ctx, admin, t.ID, "Demo "+t.ID); err != nil {
			return a, b, err
		}
		if t.Printed, err = clientsOf(ep, t.Key, printing); err != nil {
			return a, b, err
		}
		if t.Quiet, err = clientsOf(ep, t.Key, &http.Client{Timeout: CallTimeout}); err != nil {
			return a, b, err
		}
	}
	return a, b, nil
}

func clientsOf(ep Endpoints, key string, h *http.Client) (Clients, error) {
	ingest, err := client.New(ep.Ingest, key, client.WithHTTPClient(h), client.WithRetries(0))
	if err != nil {
		return Clients{}, err
	}
	inbox, err := client.New(ep.Inbox, key, client.WithHTTPClient(h), client.WithRetries(0))
	return Clients{Ingest: ingest, Inbox: inbox}, err
}

// PublishAndList posts one event as each tenant, then checks that each inbox lists its own
// event and nothing else.
func PublishAndList(ctx context.Context, out io.Writer, a, b *Tenant, res *Result) error {
	var err error
	Step(out, "2. POST /events as tenant A → stored")
	// The seed's bodies, kept as written: the service stores the exact bytes.
	if a.Event, err = postEvent(ctx, a.Printed.Ingest,
		`{"event_type":"customer.created","customer_id":"123","email":"alice@example.com"}`); err != nil {
		return err
	}
	res.EventA = a.Event
	Step(out, "3. POST /events as tenant B → stored separately")
	if b.Event, err = postEvent(ctx, b.Printed.Ingest,
		`{"event_type":"invoice.paid","invoice_id":"inv_8912","amount":3200}`); err != nil {
		return err
	}
	res.EventB = b.Event

	Step(out, "4. GET /inbox as tenant A → only A's events")
	if res.InboxA, err = inboxHolds(ctx, *a, b.Event); err != nil {
		return err
	}
	Step(out, "5. GET /inbox as tenant B → only B's events")
	res.InboxB, err = inboxHolds(ctx, *b, a.Event)
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

// ReadInbox lists the ids of a tenant's undelivered events.
func ReadInbox(ctx context.Context, c *client.Client) ([]string, error) {
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
func inboxHolds(ctx context.Context, t Tenant, other string) ([]string, error) {
	deadline := time.Now().Add(Deadline)
	for {
		ids, err := ReadInbox(ctx, t.Printed.Inbox)
		if err != nil {
			return nil, err
		}
		if slices.Contains(ids, other) {
			return ids, fmt.Errorf("isolation broken: tenant %s's inbox lists the other tenant's event %s", t.Name, other)
		}
		for _, id := range ids {
			if id != t.Event {
				return ids, fmt.Errorf("tenant %s's inbox lists %s, which it never posted", t.Name, id)
			}
		}
		if len(ids) == 1 {
			return ids, nil
		}
		if time.Now().After(deadline) {
			return ids, fmt.Errorf("tenant %s's inbox does not list its event %s after %v", t.Name, t.Event, Deadline)
		}
		if err := client.Sleep(ctx, PollInterval); err != nil {
			return ids, err
		}
	}
}

// Isolated checks that tenant B's key finds nothing of tenant A's event: a read and an ack
// both answer 404, as for an event that does not exist.
func Isolated(ctx context.Context, b Tenant, eventA string) error {
	_, err := b.Printed.Ingest.GetEvent(ctx, eventA)
	if err := wantNotFound(err, "GET /events/"+eventA); err != nil {
		return err
	}
	_, err = b.Printed.Inbox.Ack(ctx, eventA, "")
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

// Settled checks what the consumer left behind: both inboxes empty, and each event delivered.
func Settled(ctx context.Context, out io.Writer, tenants []Tenant) error {
	Step(out, "7. GET /inbox again → no undelivered events")
	for _, t := range tenants {
		ids, err := ReadInbox(ctx, t.Printed.Inbox)
		if err != nil {
			return err
		}
		if len(ids) != 0 {
			return fmt.Errorf("tenant %s's inbox still lists %v after its events were consumed", t.Name, ids)
		}
	}
	Step(out, "   Lifecycle: GET /events/{id} → delivered")
	for _, t := range tenants {
		status, err := EventStatus(ctx, t.Printed.Ingest, t.Event)
		if err != nil {
			return err
		}
		if status != "delivered" {
			return fmt.Errorf("GET /events/%s: want status delivered, got %q", t.Event, status)
		}
	}
	return nil
}

// EventStatus reads an event's lifecycle status through GET /events/{id}.
func EventStatus(ctx context.Context, c *client.Client, id string) (string, error) {
	ev, err := c.GetEvent(ctx, id)
	if err != nil {
		return "", err
	}
	return ev.Status, nil
}

// EventsOf lists the tenants' events.
func EventsOf(tenants []Tenant) []string {
	ids := make([]string, len(tenants))
	for i, t := range tenants {
		ids[i] = t.Event
	}
	return ids
}
