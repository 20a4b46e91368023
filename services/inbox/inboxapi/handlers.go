package inboxapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

const (
	defaultLimit = 50
	maxLimit     = 100
	maxAckIDs    = 100
	// settleParallelism bounds the concurrent writes of one batch call.
	settleParallelism = 16
	// writeTimeout lets a write that reached DynamoDB finish even if the client went away.
	writeTimeout = 10 * time.Second
)

// listQuery reads limit and cursor, shared by the inbox and the dead-letter list.
func listQuery(c *gin.Context, tenantID, list string) (limit int, after events.Position, err error) {
	limit = defaultLimit
	if s, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return 0, after, httpx.BadRequest(fmt.Sprintf("limit must be an integer from 1 to %d", maxLimit))
		}
		limit = n
	}
	if s, ok := c.GetQuery("cursor"); ok {
		if after, err = events.DecodeCursor(tenantID, list, s); err != nil {
			return 0, after, err
		}
	}
	return limit, after, nil
}

func (h handlers) inbox(c *gin.Context) {
	p := httpx.Principal(c)
	limit, after, err := listQuery(c, p.TenantID, events.ListInbox)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	q := events.InboxQuery{TenantID: p.TenantID, Partitions: p.Partitions, Limit: limit, After: after, Now: h.Now()}
	if s, ok := c.GetQuery("event_type"); ok {
		if err := events.ValidateType(s); err != nil {
			httpx.Fail(c, err)
			return
		}
		q.EventType = s
	}
	page, err := h.Events.Inbox(c.Request.Context(), q)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	next := ""
	if !page.Next.IsZero() {
		next = events.EncodeCursor(p.TenantID, events.ListInbox, page.Next)
	}
	writeEvents(c, page.Events, false, next)
}

type ackRequest struct {
	EventID  *string    `json:"event_id"`
	LeaseID  *string    `json:"lease_id"`
	EventIDs []string   `json:"event_ids"`
	Leases   []leaseRef `json:"leases"`
}

func (h handlers) ack(c *gin.Context) {
	var req ackRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	if req.EventID == nil {
		if req.LeaseID != nil {
			httpx.Fail(c, httpx.BadRequest("lease_id goes with event_id; use leases for several"))
			return
		}
		items, err := refs("event_id, event_ids or leases", req.EventIDs, req.Leases, false)
		if err != nil {
			httpx.Fail(c, err)
			return
		}
		c.JSON(http.StatusOK, settle(c, items, "acknowledged", func(ctx context.Context, r leaseRef) (map[string]any, error) {
			return nil, h.ackEvent(ctx, c, r)
		}))
		return
	}
	if req.EventIDs != nil || req.Leases != nil {
		httpx.Fail(c, httpx.BadRequest("send one of event_id, event_ids or leases"))
		return
	}
	r := leaseRef{EventID: *req.EventID}
	if req.LeaseID != nil {
		if !events.ValidLeaseID(*req.LeaseID) {
			httpx.Fail(c, httpx.BadRequest("lease_id is malformed"))
			return
		}
		r.LeaseID = *req.LeaseID
	}
	ctx, cancel := writeContext(c)
	defer cancel()
	if err := h.ackEvent(ctx, c, r); err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "acknowledged"})
}

// ackEvent acknowledges one of the caller's events; acknowledging twice is not an error.
func (h handlers) ackEvent(ctx context.Context, c *gin.Context, r leaseRef) error {
	if !events.ValidID(r.EventID) {
		return events.ErrNotFound
	}
	p := httpx.Principal(c)
	now := h.Now()
	expires := now.Add(time.Duration(orDefault(p.RetentionDays, defaultRetentionDays)) * 24 * time.Hour)
	ctx, span := h.obs.settle(ctx, p.TenantID, r, "ack")
	acker, ok := h.Events.(eventAcker)
	if !ok {
		_, err := h.Events.Ack(ctx, p.TenantID, r.EventID, r.LeaseID, now, expires)
		if err == nil {
			h.obs.acked.Add(ctx, 1, h.obs.opts.Attrs(p.TenantID))
		}
		endSettle(span, err)
		return err
	}
	e, already, err := acker.AckEvent(ctx, p.TenantID, r.EventID, r.LeaseID, now, expires)
	if err == nil {
		span.SetAttributes(telemetry.AttrEventType.String(e.Type))
		if !already { // a repeated ack settles nothing new
			m := h.obs.opts.Attrs(p.TenantID)
			h.obs.acked.Add(ctx, 1, m)
			h.obs.timeInInbox.Record(ctx, now.Sub(e.ReceivedAt).Seconds(), m)
		}
	}
	endSettle(span, err)
	return err
}

// eventAcker is a store that can tell what an ack settled, so that time in inbox can be measured.
type eventAcker interface {
	AckEvent(ctx context.Context, tenantID, eventID, leaseID string, now, expiresAt time.Time) (events.Event, bool, error)
}

func writeContext(c *gin.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(c.Request.Context()), writeTimeout)
}

type resultError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type batchResult struct {
	Results        []map[string]any `json:"results"`
	SucceededCount int              `json:"succeeded_count"`
	FailedCount    int              `json:"failed_count"`
}

// settle runs op for every item, a bounded number at once, and reports each outcome in order:
// {"event_id","status"} plus op's extra fields, or {"event_id","error":{"code","message"}}.
func settle(c *gin.Context, items []leaseRef, status string, op func(context.Context, leaseRef) (map[string]any, error)) batchResult {
	out := batchResult{Results: make([]map[string]any, len(items))}
	ctx, cancel := writeContext(c)
	defer cancel()
	sem := make(chan struct{}, settleParallelism)
	var wg sync.WaitGroup
	for i, r := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var extra map[string]any
			err := events.ErrNotFound
			if events.ValidID(r.EventID) {
				extra, err = op(ctx, r)
			}
			res := map[string]any{"event_id": r.EventID}
			if err != nil {
				he := httpx.Describe(err)
				if errors.Is(err, events.ErrNotFound) {
					he = httpx.NewError(http.StatusNotFound, "not_found", "event not found")
				}
				res["error"] = resultError{Code: he.Code, Message: he.Message}
			} else {
				res["status"] = status
				for k, v := range extra {
					res[k] = v
				}
			}
			out.Results[i] = res
		}()
	}
	wg.Wait()
	for _, r := range out.Results {
		if _, failed := r["error"]; failed {
			out.FailedCount++
		} else {
			out.SucceededCount++
		}
	}
	return out
}
