package inboxapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

type handlers struct {
	inbox *queue.Inbox
	log   *zap.Logger
}

func (h handlers) list(c *gin.Context) {
	lq, err := listQuery(c)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	if s, ok := c.GetQuery("event_type"); ok {
		lq.EventType = &s
	}
	ctx, release := queue.HoldReads(c.Request.Context())
	defer release()
	page, err := h.inbox.List(ctx, httpx.Principal(c), lq)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.ChargeWork(c, events.ReadCost(page.Events))
	_ = writeEvents(c, page.Events, false, page.NextCursor) // a listing leases nothing to give back
}

func (h handlers) dead(c *gin.Context) {
	lq, err := listQuery(c)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	ctx, release := queue.HoldReads(c.Request.Context())
	defer release()
	page, err := h.inbox.Dead(ctx, httpx.Principal(c), lq.Limit, lq.Cursor)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.ChargeWork(c, events.ReadCost(page.Events))
	_ = writeEvents(c, page.Events, false, page.NextCursor) // a listing leases nothing to give back
}

// listQuery reads limit and cursor, shared by the inbox and the dead-letter list.
func listQuery(c *gin.Context) (queue.ListQuery, error) {
	q := queue.ListQuery{Limit: api.DefaultListLimit}
	if s, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > api.MaxListLimit {
			return q, httpx.BadRequest(fmt.Sprintf("limit must be an integer from 1 to %d", api.MaxListLimit))
		}
		q.Limit = n
	}
	if s, ok := c.GetQuery("cursor"); ok {
		if s == "" {
			return q, events.ErrInvalidCursor
		}
		q.Cursor = s
	}
	return q, nil
}

func (h handlers) pull(c *gin.Context) {
	var req api.PullRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	maxEvents, err1 := intField("max_events", req.MaxEvents, api.DefaultPullEvents, 1, api.MaxPullEvents)
	vis, err2 := intField("visibility_timeout_seconds", req.VisibilityTimeoutSeconds, api.DefaultVisibilitySeconds, 1, api.MaxVisibilitySeconds)
	wait, err3 := intField("wait_seconds", req.WaitSeconds, 0, 0, api.MaxWaitSeconds)
	if err := cmpOr(err1, err2, err3); err != nil {
		httpx.Fail(c, err)
		return
	}
	p := httpx.Principal(c)
	ctx, release := queue.HoldReads(c.Request.Context())
	park := &parkedPull{h: h, c: c, p: p, release: release}
	got, parked, err := h.inbox.PullOrPark(ctx, p, queue.PullQuery{
		Max: maxEvents, Visibility: seconds(vis), Wait: seconds(wait),
	}, park)
	if parked {
		return // the answer gives the read turns back
	}
	defer release()
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.ChargeWork(c, pullCost(got))
	if err := writeEvents(c, got, true, ""); err != nil && len(got) > 0 {
		release() // giving the leases back reads nothing
		h.undelivered(c.Request.Context(), httpx.Logger(c, h.log), p, got, err)
	}
}

// pullCost is a pull's work: one per event leased (each a write), and its payloads' read units.
func pullCost(got []events.Event) int { return events.ReadCost(got) + max(len(got)-1, 0) }

// undelivered gives back the leases of a pull answer that did not reach the consumer:
// spending a delivery and hiding the events for the visibility timeout would only delay them.
func (h handlers) undelivered(ctx context.Context, log *zap.Logger, p tenant.Principal, got []events.Event, err error) {
	log.Warn("pull answer not delivered; leases given back", zap.Int("events", len(got)), zap.Error(err))
	h.inbox.Release(ctx, p, got)
}

// parkedPull lets a long poll wait with its connection parked (httpx.Park) instead of holding
// the connection's goroutines, and answers it on the connection when the wait ends.
type parkedPull struct {
	h       handlers
	c       *gin.Context // until parked: Gin reuses it once the handler returns
	p       tenant.Principal
	parked  *httpx.Parked
	release func() // the pull's read turns, held until its answer is written
}

func (pp *parkedPull) Park() bool {
	parked, ok := httpx.Park(pp.c)
	pp.parked, pp.c = parked, nil
	return ok
}

func (pp *parkedPull) Gone() bool { return pp.parked.Gone() }

func (pp *parkedPull) Abandon() {
	pp.parked.Close()
	pp.release()
}

func (pp *parkedPull) Answer(got []events.Event, err error) {
	defer pp.release()
	if err != nil {
		_ = pp.parked.WriteError(err)
		return
	}
	pp.parked.ChargeWork(pullCost(got))
	werr := pp.parked.WriteStream(http.StatusOK, jsonContentType, func(w io.Writer) error {
		return encodeEvents(got, true, "", func(b []byte, _ bool) error {
			_, err := w.Write(b)
			return err
		})
	})
	if werr != nil && len(got) > 0 {
		pp.release() // giving the leases back reads nothing
		pp.h.undelivered(pp.parked.Context(), pp.parked.Logger(), pp.p, got, werr)
	}
}

func (h handlers) ack(c *gin.Context) {
	var req api.AckRequest
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
		httpx.ChargeWork(c, len(items))
		c.JSON(http.StatusOK, settleAnswer(h.inbox.Ack(c.Request.Context(), httpx.Principal(c), items), api.StatusAcknowledged, items))
		return
	}
	if req.EventIDs != nil || req.Leases != nil {
		httpx.Fail(c, httpx.BadRequest("send one of event_id, event_ids or leases"))
		return
	}
	r := queue.Ref{EventID: *req.EventID}
	if req.LeaseID != nil {
		if !events.ValidLeaseID(*req.LeaseID) {
			httpx.Fail(c, httpx.BadRequest("lease_id is malformed"))
			return
		}
		r.LeaseID = *req.LeaseID
	}
	if out := h.inbox.Ack(c.Request.Context(), httpx.Principal(c), []queue.Ref{r}); out[0].Err != nil {
		httpx.Fail(c, out[0].Err)
		return
	}
	c.JSON(http.StatusOK, api.AckAnswer{Status: api.StatusAcknowledged})
}

func (h handlers) extend(c *gin.Context) {
	var req api.ExtendRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	if req.VisibilityTimeoutSeconds == nil {
		httpx.Fail(c, httpx.BadRequest("visibility_timeout_seconds is required"))
		return
	}
	vis, err := intField("visibility_timeout_seconds", req.VisibilityTimeoutSeconds, 0, 0, api.MaxVisibilitySeconds)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	items, err := refs("leases", nil, req.Leases, true)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.ChargeWork(c, len(items))
	c.JSON(http.StatusOK, settleAnswer(h.inbox.Extend(c.Request.Context(), httpx.Principal(c), items, seconds(vis)), api.StatusExtended, items))
}

func (h handlers) nack(c *gin.Context) {
	var req api.NackRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	delay, err := intField("delay_seconds", req.DelaySeconds, 0, 0, api.MaxNackDelaySeconds)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	items, err := refs("event_ids or leases", req.EventIDs, req.Leases, false)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.ChargeWork(c, len(items))
	c.JSON(http.StatusOK, settleAnswer(h.inbox.Nack(c.Request.Context(), httpx.Principal(c), items, seconds(delay)), api.StatusNacked, items))
}

func (h handlers) redrive(c *gin.Context) {
	var req api.RedriveRequest
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
		n, more, err := h.inbox.RedriveAll(c.Request.Context(), p)
		httpx.ChargeWork(c, n)
		if err != nil {
			httpx.Fail(c, err)
			return
		}
		c.JSON(http.StatusOK, api.RedriveAllAnswer{RedrivenCount: n, More: more})
	default:
		items, err := refs("event_ids", req.EventIDs, nil, false)
		if err != nil {
			httpx.Fail(c, err)
			return
		}
		httpx.ChargeWork(c, len(items))
		ids := make([]string, len(items))
		for i, r := range items {
			ids[i] = r.EventID
		}
		c.JSON(http.StatusOK, settleAnswer(h.inbox.Redrive(c.Request.Context(), p, ids), api.StatusRedriven, items))
	}
}

// settleAnswer renders outcomes in order: the status and what changed, or the item's error.
func settleAnswer(outcomes []queue.Outcome, status string, items []queue.Ref) api.SettleAnswer {
	out := api.SettleAnswer{Results: make([]api.SettleResult, len(outcomes))}
	for i, o := range outcomes {
		r := api.SettleResult{EventID: o.EventID}
		if o.Err != nil {
			he := httpx.Describe(o.Err)
			r.Error = &api.ItemError{Code: he.Code, Message: he.Message}
			out.FailedCount++
		} else {
			r.Status = status
			if !o.LeaseExpiresAt.IsZero() {
				r.LeaseID, r.LeaseExpiresAt = items[i].LeaseID, o.LeaseExpiresAt.UnixMilli()
			}
			if !o.VisibleAt.IsZero() {
				r.VisibleAt = o.VisibleAt.UnixMilli()
			}
			out.SucceededCount++
		}
		out.Results[i] = r
	}
	return out
}

// refs validates a list of per-event references: 1 to 100, no event twice, lease ids well
// formed where required, trace contexts well formed where sent.
func refs(field string, ids []string, leases []api.LeaseRef, needLease bool) ([]queue.Ref, error) {
	var out []queue.Ref
	switch {
	case ids != nil && leases != nil:
		return nil, httpx.BadRequest("send either event_ids or leases, not both")
	case ids != nil:
		if needLease {
			return nil, httpx.BadRequest("leases is required")
		}
		for _, id := range ids {
			out = append(out, queue.Ref{EventID: id})
		}
		field = "event_ids"
	case leases != nil:
		for _, l := range leases {
			out = append(out, queue.Ref{EventID: l.EventID, LeaseID: l.LeaseID, Traceparent: l.Traceparent()})
		}
		field = "leases"
	default:
		return nil, httpx.BadRequest(field + " is required")
	}
	if len(out) == 0 || len(out) > api.MaxSettleItems {
		return nil, httpx.BadRequest(fmt.Sprintf("%s must hold 1 to %d items", field, api.MaxSettleItems))
	}
	seen := make(map[string]bool, len(out))
	for i, r := range out {
		if seen[r.EventID] {
			return nil, httpx.BadRequest(field + " names event " + strconv.Quote(r.EventID) + " more than once")
		}
		seen[r.EventID] = true
		if (field == "leases" || needLease) && !events.ValidLeaseID(r.LeaseID) {
			return nil, httpx.BadRequest("every lease needs an event_id and a well-formed lease_id")
		}
		if leases != nil && leases[i].TraceContext != nil && !telemetry.SpanContextOf(r.Traceparent).IsValid() {
			return nil, httpx.BadRequest("trace_context.traceparent of event " + strconv.Quote(r.EventID) + " is not a W3C traceparent")
		}
	}
	return out, nil
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

func cmpOr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

const jsonContentType = "application/json; charset=utf-8"

// writeEvents writes {"events":[...],"next_cursor"?} and flushes it: the error says the answer
// did not reach the connection.
func writeEvents(c *gin.Context, es []events.Event, withLease bool, next string) error {
	// No look at the request's context here: once the body is on the wire a client may read it
	// and close, cancelling the context, and its leases are then very much delivered.
	c.Header("Content-Type", jsonContentType)
	c.Status(http.StatusOK)
	err := encodeEvents(es, withLease, next, func(b []byte, whole bool) error {
		if whole {
			c.Header("Content-Length", strconv.Itoa(len(b)))
		}
		_, err := c.Writer.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	return flushError(c.Writer)
}

// streamPiece is how much of an answer is built before it is written: an answer of many large
// events goes out a piece at a time instead of existing whole beside the events it carries.
const streamPiece = 64 << 10

// pieces recycles the buffers answers are built in; one larger than maxPiece (an event near
// the size limit grew it) is left to the collector.
var pieces = sync.Pool{New: func() any { b := make([]byte, 0, streamPiece); return &b }}

const maxPiece = 4 * streamPiece

// encodeEvents builds {"events":[...],"next_cursor"?} by hand, so payloads go out byte for byte,
// and hands it to write in pieces of about streamPiece bytes; whole says the piece is the
// entire answer, so it can go with a Content-Length. write must not keep the piece.
func encodeEvents(es []events.Event, withLease bool, next string, write func(b []byte, whole bool) error) error {
	bp := pieces.Get().(*[]byte)
	b := append((*bp)[:0], `{"events":[`...)
	wrote := false
	defer func() {
		if cap(b) <= maxPiece {
			*bp = b[:0]
			pieces.Put(bp)
		}
	}()
	for i, e := range es {
		if i > 0 {
			b = append(b, ',')
		}
		b = api.AppendEvent(b, e, withLease)
		if len(b) >= streamPiece {
			if err := write(b, false); err != nil {
				return err
			}
			b, wrote = b[:0], true
		}
	}
	b = append(b, ']')
	if next != "" {
		b = append(b, `,"next_cursor":"`...)
		b = append(b, next...) // base64url: nothing to escape
		b = append(b, '"')
	}
	b = append(b, '}')
	return write(b, !wrote)
}

// flushError flushes w's innermost writer that can report a failed flush. The wrappers on the
// way (Gin's, the instrumentation's) only offer a Flush that swallows the error.
func flushError(w http.ResponseWriter) error {
	for {
		switch t := w.(type) {
		case interface{ FlushError() error }:
			return t.FlushError()
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}
