package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
)

// Example publishes an event, leases it with a pull and acknowledges it under its lease.
func Example() {
	srv := httptest.NewServer(newDemoInbox())
	defer srv.Close()
	ctx := context.Background()

	c, err := client.New(srv.URL, "tenant_acme_live_demo")
	if err != nil {
		fmt.Println(err)
		return
	}
	accepted, replayed, err := c.Publish(ctx, json.RawMessage(`{"event_type":"order.paid","order_id":"o-1"}`), "order-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("published", accepted.EventID, "replayed:", replayed)

	page, err := c.Pull(ctx, api.PullRequest{MaxEvents: api.Int(10), VisibilityTimeoutSeconds: api.Int(60)})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ev := range page.Events {
		fmt.Printf("pulled %s (%s, delivery %d): %s\n", ev.EventID, ev.EventType, ev.DeliveryCount, ev.Payload)
		ack, err := c.Ack(ctx, ev.EventID, ev.LeaseID)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("ack:", ack.Status)
	}
	// Output:
	// published evt_1 replayed: false
	// pulled evt_1 (order.paid, delivery 1): {"event_type":"order.paid","order_id":"o-1"}
	// ack: acknowledged
}

// demoInbox answers POST /events, POST /inbox/pull and POST /ack (one event_id) as the API
// documents them, for one tenant and without persistence.
type demoInbox struct {
	mu     sync.Mutex
	events []demoEvent
}

type demoEvent struct {
	id, typ, lease string
	payload        json.RawMessage
	deliveries     int
	acked          bool
}

func newDemoInbox() http.Handler {
	d := &demoInbox{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /events", d.publish)
	mux.HandleFunc("POST /inbox/pull", d.pull)
	mux.HandleFunc("POST /ack", d.ack)
	return mux
}

func (d *demoInbox) publish(w http.ResponseWriter, r *http.Request) {
	var body struct {
		EventType string `json:"event_type"`
	}
	raw, _ := readAll(r)
	if json.Unmarshal(raw, &body) != nil || body.EventType == "" {
		writeJSON(w, http.StatusBadRequest, api.ErrorEnvelope{Error: api.ErrorBody{Code: "invalid_event", Message: "not an event"}})
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	id := fmt.Sprintf("evt_%d", len(d.events)+1)
	d.events = append(d.events, demoEvent{id: id, typ: body.EventType, payload: raw})
	writeJSON(w, http.StatusAccepted, api.Accepted{EventID: id, ReceivedAt: 1732140249123, Status: api.StatusAccepted})
}

func (d *demoInbox) pull(w http.ResponseWriter, _ *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	page := api.EventPage{Events: []api.Event{}}
	for i := range d.events {
		e := &d.events[i]
		if e.acked || e.lease != "" {
			continue
		}
		e.deliveries++
		e.lease = fmt.Sprintf("lse_%s_%d", e.id, e.deliveries)
		page.Events = append(page.Events, api.Event{
			EventID: e.id, EventType: e.typ, Payload: e.payload, Status: "undelivered",
			DeliveryCount: e.deliveries, LeaseID: e.lease,
		})
	}
	writeJSON(w, http.StatusOK, page)
}

func (d *demoInbox) ack(w http.ResponseWriter, r *http.Request) {
	var req api.AckRequest
	raw, _ := readAll(r)
	if json.Unmarshal(raw, &req) != nil || req.EventID == nil {
		writeJSON(w, http.StatusBadRequest, api.ErrorEnvelope{Error: api.ErrorBody{Code: "invalid_request", Message: "send event_id"}})
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.events {
		e := &d.events[i]
		if e.id != *req.EventID {
			continue
		}
		if req.LeaseID != nil && *req.LeaseID != e.lease {
			writeJSON(w, http.StatusConflict, api.ErrorEnvelope{Error: api.ErrorBody{Code: api.CodeLeaseLost, Message: "the lease no longer holds the event"}})
			return
		}
		e.acked = true
		writeJSON(w, http.StatusOK, api.AckAnswer{Status: api.StatusAcknowledged})
		return
	}
	writeJSON(w, http.StatusNotFound, api.ErrorEnvelope{Error: api.ErrorBody{Code: api.CodeNotFound, Message: "no such event"}})
}
