package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxPageBytes bounds what one inbox answer may hold: 100 events of at most 256 KiB each and
// their envelope. A larger answer is not one the inbox sends, so it is an error, not a page.
const maxPageBytes = 100*256<<10 + 4<<20

// NewHTTPClient returns the client the worker uses when none is injected: bounded dials and
// header waits, and enough idle connections that every loop keeps its own warm one.
func NewHTTPClient(cfg Config, loops int) *http.Client {
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          2*loops + 2,
		MaxIdleConnsPerHost:   2*loops + 2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		ExpectContinueTimeout: time.Second,
	}
	// Each call also carries its own deadline; this is the backstop for one that does not.
	return &http.Client{Transport: t, Timeout: cfg.RequestTimeout}
}

// Event is one inbox entry as a processor sees it. The payload is the producer's JSON, kept raw;
// the worker never logs it.
type Event struct {
	TenantID      string
	ID            string
	Type          string
	Payload       json.RawMessage
	Timestamp     time.Time
	ReceivedAt    time.Time
	DeliveryCount int
}

type inboxPageDTO struct {
	Events     []inboxEventDTO `json:"events"`
	NextCursor string          `json:"next_cursor"`
}

type inboxEventDTO struct {
	EventID       string          `json:"event_id"`
	EventType     string          `json:"event_type"`
	Payload       json.RawMessage `json:"payload"`
	Timestamp     int64           `json:"timestamp"`
	ReceivedAt    int64           `json:"received_at"`
	DeliveryCount int             `json:"delivery_count"`
}

func (d inboxEventDTO) toEvent(tenantID string) Event {
	return Event{
		TenantID:      tenantID,
		ID:            d.EventID,
		Type:          d.EventType,
		Payload:       d.Payload,
		Timestamp:     fromMillis(d.Timestamp),
		ReceivedAt:    fromMillis(d.ReceivedAt),
		DeliveryCount: d.DeliveryCount,
	}
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

type ackDTO struct {
	EventID string `json:"event_id"`
}

type errorEnvelopeDTO struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// StatusError is an answer of the inbox API other than the one expected. It carries what the
// envelope says, never the request's credentials.
type StatusError struct {
	Op         string
	Status     int
	Code       string
	Message    string
	RequestID  string
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " (request_id " + e.RequestID + ")"
	}
	return msg
}

// inboxAPI speaks the two calls the worker needs. It is safe for concurrent use.
type inboxAPI struct {
	http  *http.Client
	inbox string
	ack   string
}

func newInboxAPI(client *http.Client, base string) (*inboxAPI, error) {
	inbox, err := url.JoinPath(base, "inbox")
	if err != nil {
		return nil, fmt.Errorf("inbox url: %w", err)
	}
	ack, err := url.JoinPath(base, "ack")
	if err != nil {
		return nil, fmt.Errorf("ack url: %w", err)
	}
	return &inboxAPI{http: client, inbox: inbox, ack: ack}, nil
}

// read fetches the oldest undelivered events, at most limit of them.
func (a *inboxAPI) read(ctx context.Context, key string, limit int) ([]inboxEventDTO, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.inbox+"?limit="+strconv.Itoa(limit), nil)
	if err != nil {
		return nil, err
	}
	var page inboxPageDTO
	if err := a.do(req, key, "read inbox", http.StatusOK, &page); err != nil {
		return nil, err
	}
	return page.Events, nil
}

// acknowledge marks one event delivered.
func (a *inboxAPI) acknowledge(ctx context.Context, key, eventID string) error {
	body, err := json.Marshal(ackDTO{EventID: eventID})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.ack, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return a.do(req, key, "ack", http.StatusOK, nil)
}

func (a *inboxAPI) do(req *http.Request, key, op string, want int, out any) error {
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "trigger-worker")
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer func() {
		// Drained so the connection goes back to the pool instead of being closed.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != want {
		return statusError(op, resp)
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxPageBytes))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", op, err)
	}
	return nil
}

func statusError(op string, resp *http.Response) *StatusError {
	e := &StatusError{Op: op, Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	var env errorEnvelopeDTO
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&env) == nil {
		e.Code, e.Message = env.Error.Code, env.Error.Message
		if env.Error.RequestID != "" {
			e.RequestID = env.Error.RequestID
		}
	}
	return e
}

// failure is what the loop does about an error.
type failure int

const (
	// transient: the API or the network is struggling; retry with a growing pause.
	transient failure = iota
	// refused: the API will not serve this key (401, 403) or this request; retrying soon
	// cannot help, so pause long.
	refused
	// gone: the event does not exist for this tenant; nothing is left to do for it.
	gone
)

func classify(err error) failure {
	var se *StatusError
	if !errors.As(err, &se) {
		return transient
	}
	switch {
	case se.Status >= 500, se.Status == http.StatusTooManyRequests, se.Status == http.StatusRequestTimeout:
		return transient
	case se.Status == http.StatusNotFound:
		return gone
	default:
		return refused
	}
}

func retryAfter(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}
