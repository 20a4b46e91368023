package httpx

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// ctxRequest holds a request's *request: one entry in Gin's keys rather than one per value.
const ctxRequest = "httpx.request"

// request is what the shared middleware learns about a request as it runs. Its log fields are
// kept as values, and a logger carrying them is built only when something other than the
// access line logs: cloning a zap logger encodes its fields, which every request would
// otherwise pay for, twice (once for the ids, again for the tenant).
type request struct {
	id        string
	span      trace.SpanContext
	tenantID  string
	principal tenant.Principal
	auth      *tenant.Authenticator // the one that admitted the request, for ChargeWork
	base      *zap.Logger
	log       *zap.Logger // built from base on first use; nil again when a field changes
	parked    *Parked     // set by Park: the access line waits for the answer
}

// newRequestID is "req_" and 96 random bits in hex, built in one allocation.
func newRequestID() string {
	var raw [12]byte
	_, _ = rand.Read(raw[:])
	var b [4 + 2*len(raw)]byte
	copy(b[:], "req_")
	hex.Encode(b[4:], raw[:])
	return string(b[:])
}

func requestOf(c *gin.Context) *request {
	if v, ok := c.Get(ctxRequest); ok {
		return v.(*request)
	}
	return nil
}

// idFields appends the fields every line about the request carries: its id, its trace and
// span ids when traced, and its tenant once known.
func (r *request) idFields(fs []zap.Field) []zap.Field {
	fs = append(fs, zap.String("request_id", r.id))
	if r.span.IsValid() {
		fs = append(fs, zap.String("trace_id", r.span.TraceID().String()), zap.String("span_id", r.span.SpanID().String()))
	}
	if r.tenantID != "" {
		fs = append(fs, zap.String("tenant_id", r.tenantID))
	}
	return fs
}

func (r *request) logger() *zap.Logger {
	if r.log == nil {
		r.log = r.base.With(r.idFields(make([]zap.Field, 0, 4))...)
	}
	return r.log
}

func (r *request) setTenant(id string) {
	r.tenantID = id
	r.log = nil
}
