// Package app is the ingest service: producers POST events with their tenant key.
package ingestapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/backend"
	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/openapi"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// writeTimeout bounds a store write that must finish even if the client has gone: a write
// that DynamoDB may have applied should not be cut off halfway by a disconnect.
const writeTimeout = 10 * time.Second

// Deps is what the router needs.
type Deps struct {
	Log    *zap.Logger
	Events events.Store
	Auth   *tenant.Authenticator
	Ready  func(context.Context) error
	Now    func() time.Time
	Tel    *telemetry.Telemetry // nil: record nothing
	// Metrics decides whether the event counts carry the tenant.
	Metrics telemetry.MetricsOptions
}

// NewRouter is the ingest route table. Serve it through NewHandler, which adds tracing and
// /metrics.
func NewRouter(d Deps) *gin.Engine {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Tel == nil {
		d.Tel = telemetry.Nop()
	}
	h := handlers{Deps: d, obs: newObs(d.Tel, d.Auth, d.Metrics)}
	r := httpx.NewEngine(d.Log, d.Ready)
	write := httpx.RequireKey(d.Auth, tenant.ScopeEventsWrite)
	r.POST("/events", write, h.ingest)
	r.POST("/events/batch", write, h.batch)
	r.GET("/events/:event_id", httpx.RequireKey(d.Auth, tenant.ScopeEventsWrite, tenant.ScopeInboxRead), h.get)
	r.GET("/openapi.json", openapi.Handler("ingest"))
	return r
}

// Run serves the ingest API until ctx ends.
func Run(ctx context.Context, log *zap.Logger, cfg Config) error {
	b, err := backend.Open(ctx, cfg.Settings, cfg.AuthConfig)
	if err != nil {
		return err
	}
	tel := telemetry.FromContext(ctx)
	h := NewHandler(Deps{Log: log, Events: b.Events, Auth: b.Auth, Ready: b.Ready, Tel: tel, Metrics: cfg.MetricsOptions})
	return httpx.Serve(ctx, log, cfg.HTTPAddr, cfg.ServerConfig, h)
}

// NewHandler is the router behind tracing, request metrics and /metrics.
func NewHandler(d Deps) http.Handler { return httpx.Instrument(NewRouter(d), d.Tel) }

type handlers struct {
	Deps
	obs obs
}

type acceptedDTO struct {
	EventID    string `json:"event_id"`
	ReceivedAt int64  `json:"received_at"`
	Status     string `json:"status"`
}

func (h handlers) ingest(c *gin.Context) {
	idemKey, hasKey := c.Request.Header["Idempotency-Key"]
	if hasKey && (len(idemKey) != 1 || !validIdempotencyKey(idemKey[0])) {
		httpx.Fail(c, httpx.BadRequest("Idempotency-Key must be one header of 1 to 255 printable ASCII characters"))
		return
	}
	body, err := httpx.ReadJSONBody(c, events.MaxEventBytes)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	eventType, err := events.Validate(body)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	p := httpx.Principal(c)
	now := h.Now()
	e := events.New(p.TenantID, eventType, body, p.Partitions, now)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), writeTimeout)
	defer cancel()
	ctx, span := h.obs.publish(ctx, &e)
	defer span.End()
	status := http.StatusAccepted
	if hasKey {
		var replayed bool
		e, replayed, err = h.Events.PutOnce(ctx, e, idempotency(idemKey[0], body, now), now)
		if replayed {
			status = http.StatusOK
			c.Header("Idempotent-Replayed", "true")
		}
	} else {
		err = h.Events.Put(ctx, e)
	}
	h.obs.published(ctx, span, e, replayedStatus(status), err)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.Header("Location", "/events/"+e.ID)
	c.JSON(status, acceptedDTO{EventID: e.ID, ReceivedAt: e.ReceivedAt.UnixMilli(), Status: "accepted"})
}

func replayedStatus(status int) bool { return status == http.StatusOK }

func (h handlers) get(c *gin.Context) {
	id := c.Param("event_id")
	if !events.ValidID(id) {
		httpx.Fail(c, events.ErrNotFound)
		return
	}
	e, err := h.Events.Get(c.Request.Context(), httpx.Principal(c).TenantID, id, h.Now())
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", events.AppendJSON(nil, e, false))
}
