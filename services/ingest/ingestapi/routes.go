// Package ingestapi is the ingest service's HTTP API: producers POST events with their tenant
// key. It decodes a request, calls the queue's publishing use cases (package queue) and encodes
// the answer.
package ingestapi

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
	Log       *zap.Logger
	Publisher *queue.Publisher
	Auth      *tenant.Authenticator
	Ready     func(context.Context) error
	Tel       *telemetry.Telemetry // nil: record nothing
}

// NewRouter is the ingest route table, each route with the scope it needs. Serve it through
// NewHandler, which adds tracing and /metrics.
func NewRouter(d Deps) *gin.Engine {
	h := handlers{publisher: d.Publisher}
	r := httpx.NewEngine(d.Log, d.Ready)
	busy := httpx.NewInFlight(httpx.MaxTenantInFlight).Limit
	write := httpx.RequireKey(d.Auth, tenant.ScopeEventsWrite)
	r.POST("/events", write, busy, h.publish)
	r.POST("/events/batch", write, busy, h.batch)
	r.GET("/events/:event_id", httpx.RequireKey(d.Auth, tenant.ScopeEventsWrite, tenant.ScopeInboxRead), busy, h.get)
	r.GET("/openapi.json", openapi.Handler("ingest"))
	return r
}

// NewHandler is the router behind tracing, request metrics and /metrics.
func NewHandler(d Deps) http.Handler {
	return httpx.InstrumentTenantAPI(NewRouter(d), d.Tel, d.Auth)
}
