package ingestapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/queue"
)

type handlers struct {
	publisher *queue.Publisher
}

func (h handlers) publish(c *gin.Context) {
	var key *string
	if k, ok := c.Request.Header["Idempotency-Key"]; ok {
		if len(k) != 1 || !events.ValidIdempotencyKey(k[0]) {
			httpx.Fail(c, httpx.BadRequest("Idempotency-Key must be one header of 1 to 255 printable ASCII characters"))
			return
		}
		key = &k[0]
	}
	body, err := httpx.ReadJSONBody(c, events.MaxEventBytes)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	out, err := h.publisher.Publish(c.Request.Context(), httpx.Principal(c), body, key)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	status := http.StatusAccepted
	if out.Replayed {
		status = http.StatusOK
		c.Header("Idempotent-Replayed", "true")
	}
	c.Header("Location", "/events/"+out.Event.ID)
	c.JSON(status, api.Accepted{EventID: out.Event.ID, ReceivedAt: out.Event.ReceivedAt.UnixMilli(), Status: api.StatusAccepted})
}

func (h handlers) batch(c *gin.Context) {
	body, err := httpx.ReadJSONBody(c, api.MaxBatchBytes)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	var req api.BatchRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() || !keysOnce(body) {
		httpx.Fail(c, httpx.NewError(http.StatusBadRequest, "invalid_json", `body must be one JSON object {"events":[...]}`))
		return
	}
	if len(req.Events) == 0 || len(req.Events) > api.MaxBatchEvents {
		httpx.Fail(c, httpx.BadRequest(fmt.Sprintf("events must hold 1 to %d events", api.MaxBatchEvents)))
		return
	}
	httpx.ChargeWork(c, len(req.Events))
	items := h.publisher.PublishBatch(c.Request.Context(), httpx.Principal(c), req.Events)
	out := api.BatchAnswer{Results: make([]api.BatchResult, len(items))}
	for i, it := range items {
		if it.Err != nil {
			he := httpx.Describe(it.Err)
			out.Results[i] = api.BatchResult{Error: &api.ItemError{Code: he.Code, Message: he.Message}}
			out.FailedCount++
			continue
		}
		out.Results[i] = api.BatchResult{EventID: it.Event.ID, ReceivedAt: it.Event.ReceivedAt.UnixMilli(),
			Status: api.StatusAccepted, Replayed: it.Replayed}
	}
	c.JSON(http.StatusOK, out)
}

func (h handlers) get(c *gin.Context) {
	e, err := h.publisher.Get(c.Request.Context(), httpx.Principal(c), c.Param("event_id"))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.ChargeWork(c, events.ReadCost([]events.Event{e}))
	c.Data(http.StatusOK, "application/json; charset=utf-8", api.AppendEvent(nil, e, false))
}

// keysOnce reports whether the batch's top-level object names each key once. The items are
// checked one by one, each with its own answer, so only the envelope is looked at here.
func keysOnce(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		k, ok := t.(string)
		if err != nil || !ok || seen[k] {
			return false
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return true
}
