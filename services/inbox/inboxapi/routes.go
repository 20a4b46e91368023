// Package inboxapi is the inbox's HTTP API: workers list, lease and settle a tenant's events.
// It decodes a request, calls the queue's use cases (package queue) and encodes the answer.
package inboxapi

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/openapi"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// Deps is what the router needs.
type Deps struct {
	Log   *zap.Logger
	Inbox *queue.Inbox
	Auth  *tenant.Authenticator
	Ready func(context.Context) error
	Tel   *telemetry.Telemetry // nil: record nothing
}

// NewRouter is the inbox route table, each route with the scope it needs. Serve it through
// NewHandler, which adds tracing and /metrics.
func NewRouter(d Deps) *gin.Engine {
	h := handlers{inbox: d.Inbox, log: d.Log}
	read := httpx.RequireKey(d.Auth, tenant.ScopeInboxRead)
	// Leasing changes state (it hides events and spends deliveries), so it takes the
	// consuming scope, not the read-only one.
	consume := httpx.RequireKey(d.Auth, tenant.ScopeInboxAck)
	busy := httpx.NewInFlight(httpx.MaxTenantInFlight).Limit
	r := httpx.NewEngine(d.Log, d.Ready)
	r.GET("/inbox", read, busy, h.list)
	r.POST("/inbox/pull", consume, busy, h.pull)
	r.POST("/inbox/extend", consume, busy, h.extend)
	r.GET("/inbox/dead", read, busy, h.dead)
	r.POST("/inbox/redrive", consume, busy, h.redrive)
	r.POST("/ack", consume, busy, h.ack)
	r.POST("/nack", consume, busy, h.nack)
	r.GET("/openapi.json", openapi.Handler("inbox"))
	return r
}

// NewHandler is the router behind tracing, request metrics and /metrics.
func NewHandler(d Deps) http.Handler {
	return httpx.InstrumentTenantAPI(NewRouter(d), d.Tel, d.Auth)
}
