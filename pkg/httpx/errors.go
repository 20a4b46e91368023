package httpx

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/storage"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// Error is an answer that is already decided: a status, a stable code and a message that is
// safe to show the client.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the Retry-After of a 429 or 503, in seconds; 0 means 1.
	RetryAfter int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// NewError builds an Error.
func NewError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// BadRequest is a 400 invalid_request.
func BadRequest(message string) *Error {
	return NewError(http.StatusBadRequest, "invalid_request", message)
}

// Unauthenticated is the single answer to every refused key or token.
var Unauthenticated = NewError(http.StatusUnauthorized, "unauthenticated", "missing or invalid credentials")

type envelope struct {
	Error envelopeBody `json:"error"`
}

type envelopeBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// toHTTP maps a domain error to its answer. This is the only place statuses are decided for
// errors; anything it does not know is a 500 whose cause is logged, not shown.
func toHTTP(err error) (*Error, bool) {
	var he *Error
	var ev *events.ValidationError
	var tv *tenant.ValidationError
	var rl *tenant.RateLimitedError
	var tf *tenant.TooManyFailuresError
	switch {
	case errors.As(err, &he):
		return he, true
	case errors.As(err, &ev):
		return NewError(http.StatusBadRequest, ev.Code, ev.Msg), true
	case errors.As(err, &tv):
		return BadRequest(tv.Msg), true
	case errors.As(err, &rl):
		he := NewError(http.StatusTooManyRequests, "rate_limited", "this tenant is over its request rate; retry after the Retry-After seconds")
		he.RetryAfter = rl.RetryAfterSeconds()
		return he, true
	case errors.As(err, &tf):
		// The same answer as the tenant's rate, but the address's doing, not the tenant's.
		he := NewError(http.StatusTooManyRequests, "rate_limited", "too many failed authentications from this address; retry after the Retry-After seconds")
		he.RetryAfter = tf.RetryAfterSeconds()
		return he, true
	case errors.Is(err, tenant.ErrUnauthenticated):
		return Unauthenticated, true
	case errors.Is(err, tenant.ErrForbidden):
		return NewError(http.StatusForbidden, "forbidden", "the API key lacks the scope this call needs"), true
	case errors.Is(err, events.ErrEventTooLarge):
		return NewError(http.StatusRequestEntityTooLarge, "payload_too_large", events.ErrEventTooLarge.Error()), true
	case errors.Is(err, events.ErrNotFound):
		return NewError(http.StatusNotFound, "not_found", "event not found"), true
	case errors.Is(err, events.ErrLeaseLost):
		return NewError(http.StatusConflict, "lease_lost", "the lease no longer holds this event"), true
	case errors.Is(err, events.ErrSettled):
		return NewError(http.StatusConflict, "already_settled", "the event is already acknowledged"), true
	case errors.Is(err, events.ErrNotDead):
		return NewError(http.StatusConflict, "not_dead", "only dead events can be redriven"), true
	case errors.Is(err, events.ErrIdempotencyConflict):
		return NewError(http.StatusConflict, "idempotency_conflict", "this Idempotency-Key was already used with a different body"), true
	case errors.Is(err, events.ErrInvalidCursor):
		return NewError(http.StatusBadRequest, "invalid_cursor", "cursor is malformed or was not issued for this tenant"), true
	case errors.Is(err, tenant.ErrNotFound):
		return NewError(http.StatusNotFound, "not_found", "tenant not found"), true
	case errors.Is(err, tenant.ErrKeyNotFound):
		return NewError(http.StatusNotFound, "not_found", "api key not found"), true
	case errors.Is(err, tenant.ErrKeyRevoked):
		return NewError(http.StatusConflict, "key_revoked", "the api key is revoked and cannot be rolled"), true
	case errors.Is(err, tenant.ErrKeyExpired):
		return NewError(http.StatusConflict, "key_expired", "the api key has expired and cannot be rolled; issue a new key"), true
	case errors.Is(err, tenant.ErrPartitionsShrink):
		return NewError(http.StatusConflict, "partitions_shrink", "partitions can only be increased"), true
	case errors.Is(err, tenant.ErrExists):
		return NewError(http.StatusConflict, "tenant_exists", "a tenant with this id already exists"), true
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		// A budget that ran out is the store being slow, never the client's fault.
		return NewError(http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable; retry later"), true
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return NewError(http.StatusServiceUnavailable, "canceled", "request canceled"), true
	}
	return NewError(http.StatusInternalServerError, "internal", "internal error"), false
}

// Describe returns the answer err maps to, for per-item results inside a 200 batch answer.
func Describe(err error) *Error {
	he, _ := toHTTP(err)
	return he
}

// Fail records err on the request and stops the handler chain; the error middleware renders it.
func Fail(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Abort()
}

// renderErrors is the middleware that turns a failed request into the envelope.
func renderErrors(log *zap.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if len(c.Errors) == 0 || c.Writer.Written() {
			return
		}
		err := c.Errors.Last().Err
		if r := requestOf(c); r != nil && r.auth != nil {
			r.auth.Hold(c.Request.Context(), err)
		}
		he, known := toHTTP(err)
		if !known {
			Logger(c, log).Error("request failed", zap.Error(err))
		} else if he.Status == http.StatusServiceUnavailable {
			Logger(c, log).Warn("dependency unavailable", zap.Error(err))
		}
		WriteError(c, he)
	}
}

// WriteError writes the envelope for he.
func WriteError(c *gin.Context, he *Error) {
	switch he.Status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		c.Header("Retry-After", strconv.Itoa(max(he.RetryAfter, 1)))
	case http.StatusUnauthorized:
		c.Header("WWW-Authenticate", `Bearer realm="trigger-api"`)
	}
	c.AbortWithStatusJSON(he.Status, envelope{Error: envelopeBody{Code: he.Code, Message: he.Message, RequestID: RequestID(c)}})
}
