package app

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
)

const (
	defaultLimit = 50
	maxLimit     = 100
	maxAckIDs    = 100
	// ackParallelism bounds the concurrent writes of one batch ack.
	ackParallelism = 16
	// writeTimeout lets an ack that reached DynamoDB finish even if the client went away.
	writeTimeout = 10 * time.Second
)

func (h handlers) inbox(c *gin.Context) {
	p := httpx.Principal(c)
	q := events.InboxQuery{TenantID: p.TenantID, Partitions: p.Partitions, Limit: defaultLimit, Now: h.Now()}
	if s, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			httpx.Fail(c, httpx.BadRequest(fmt.Sprintf("limit must be an integer from 1 to %d", maxLimit)))
			return
		}
		q.Limit = n
	}
	if s, ok := c.GetQuery("cursor"); ok {
		pos, err := events.DecodeCursor(p.TenantID, s)
		if err != nil {
			httpx.Fail(c, err)
			return
		}
		q.After = pos
	}
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
	// Written by hand so every payload goes out byte for byte as it came in.
	b := append(make([]byte, 0, 4096), `{"events":[`...)
	for i, e := range page.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = events.AppendJSON(b, e)
	}
	b = append(b, ']')
	if !page.Next.IsZero() {
		b = append(b, `,"next_cursor":"`...)
		b = append(b, events.EncodeCursor(p.TenantID, page.Next)...) // base64url: nothing to escape
		b = append(b, '"')
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", append(b, '}'))
}

type ackRequest struct {
	EventID  *string  `json:"event_id"`
	EventIDs []string `json:"event_ids"`
}

type ackResult struct {
	EventID string          `json:"event_id"`
	Status  string          `json:"status,omitempty"`
	Error   *ackResultError `json:"error,omitempty"`
}

type ackResultError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type batchAckDTO struct {
	Results           []ackResult `json:"results"`
	AcknowledgedCount int         `json:"acknowledged_count"`
	FailedCount       int         `json:"failed_count"`
}

func (h handlers) ack(c *gin.Context) {
	var req ackRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	switch {
	case req.EventID != nil && req.EventIDs != nil:
		httpx.Fail(c, httpx.BadRequest("send either event_id or event_ids, not both"))
	case req.EventID != nil:
		h.ackOne(c, *req.EventID)
	case req.EventIDs != nil:
		h.ackMany(c, req.EventIDs)
	default:
		httpx.Fail(c, httpx.BadRequest("event_id or event_ids is required"))
	}
}

func (h handlers) ackOne(c *gin.Context, id string) {
	if err := h.ackEvent(c, id); err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "acknowledged"})
}

func (h handlers) ackMany(c *gin.Context, ids []string) {
	if len(ids) == 0 || len(ids) > maxAckIDs {
		httpx.Fail(c, httpx.BadRequest(fmt.Sprintf("event_ids must hold 1 to %d ids", maxAckIDs)))
		return
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			httpx.Fail(c, httpx.BadRequest("event_ids contains "+strconv.Quote(id)+" more than once"))
			return
		}
		seen[id] = true
	}
	out := batchAckDTO{Results: make([]ackResult, len(ids))}
	var wg sync.WaitGroup
	sem := make(chan struct{}, ackParallelism)
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out.Results[i] = ackResult{EventID: id, Status: "acknowledged"}
			if err := h.ackEvent(c, id); err != nil {
				out.Results[i] = ackResult{EventID: id, Error: resultError(err)}
			}
		}()
	}
	wg.Wait()
	for _, r := range out.Results {
		if r.Error != nil {
			out.FailedCount++
		} else {
			out.AcknowledgedCount++
		}
	}
	c.JSON(http.StatusOK, out)
}

// ackEvent acknowledges one of the caller's events; acknowledging twice is not an error.
func (h handlers) ackEvent(c *gin.Context, id string) error {
	if !events.ValidID(id) {
		return events.ErrNotFound
	}
	p := httpx.Principal(c)
	now := h.Now()
	expires := now.Add(time.Duration(p.RetentionDays) * 24 * time.Hour)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), writeTimeout)
	defer cancel()
	_, err := h.Events.Ack(ctx, p.TenantID, id, now, expires)
	return err
}

func resultError(err error) *ackResultError {
	if errors.Is(err, events.ErrNotFound) {
		return &ackResultError{Code: "not_found", Message: "event not found"}
	}
	he := httpx.Describe(err)
	return &ackResultError{Code: he.Code, Message: he.Message}
}
