package runner

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
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// maxPageBytes bounds what one pull answer may hold: 100 events of at most 256 KiB each and
// their envelope. A larger answer is not one the inbox sends, so it is an error, not a page.
const maxPageBytes = 100*256<<10 + 4<<20

// maxSettleBytes bounds a batch answer (ack, extend, nack): 100 short results.
const maxSettleBytes = 1 << 20

// NewHTTPClient returns the client the worker uses when none is injected: bounded dials and
// header waits, and enough idle connections that each key's puller, acks, extensions and nacks
// keep warm ones of their own.
func NewHTTPClient(cfg Config, keys int) *http.Client {
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4*keys + 2,
		MaxIdleConnsPerHost:   4*keys + 2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: cfg.pullTimeout(),
		ExpectContinueTimeout: time.Second,
	}
	// Each call carries its own deadline (a long poll's is longer than an ack's); this is the
	// backstop for one that does not.
	return &http.Client{Transport: t, Timeout: cfg.pullTimeout()}
}

// Event is one leased event as a processor sees it. The payload is the producer's JSON, kept
// raw; the worker never logs it.
type Event struct {
	TenantID      string
	ID            string
	Type          string
	Payload       json.RawMessage
	Timestamp     time.Time
	ReceivedAt    time.Time
	DeliveryCount int
}

type pullRequestDTO struct {
	MaxEvents                int `json:"max_events"`
	VisibilityTimeoutSeconds int `json:"visibility_timeout_seconds"`
	WaitSeconds              int `json:"wait_seconds"`
}

type pullAnswerDTO struct {
	Events []leasedEventDTO `json:"events"`
}

type leasedEventDTO struct {
	EventID        string          `json:"event_id"`
	EventType      string          `json:"event_type"`
	Payload        json.RawMessage `json:"payload"`
	Timestamp      int64           `json:"timestamp"`
	ReceivedAt     int64           `json:"received_at"`
	DeliveryCount  int             `json:"delivery_count"`
	LeaseID        string          `json:"lease_id"`
	LeaseExpiresAt int64           `json:"lease_expires_at"`
	TraceContext   *traceContext   `json:"trace_context"`
}

// traceContext is a W3C trace context as the inbox API carries it in bodies.
type traceContext struct {
	Traceparent string `json:"traceparent"`
}

func (d leasedEventDTO) traceparent() string {
	if d.TraceContext == nil {
		return ""
	}
	return d.TraceContext.Traceparent
}

func (d leasedEventDTO) toEvent(tenantID string) Event {
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

// leaseRef names one event under the lease the worker holds it by.
type leaseRef struct {
	EventID string `json:"event_id"`
	LeaseID string `json:"lease_id"`
	// TraceContext, sent with acks and nacks, is the processing span's: the inbox settles the
	// event inside the event's own trace even when the call carries several events.
	TraceContext *traceContext `json:"trace_context,omitempty"`
}

// traced returns r carrying the context of the span in ctx, if that span is sampled: an
// unsampled one leaves no trace to join.
func (r leaseRef) traced(ctx context.Context) leaseRef {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return r
	}
	if tp := telemetry.Traceparent(ctx); tp != "" {
		r.TraceContext = &traceContext{Traceparent: tp}
	}
	return r
}

func (r leaseRef) spanContext() trace.SpanContext {
	if r.TraceContext == nil {
		return trace.SpanContext{}
	}
	return telemetry.SpanContextOf(r.TraceContext.Traceparent)
}

type ackRequestDTO struct {
	Leases []leaseRef `json:"leases"`
}

type extendRequestDTO struct {
	Leases                   []leaseRef `json:"leases"`
	VisibilityTimeoutSeconds int        `json:"visibility_timeout_seconds"`
}

type nackRequestDTO struct {
	Leases       []leaseRef `json:"leases"`
	DelaySeconds int        `json:"delay_seconds"`
}

// settleAnswerDTO is the answer of every batch call: one result per item, in order.
type settleAnswerDTO struct {
	Results []settleResultDTO `json:"results"`
}

type settleResultDTO struct {
	EventID        string     `json:"event_id"`
	Status         string     `json:"status"`
	LeaseExpiresAt int64      `json:"lease_expires_at"`
	Error          *errorBody `json:"error"`
}

type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

type errorEnvelopeDTO struct {
	Error errorBody `json:"error"`
}

// Per-item error codes the worker acts on.
const (
	codeLeaseLost = "lease_lost"
	codeNotFound  = "not_found"
)

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

// inboxAPI speaks the consumer calls of the inbox API. It is safe for concurrent use.
type inboxAPI struct {
	http                    *http.Client
	pullURL, extendURL      string
	ackURL, nackURL         string
	visibility, waitSeconds int
	// noItemContexts is set once an inbox refused the items' trace_context: one that predates
	// it, met during a rolling upgrade. Settling matters more than tracing.
	noItemContexts atomic.Bool
}

func newInboxAPI(client *http.Client, cfg Config) (*inboxAPI, error) {
	a := &inboxAPI{http: client, visibility: cfg.visibilitySeconds(), waitSeconds: cfg.WaitSeconds}
	for _, u := range []struct {
		dst  *string
		path []string
	}{
		{&a.pullURL, []string{"inbox", "pull"}},
		{&a.extendURL, []string{"inbox", "extend"}},
		{&a.ackURL, []string{"ack"}},
		{&a.nackURL, []string{"nack"}},
	} {
		joined, err := url.JoinPath(cfg.InboxURL, u.path...)
		if err != nil {
			return nil, fmt.Errorf("inbox url: %w", err)
		}
		*u.dst = joined
	}
	return a, nil
}

// pull leases up to max events, long-polling as configured.
func (a *inboxAPI) pull(ctx context.Context, key string, max int) ([]leasedEventDTO, error) {
	var out pullAnswerDTO
	err := a.post(ctx, key, "pull", a.pullURL, pullRequestDTO{
		MaxEvents: max, VisibilityTimeoutSeconds: a.visibility, WaitSeconds: a.waitSeconds,
	}, maxPageBytes, &out)
	return out.Events, err
}

// ack acknowledges events under their leases; each item's outcome is in the results.
func (a *inboxAPI) ack(ctx context.Context, key string, leases []leaseRef) ([]settleResultDTO, error) {
	return a.settle(ctx, key, "ack", a.ackURL, leases, func(ls []leaseRef) any { return ackRequestDTO{Leases: ls} })
}

// settle sends an ack or nack call, once more without the items' trace contexts if the inbox
// refuses them, and from then on never with them.
func (a *inboxAPI) settle(ctx context.Context, key, op, u string, leases []leaseRef, body func([]leaseRef) any) ([]settleResultDTO, error) {
	send := leases
	if a.noItemContexts.Load() {
		send = withoutContexts(leases)
	}
	var out settleAnswerDTO
	err := a.post(ctx, key, op, u, body(send), maxSettleBytes, &out)
	var se *StatusError
	if errors.As(err, &se) && se.Status == http.StatusBadRequest && strings.Contains(se.Message, `"trace_context"`) {
		a.noItemContexts.Store(true)
		out = settleAnswerDTO{}
		err = a.post(ctx, key, op, u, body(withoutContexts(leases)), maxSettleBytes, &out)
	}
	return out.Results, checkResults(op, err, out.Results, leases)
}

func withoutContexts(leases []leaseRef) []leaseRef {
	out := make([]leaseRef, len(leases))
	for i, l := range leases {
		out[i] = leaseRef{EventID: l.EventID, LeaseID: l.LeaseID}
	}
	return out
}

// extend moves the leases' expiry to the configured visibility timeout from now.
func (a *inboxAPI) extend(ctx context.Context, key string, leases []leaseRef) ([]settleResultDTO, error) {
	var out settleAnswerDTO
	err := a.post(ctx, key, "extend", a.extendURL, extendRequestDTO{Leases: leases, VisibilityTimeoutSeconds: a.visibility}, maxSettleBytes, &out)
	return out.Results, checkResults("extend", err, out.Results, leases)
}

// nack hands events back, visible again after delay seconds.
func (a *inboxAPI) nack(ctx context.Context, key string, leases []leaseRef, delay int) ([]settleResultDTO, error) {
	return a.settle(ctx, key, "nack", a.nackURL, leases, func(ls []leaseRef) any { return nackRequestDTO{Leases: ls, DelaySeconds: delay} })
}

// checkResults insists on one result per item, in order, since the caller pairs them up.
func checkResults(op string, err error, results []settleResultDTO, sent []leaseRef) error {
	if err != nil {
		return err
	}
	if len(results) != len(sent) {
		return fmt.Errorf("%s: %d results for %d items", op, len(results), len(sent))
	}
	for i, r := range results {
		if r.EventID != sent[i].EventID {
			return fmt.Errorf("%s: result %d names %q, want %q", op, i+1, r.EventID, sent[i].EventID)
		}
	}
	return nil
}

func (a *inboxAPI) post(ctx context.Context, key, op, u string, body any, limit int64, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	// Every call is a POST to one host: the operation is what tells a 20 s long poll from an ack
	// in the client's request-duration metric.
	l := &otelhttp.Labeler{}
	l.Add(attribute.String("trigger.operation", op))
	ctx = otelhttp.ContextWithClientLabeler(ctx, l)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
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
	if resp.StatusCode != http.StatusOK {
		return statusError(op, resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, limit)).Decode(out); err != nil {
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

// transient reports whether err is worth retrying soon: the API or the network is struggling
// (5xx, 429, 408, no answer). Anything else is a refusal of the key or the request, which
// retrying soon cannot fix.
func transient(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) {
		return true
	}
	return se.Status >= 500 || se.Status == http.StatusTooManyRequests || se.Status == http.StatusRequestTimeout
}

func retryAfter(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}
