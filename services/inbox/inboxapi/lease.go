package inboxapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// Limits of the consumer calls, as SQS sets them.
const (
	defaultPullMax        = 10
	defaultVisibility     = 30
	maxVisibilitySeconds  = 43200
	maxWaitSeconds        = 20
	maxNackDelaySeconds   = 43200
	defaultMaxDeliveries  = tenant.DefaultMaxDeliveries
	defaultRetentionDays  = tenant.DefaultRetentionDays
	leaseResponsePrealloc = 8192
)

type pullRequest struct {
	MaxEvents                *int `json:"max_events"`
	VisibilityTimeoutSeconds *int `json:"visibility_timeout_seconds"`
	WaitSeconds              *int `json:"wait_seconds"`
}

// intField reads an optional integer field within [lo, hi].
func intField(name string, v *int, def, lo, hi int) (int, error) {
	if v == nil {
		return def, nil
	}
	if *v < lo || *v > hi {
		return 0, httpx.BadRequest(fmt.Sprintf("%s must be from %d to %d", name, lo, hi))
	}
	return *v, nil
}

func (h handlers) pull(c *gin.Context) {
	var req pullRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	maxEvents, err1 := intField("max_events", req.MaxEvents, defaultPullMax, 1, maxLimit)
	vis, err2 := intField("visibility_timeout_seconds", req.VisibilityTimeoutSeconds, defaultVisibility, 1, maxVisibilitySeconds)
	wait, err3 := intField("wait_seconds", req.WaitSeconds, 0, 0, maxWaitSeconds)
	if err := errors.Join(err1, err2, err3); err != nil {
		httpx.Fail(c, firstError(err1, err2, err3))
		return
	}
	h.lease(c, maxEvents, time.Duration(vis)*time.Second, time.Duration(wait)*time.Second)
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// lease leases at once if anything is visible, else waits for the watcher's wake-up, up to wait.
func (h handlers) lease(c *gin.Context, maxEvents int, vis, wait time.Duration) {
	p := httpx.Principal(c)
	ctx := c.Request.Context()
	deadline := h.Now().Add(wait)
	if wait > 0 {
		// The wall clock, not h.Now: this measures real waiting.
		start := time.Now()
		defer func() { h.obs.longPoll.Record(ctx, time.Since(start).Seconds()) }()
	}
	for {
		lctx, span := h.obs.receive(ctx, p.TenantID)
		got, err := h.Events.Lease(lctx, events.LeaseQuery{
			TenantID: p.TenantID, Partitions: p.Partitions, Max: maxEvents, Visibility: vis,
			MaxDeliveries: orDefault(p.MaxDeliveries, defaultMaxDeliveries), Now: h.Now(),
			Buried: func(ctx context.Context, eventID string) { h.obs.buried(ctx, p.TenantID, eventID) },
		})
		h.obs.received(lctx, span, p.TenantID, got, err)
		if err != nil {
			httpx.Fail(c, err)
			return
		}
		if len(got) > 0 || !h.Now().Before(deadline) {
			writeEvents(c, got, true, "")
			return
		}
		switch err := h.Watch.Wait(ctx, p.TenantID, p.Partitions, deadline); {
		case errors.Is(err, errWaitOver):
			writeEvents(c, nil, true, "")
			return
		case err != nil:
			// The client went away; nobody is left to answer.
			httpx.Fail(c, err)
			return
		}
	}
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// writeEvents writes {"events":[...],"next_cursor"?} by hand so payloads go out byte for byte.
func writeEvents(c *gin.Context, es []events.Event, withLease bool, next string) {
	b := append(make([]byte, 0, leaseResponsePrealloc), `{"events":[`...)
	for i, e := range es {
		if i > 0 {
			b = append(b, ',')
		}
		b = events.AppendJSON(b, e, withLease)
	}
	b = append(b, ']')
	if next != "" {
		b = append(b, `,"next_cursor":"`...)
		b = append(b, next...) // base64url: nothing to escape
		b = append(b, '"')
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", append(b, '}'))
}

type leaseRef struct {
	EventID string `json:"event_id"`
	LeaseID string `json:"lease_id"`
	// TraceContext is the consumer's processing span for this event: its settle span goes
	// there, into the event's own trace, whatever trace the batch call itself is in.
	TraceContext *traceContext `json:"trace_context"`
}

type traceContext struct {
	Traceparent string `json:"traceparent"`
}

func (r leaseRef) traceparent() string {
	if r.TraceContext == nil {
		return ""
	}
	return r.TraceContext.Traceparent
}

// refs validates a list of per-event references: 1 to 100, no event twice, lease ids well
// formed where required.
func refs(field string, ids []string, leases []leaseRef, needLease bool) ([]leaseRef, error) {
	var out []leaseRef
	switch {
	case ids != nil && leases != nil:
		return nil, httpx.BadRequest("send either event_ids or leases, not both")
	case ids != nil:
		if needLease {
			return nil, httpx.BadRequest("leases is required")
		}
		for _, id := range ids {
			out = append(out, leaseRef{EventID: id})
		}
		field = "event_ids"
	case leases != nil:
		out = leases
		field = "leases"
	default:
		return nil, httpx.BadRequest(field + " is required")
	}
	if len(out) == 0 || len(out) > maxAckIDs {
		return nil, httpx.BadRequest(fmt.Sprintf("%s must hold 1 to %d items", field, maxAckIDs))
	}
	seen := make(map[string]bool, len(out))
	for _, r := range out {
		if seen[r.EventID] {
			return nil, httpx.BadRequest(field + " names event " + strconv.Quote(r.EventID) + " more than once")
		}
		seen[r.EventID] = true
		if (field == "leases" || needLease) && !events.ValidLeaseID(r.LeaseID) {
			return nil, httpx.BadRequest("every lease needs an event_id and a well-formed lease_id")
		}
		if r.TraceContext != nil && !telemetry.SpanContextOf(r.TraceContext.Traceparent).IsValid() {
			return nil, httpx.BadRequest("trace_context.traceparent of event " + strconv.Quote(r.EventID) + " is not a W3C traceparent")
		}
	}
	return out, nil
}

type extendRequest struct {
	Leases                   []leaseRef `json:"leases"`
	VisibilityTimeoutSeconds *int       `json:"visibility_timeout_seconds"`
}

func (h handlers) extend(c *gin.Context) {
	var req extendRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	if req.VisibilityTimeoutSeconds == nil {
		httpx.Fail(c, httpx.BadRequest("visibility_timeout_seconds is required"))
		return
	}
	vis, err := intField("visibility_timeout_seconds", req.VisibilityTimeoutSeconds, 0, 0, maxVisibilitySeconds)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	items, err := refs("leases", nil, req.Leases, true)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	p := httpx.Principal(c)
	now := h.Now()
	until := now.Add(time.Duration(vis) * time.Second)
	results := settle(c, items, "extended", func(ctx context.Context, r leaseRef) (map[string]any, error) {
		e, err := h.Events.Extend(ctx, p.TenantID, r.EventID, r.LeaseID, until, now)
		if err != nil {
			return nil, err
		}
		return map[string]any{"lease_id": r.LeaseID, "lease_expires_at": e.VisibleAt.UnixMilli()}, nil
	})
	c.JSON(http.StatusOK, results)
}

type nackRequest struct {
	EventIDs     []string   `json:"event_ids"`
	Leases       []leaseRef `json:"leases"`
	DelaySeconds *int       `json:"delay_seconds"`
}

func (h handlers) nack(c *gin.Context) {
	var req nackRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	delay, err := intField("delay_seconds", req.DelaySeconds, 0, 0, maxNackDelaySeconds)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	items, err := refs("event_ids or leases", req.EventIDs, req.Leases, false)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	p := httpx.Principal(c)
	now := h.Now()
	visible := now.Add(time.Duration(delay) * time.Second)
	c.JSON(http.StatusOK, settle(c, items, "nacked", func(ctx context.Context, r leaseRef) (map[string]any, error) {
		ctx, span := h.obs.settle(ctx, p.TenantID, r, "nack")
		err := h.Events.Nack(ctx, p.TenantID, r.EventID, r.LeaseID, visible, now)
		if err == nil {
			h.obs.nacked.Add(ctx, 1, h.obs.opts.Attrs(p.TenantID))
		}
		endSettle(span, err)
		return map[string]any{"visible_at": visible.UnixMilli()}, err
	}))
}
