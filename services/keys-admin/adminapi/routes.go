package adminapi

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/openapi"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// NewRouter is the keys-admin route table. tokens tells which admin acts; ready backs /readyz;
// now may be nil for the wall clock.
func NewRouter(log *zap.Logger, store tenant.Store, tokens AdminAuth, ready func(context.Context) error, now func() time.Time) *gin.Engine {
	r := httpx.NewEngine(log, ready)
	h := &handlers{log: log, admin: tenant.NewAdmin(store, now)}

	// Scope: admin token on every route, unknown ones included. Tenant API keys are never
	// accepted here.
	guard := requireAdmin(tokens)
	httpx.GuardUnmatched(r, guard)
	admin := r.Group("/admin", guard)
	admin.POST("/tenants", h.createTenant)
	admin.GET("/tenants", h.listTenants)
	admin.GET("/tenants/:tenant_id", h.getTenant)
	admin.PATCH("/tenants/:tenant_id", h.patchTenant)
	// The answers of issue and roll carry a key's secret: see noStore.
	admin.POST("/tenants/:tenant_id/keys", noStore, h.issueKey)
	admin.GET("/tenants/:tenant_id/keys", h.listKeys)
	admin.DELETE("/tenants/:tenant_id/keys/:key_id", h.revokeKey)
	admin.POST("/tenants/:tenant_id/keys/:key_id/roll", noStore, h.rollKey)
	r.GET("/openapi.json", openapi.Handler("keys-admin"))
	return r
}
