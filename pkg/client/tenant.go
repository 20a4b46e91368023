package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"

	"github.com/trigger-api/trigger-api/pkg/api"
)

// Client speaks the tenant API with one API key. It is safe for concurrent use.
type Client struct {
	c *conn
	// noItemContexts is set once the inbox refused the trace_context of settle items: an inbox
	// from before the field, met during a rolling upgrade. Settling matters more than tracing,
	// so from then on items go without it.
	noItemContexts atomic.Bool
}

// New returns a client of the tenant API at baseURL (the gateway or Ingress serving both
// /events and /inbox) authenticated with apiKey.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	c, err := newConn(baseURL, apiKey, "API key", opts)
	if err != nil {
		return nil, err
	}
	return &Client{c: c}, nil
}

// Publish sends one event: a JSON object with a string event_type, sent byte for byte as
// given. With an idempotencyKey ("" for none) a repeat of the same key and body is answered
// with the original event, and replayed says so; only then is the call retried.
func (c *Client) Publish(ctx context.Context, event json.RawMessage, idempotencyKey string) (accepted api.Accepted, replayed bool, err error) {
	r := request{
		op: "publish", method: http.MethodPost, path: "/events", body: event,
		want: []int{http.StatusAccepted, http.StatusOK}, limit: maxSmallBytes,
	}
	if idempotencyKey != "" {
		r.header = map[string]string{api.HeaderIdempotencyKey: idempotencyKey}
		r.retry = true
	}
	ans, err := c.c.do(ctx, r, &accepted)
	if err != nil {
		return api.Accepted{}, false, err
	}
	return accepted, ans.status == http.StatusOK && ans.header.Get(api.HeaderIdempotentReplayed) == "true", nil
}

// PublishBatch sends up to api.MaxBatchEvents events, each judged on its own: the answer has
// one result per event, in order. It is never retried, since it carries no idempotency key.
func (c *Client) PublishBatch(ctx context.Context, events []json.RawMessage) (api.BatchAnswer, error) {
	body, err := batchBody(events)
	if err != nil {
		return api.BatchAnswer{}, err
	}
	var out api.BatchAnswer
	_, err = c.c.do(ctx, request{
		op: "publish_batch", method: http.MethodPost, path: "/events/batch", body: body,
		want: []int{http.StatusOK}, limit: maxSmallBytes,
	}, &out)
	return out, err
}

// batchBody writes {"events":[...]} by hand: json.Marshal would compact each event and escape
// its <, > and &, and the API stores what it is sent byte for byte.
func batchBody(events []json.RawMessage) ([]byte, error) {
	n := len(`{"events":[]}`)
	for _, e := range events {
		n += len(e) + 1
	}
	b := append(make([]byte, 0, n), `{"events":[`...)
	for i, e := range events {
		if !json.Valid(e) {
			return nil, fmt.Errorf("publish_batch: event %d is not valid JSON", i+1)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, "]}"...), nil
}

// GetEvent reads one of the tenant's events.
func (c *Client) GetEvent(ctx context.Context, eventID string) (api.Event, error) {
	var out api.Event
	_, err := c.c.do(ctx, request{
		op: "get_event", method: http.MethodGet, path: "/events/" + url.PathEscape(eventID),
		want: []int{http.StatusOK}, limit: maxEventBytes, retry: true,
	}, &out)
	return out, err
}

// InboxQuery selects a page of GET /inbox; zero fields take the API's defaults.
type InboxQuery struct {
	Limit     int    // events per page, up to api.MaxListLimit
	Cursor    string // the previous page's NextCursor
	EventType string // only events of this type
}

// Inbox lists undelivered events, oldest first, without leasing them.
func (c *Client) Inbox(ctx context.Context, q InboxQuery) (api.EventPage, error) {
	v := pageQuery(q.Limit, q.Cursor)
	if q.EventType != "" {
		v.Set("event_type", q.EventType)
	}
	return c.page(ctx, "inbox", "/inbox", v)
}

// Dead lists dead letters: events that used up their deliveries.
func (c *Client) Dead(ctx context.Context, limit int, cursor string) (api.EventPage, error) {
	return c.page(ctx, "dead", "/inbox/dead", pageQuery(limit, cursor))
}

func (c *Client) page(ctx context.Context, op, path string, q url.Values) (api.EventPage, error) {
	var out api.EventPage
	_, err := c.c.do(ctx, request{
		op: op, method: http.MethodGet, path: path, query: q,
		want: []int{http.StatusOK}, limit: maxPageBytes, retry: true,
	}, &out)
	return out, err
}

func pageQuery(limit int, cursor string) url.Values {
	v := url.Values{}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	return v
}

// Pull leases visible events, long-polling up to req.WaitSeconds when none is: give ctx that
// long plus the time of an ordinary call. It is never retried: a pull whose answer was lost
// has leased events all the same, and they come back only when those leases run out.
func (c *Client) Pull(ctx context.Context, req api.PullRequest) (api.EventPage, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return api.EventPage{}, err
	}
	var out api.EventPage
	_, err = c.c.do(ctx, request{
		op: "pull", method: http.MethodPost, path: "/inbox/pull", body: body,
		want: []int{http.StatusOK}, limit: maxPageBytes,
	}, &out)
	return out, err
}
