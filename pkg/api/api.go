// Package api is the wire contract of Trigger API: the body of every request and answer, the
// limits the API enforces and the error envelope. The services decode and encode with these
// types, the Go client (pkg/client) speaks them, and openapi.json describes them; drift tests
// keep the three in step.
package api

import (
	"encoding/json"

	"github.com/trigger-api/trigger-api/pkg/events"
)

// Limits of the API. The rules live in the domain (package events); these names are what the
// wire contract calls them.
const (
	MaxEventBytes            = events.MaxEventBytes
	MaxBatchEvents           = events.MaxBatchEvents
	MaxBatchBytes            = events.MaxBatchBytes
	DefaultListLimit         = events.DefaultListLimit
	MaxListLimit             = events.MaxListLimit
	DefaultPullEvents        = events.DefaultPullEvents
	MaxPullEvents            = events.MaxPullEvents
	DefaultVisibilitySeconds = events.DefaultVisibilitySeconds
	MaxVisibilitySeconds     = events.MaxVisibilitySeconds
	MaxWaitSeconds           = events.MaxWaitSeconds
	MaxNackDelaySeconds      = events.MaxNackDelaySeconds
	MaxSettleItems           = events.MaxSettleItems
	MaxRedriveAll            = events.MaxRedriveAll
)

// Int returns a pointer to v, for the optional integer fields of requests.
func Int(v int) *int { return &v }

// Error envelope: every error answer has this body, with the same request id in X-Request-Id.
type ErrorEnvelope struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is what went wrong: a stable code, a message safe to show, the request's id.
type ErrorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// ItemError is one item's failure inside a 200 batch answer.
type ItemError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Accepted answers POST /events: 202, or 200 for an idempotent replay.
type Accepted struct {
	EventID    string `json:"event_id"`
	ReceivedAt int64  `json:"received_at"`
	Status     string `json:"status"`
}

// BatchRequest is POST /events/batch: each element is one event, judged on its own.
type BatchRequest struct {
	Events []json.RawMessage `json:"events"`
}

// BatchAnswer holds one result per input event, in order.
type BatchAnswer struct {
	Results     []BatchResult `json:"results"`
	FailedCount int           `json:"failed_count"`
}

// BatchResult is one event's outcome: accepted (with its id) or an error.
type BatchResult struct {
	EventID    string     `json:"event_id,omitempty"`
	ReceivedAt int64      `json:"received_at,omitempty"`
	Status     string     `json:"status,omitempty"`
	Replayed   bool       `json:"replayed,omitempty"`
	Error      *ItemError `json:"error,omitempty"`
}

// TraceContext is a W3C trace context carried in a body.
type TraceContext struct {
	Traceparent string `json:"traceparent"`
}

// Event is an event as the API shows it. Payload is the producer's JSON byte for byte.
// The lease fields are set in answers to a pull only.
type Event struct {
	EventID        string          `json:"event_id"`
	EventType      string          `json:"event_type"`
	Payload        json.RawMessage `json:"payload"`
	Timestamp      int64           `json:"timestamp"`
	ReceivedAt     int64           `json:"received_at"`
	Status         string          `json:"status"`
	DeliveryCount  int             `json:"delivery_count"`
	DeliveredAt    int64           `json:"delivered_at,omitempty"`
	DeadAt         int64           `json:"dead_at,omitempty"`
	TraceContext   *TraceContext   `json:"trace_context,omitempty"`
	LeaseID        string          `json:"lease_id,omitempty"`
	LeaseExpiresAt int64           `json:"lease_expires_at,omitempty"`
}

// Traceparent is the event's trace context, "" when it has none.
func (e Event) Traceparent() string {
	if e.TraceContext == nil {
		return ""
	}
	return e.TraceContext.Traceparent
}

// EventPage answers GET /inbox, GET /inbox/dead and POST /inbox/pull (no cursor there).
type EventPage struct {
	Events     []Event `json:"events"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// PullRequest is POST /inbox/pull; an omitted field takes its default.
type PullRequest struct {
	MaxEvents                *int `json:"max_events,omitempty"`
	VisibilityTimeoutSeconds *int `json:"visibility_timeout_seconds,omitempty"`
	WaitSeconds              *int `json:"wait_seconds,omitempty"`
}

// LeaseRef names one event, and the lease it is held by where the call needs one.
type LeaseRef struct {
	EventID string `json:"event_id"`
	LeaseID string `json:"lease_id,omitempty"`
	// TraceContext is the consumer's processing span for this event: its settle span goes
	// there, into the event's own trace, whatever trace the call itself is in.
	TraceContext *TraceContext `json:"trace_context,omitempty"`
}

// Traceparent is the ref's trace context, "" when it has none.
func (r LeaseRef) Traceparent() string {
	if r.TraceContext == nil {
		return ""
	}
	return r.TraceContext.Traceparent
}

// AckRequest is POST /ack: one of event_id (with an optional lease_id), event_ids or leases.
type AckRequest struct {
	EventID  *string    `json:"event_id,omitempty"`
	LeaseID  *string    `json:"lease_id,omitempty"`
	EventIDs []string   `json:"event_ids,omitempty"`
	Leases   []LeaseRef `json:"leases,omitempty"`
}

// AckAnswer answers an ack of one event_id.
type AckAnswer struct {
	Status string `json:"status"`
}

// ExtendRequest is POST /inbox/extend.
type ExtendRequest struct {
	Leases                   []LeaseRef `json:"leases"`
	VisibilityTimeoutSeconds *int       `json:"visibility_timeout_seconds"`
}

// NackRequest is POST /nack: event_ids or leases.
type NackRequest struct {
	EventIDs     []string   `json:"event_ids,omitempty"`
	Leases       []LeaseRef `json:"leases,omitempty"`
	DelaySeconds *int       `json:"delay_seconds,omitempty"`
}

// RedriveRequest is POST /inbox/redrive: event_ids, or all.
type RedriveRequest struct {
	EventIDs []string `json:"event_ids,omitempty"`
	All      *bool    `json:"all,omitempty"`
}

// RedriveAllAnswer answers a redrive of all dead events; More says whether some remain.
type RedriveAllAnswer struct {
	RedrivenCount int  `json:"redriven_count"`
	More          bool `json:"more"`
}

// SettleAnswer answers every call that settles several events (ack, nack, extend, redrive by
// ids): one result per item, in order.
type SettleAnswer struct {
	Results        []SettleResult `json:"results"`
	SucceededCount int            `json:"succeeded_count"`
	FailedCount    int            `json:"failed_count"`
}

// SettleResult is one item's outcome: its new status, or an error.
type SettleResult struct {
	EventID        string     `json:"event_id"`
	Status         string     `json:"status,omitempty"`
	LeaseID        string     `json:"lease_id,omitempty"`
	LeaseExpiresAt int64      `json:"lease_expires_at,omitempty"`
	VisibleAt      int64      `json:"visible_at,omitempty"`
	Error          *ItemError `json:"error,omitempty"`
}

// Statuses a successful settle result carries.
const (
	StatusAcknowledged = "acknowledged"
	StatusNacked       = "nacked"
	StatusExtended     = "extended"
	StatusRedriven     = "redriven"
	StatusAccepted     = "accepted"
)

// Error codes a client acts on.
const (
	CodeLeaseLost    = "lease_lost"
	CodeNotFound     = "not_found"
	CodeUnavailable  = "unavailable"
	CodeRateLimited  = "rate_limited"
	CodeUnauthorized = "unauthenticated"
)
