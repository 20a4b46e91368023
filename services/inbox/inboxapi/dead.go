package inboxapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/httpx"
)

// maxRedriveAll bounds one redrive-all call; the answer says whether more remain.
const maxRedriveAll = 1000

func (h handlers) dead(c *gin.Context) {
	p := httpx.Principal(c)
	limit, after, err := listQuery(c, p.TenantID, events.ListDead)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	page, err := h.Events.Dead(c.Request.Context(), events.DeadQuery{TenantID: p.TenantID, Limit: limit, After: after, Now: h.Now()})
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	next := ""
	if !page.Next.IsZero() {
		next = events.EncodeCursor(p.TenantID, events.ListDead, page.Next)
	}
	writeEvents(c, page.Events, false, next)
}

type redriveRequest struct {
	EventIDs []string `json:"event_ids"`
	All      *bool    `json:"all"`
}

func (h handlers) redrive(c *gin.Context) {
	var req redriveRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	p := httpx.Principal(c)
	switch {
	case req.All != nil && req.EventIDs != nil:
		httpx.Fail(c, httpx.BadRequest("send either event_ids or all, not both"))
	case req.All != nil:
		if !*req.All {
			httpx.Fail(c, httpx.BadRequest(`all must be true; to redrive some events send "event_ids"`))
			return
		}
		h.redriveAll(c, p.TenantID)
	default:
		items, err := refs("event_ids", req.EventIDs, nil, false)
		if err != nil {
			httpx.Fail(c, err)
			return
		}
		now := h.Now()
		c.JSON(http.StatusOK, settle(c, items, "redriven", func(ctx context.Context, r leaseRef) (map[string]any, error) {
			return nil, h.Events.Redrive(ctx, p.TenantID, r.EventID, now)
		}))
	}
}

// redriveAll walks the dead letters with a cursor, redriving as it goes.
func (h handlers) redriveAll(c *gin.Context, tenantID string) {
	ctx, cancel := writeContext(c)
	defer cancel()
	count := 0
	var after events.Position
	for count < maxRedriveAll {
		page, err := h.Events.Dead(ctx, events.DeadQuery{TenantID: tenantID, Limit: min(maxLimit, maxRedriveAll-count), After: after, Now: h.Now()})
		if err != nil {
			httpx.Fail(c, err)
			return
		}
		for _, e := range page.Events {
			switch err := h.Events.Redrive(ctx, tenantID, e.ID, h.Now()); {
			case err == nil:
				count++
			case !errors.Is(err, events.ErrNotDead) && !errors.Is(err, events.ErrNotFound):
				httpx.Fail(c, err)
				return
			}
		}
		if page.Next.IsZero() {
			break
		}
		after = page.Next
	}
	more := false
	if count == maxRedriveAll {
		page, err := h.Events.Dead(ctx, events.DeadQuery{TenantID: tenantID, Limit: 1, Now: h.Now()})
		more = err == nil && len(page.Events) > 0
	}
	c.JSON(http.StatusOK, gin.H{"redriven_count": count, "more": more})
}
