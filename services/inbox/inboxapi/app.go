// Package app is the inbox service: workers read a tenant's undelivered events and
// acknowledge them.
package inboxapi

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

// Deps is what the router needs.
type Deps struct {
	Log    *zap.Logger
	Events events.Store
	Auth   *tenant.Authenticator
	Ready  func(context.Context) error
	Now    func() time.Time
	Watch  *Watcher             // nil: one with the default intervals
	Tel    *telemetry.Telemetry // nil: record nothing
	// Metrics decides whether the event counts carry the tenant.
	Metrics telemetry.MetricsOptions
}

// NewRouter is the inbox route table. Serve it through NewHandler, which adds tracing and
// /metrics.
func NewRouter(d Deps) *gin.Engine {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Tel == nil {
		d.Tel = telemetry.Nop()
	}
	if d.Watch == nil {
		d.Watch = NewWatcher(d.Events, d.Log, d.Now, 25*time.Millisecond, 250*time.Millisecond)
	}
	h := handlers{Deps: d, obs: newObs(d.Tel, d.Auth, d.Metrics)}
	read := httpx.RequireKey(d.Auth, tenant.ScopeInboxRead)
	settle := httpx.RequireKey(d.Auth, tenant.ScopeInboxAck)
	r := httpx.NewEngine(d.Log, d.Ready)
	r.GET("/inbox", read, h.inbox)
	r.POST("/inbox/pull", read, h.pull)
	r.POST("/inbox/extend", settle, h.extend)
	r.GET("/inbox/dead", read, h.dead)
	r.POST("/inbox/redrive", settle, h.redrive)
	r.POST("/ack", settle, h.ack)
	r.POST("/nack", settle, h.nack)
	r.GET("/openapi.json", openapi.Handler("inbox"))
	return r
}

// Run serves the inbox API until ctx ends.
func Run(ctx context.Context, log *zap.Logger, cfg Config) error {
	b, err := backend.Open(ctx, cfg.Settings, cfg.AuthConfig)
	if err != nil {
		return err
	}
	h := NewHandler(Deps{
		Log: log, Events: b.Events, Auth: b.Auth, Ready: b.Ready,
		Watch:   NewWatcher(b.Events, log, time.Now, cfg.LongPollMinInterval, cfg.LongPollMaxInterval),
		Tel:     telemetry.FromContext(ctx),
		Metrics: cfg.MetricsOptions,
	})
	return httpx.Serve(ctx, log, cfg.HTTPAddr, cfg.ServerConfig, h)
}

// NewHandler is the router behind tracing, request metrics and /metrics.
func NewHandler(d Deps) http.Handler { return httpx.Instrument(NewRouter(d), d.Tel) }

type handlers struct {
	Deps
	obs obs
}
