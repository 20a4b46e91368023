package ingestapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/httpx"
)

const (
	maxBatchEvents = 100
	maxBatchBytes  = 1 << 20
	// idempotencyWindow is how long a key is remembered.
	idempotencyWindow = 24 * time.Hour
	// batchParallelism bounds the idempotent writes of one batch.
	batchParallelism = 16
)

func validIdempotencyKey(k string) bool {
	if len(k) < 1 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// idempotency derives the stored record: the key only as a hash, the body as a fingerprint.
func idempotency(key string, body []byte, now time.Time) events.Idempotency {
	k := sha256.Sum256([]byte(key))
	f := sha256.Sum256(body)
	return events.Idempotency{
		KeyHash:     hex.EncodeToString(k[:]),
		Fingerprint: hex.EncodeToString(f[:]),
		ExpiresAt:   now.Add(idempotencyWindow),
	}
}

type batchItemResult struct {
	EventID    string       `json:"event_id,omitempty"`
	ReceivedAt int64        `json:"received_at,omitempty"`
	Status     string       `json:"status,omitempty"`
	Replayed   bool         `json:"replayed,omitempty"`
	Error      *resultError `json:"error,omitempty"`
}

type resultError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type batchDTO struct {
	Results     []batchItemResult `json:"results"`
	FailedCount int               `json:"failed_count"`
}

func itemError(err error) *resultError {
	he := httpx.Describe(err)
	return &resultError{Code: he.Code, Message: he.Message}
}

// batch ingests up to 100 events. Each item is judged on its own: a bad one gets an error in
// its result and never blocks the others. An item's optional top-level "idempotency_key"
// string makes that item idempotent; the item is stored exactly as sent, key included.
func (h handlers) batch(c *gin.Context) {
	body, err := httpx.ReadJSONBody(c, maxBatchBytes)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	var req struct {
		Events []json.RawMessage `json:"events"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		httpx.Fail(c, httpx.NewError(http.StatusBadRequest, "invalid_json", `body must be one JSON object {"events":[...]}`))
		return
	}
	if len(req.Events) == 0 || len(req.Events) > maxBatchEvents {
		httpx.Fail(c, httpx.BadRequest(fmt.Sprintf("events must hold 1 to %d events", maxBatchEvents)))
		return
	}

	p := httpx.Principal(c)
	now := h.Now()
	out := batchDTO{Results: make([]batchItemResult, len(req.Events))}
	var plain []events.Event
	var plainAt []int
	type keyed struct {
		at   int
		e    events.Event
		idem events.Idempotency
	}
	var withKey []keyed
	spans := make([]trace.Span, len(req.Events))
	for i, raw := range req.Events {
		eventType, key, err := validateItem(raw)
		if err != nil {
			out.Results[i] = batchItemResult{Error: itemError(err)}
			continue
		}
		// The decoder's RawMessage aliases body; the stored payload gets its own copy.
		e := events.New(p.TenantID, eventType, bytes.Clone(raw), p.Partitions, now)
		// Each event its own publish span and so its own context, ended once its write is known.
		_, spans[i] = h.obs.publish(c.Request.Context(), &e)
		if key == "" {
			plain, plainAt = append(plain, e), append(plainAt, i)
		} else {
			withKey = append(withKey, keyed{at: i, e: e, idem: idempotency(key, raw, now)})
		}
	}

	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), writeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if len(plain) == 0 {
			return
		}
		for j, err := range h.Events.PutMany(ctx, plain) {
			out.Results[plainAt[j]] = accepted(plain[j], false, err)
			h.obs.published(ctx, spans[plainAt[j]], plain[j], false, err)
		}
	}()
	sem := make(chan struct{}, batchParallelism)
	for _, k := range withKey {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			wctx := trace.ContextWithSpan(ctx, spans[k.at])
			e, replayed, err := h.Events.PutOnce(wctx, k.e, k.idem, now)
			out.Results[k.at] = accepted(e, replayed, err)
			h.obs.published(wctx, spans[k.at], e, replayed, err)
		}()
	}
	wg.Wait()
	for _, s := range spans {
		if s != nil {
			s.End()
		}
	}
	for _, r := range out.Results {
		if r.Error != nil {
			out.FailedCount++
		}
	}
	c.JSON(http.StatusOK, out)
}

func accepted(e events.Event, replayed bool, err error) batchItemResult {
	if err != nil {
		return batchItemResult{Error: itemError(err)}
	}
	return batchItemResult{EventID: e.ID, ReceivedAt: e.ReceivedAt.UnixMilli(), Status: "accepted", Replayed: replayed}
}

var errBadItemKey = errors.New("idempotency_key must be a string of 1 to 255 printable ASCII characters")

// validateItem checks one batch item as POST /events checks a body, and reads its
// idempotency key.
func validateItem(raw json.RawMessage) (eventType, key string, err error) {
	if len(raw) > events.MaxEventBytes {
		return "", "", httpx.NewError(http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("event exceeds %d bytes", events.MaxEventBytes))
	}
	if eventType, err = events.Validate(raw); err != nil {
		return "", "", err
	}
	// A map, as in events.Validate: struct fields would also match "IDEMPOTENCY_KEY".
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return "", "", err
	}
	rawKey, ok := fields["idempotency_key"]
	if !ok {
		return eventType, "", nil
	}
	if err := json.Unmarshal(rawKey, &key); err != nil || !validIdempotencyKey(key) {
		return "", "", httpx.BadRequest(errBadItemKey.Error())
	}
	return eventType, key, nil
}
