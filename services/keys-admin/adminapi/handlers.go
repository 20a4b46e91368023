package adminapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

type handlers struct {
	log   *zap.Logger
	admin *tenant.Admin
}

var errInvalidCursor = httpx.NewError(http.StatusBadRequest, "invalid_cursor", "cursor is malformed")

// fail hands err to the shared error middleware.
func fail(c *gin.Context, err error) { httpx.Fail(c, err) }

// decodeOptional reads a body whose fields are all optional: a request without a body is {}.
func decodeOptional(c *gin.Context, dst any) error {
	if c.Request.ContentLength == 0 {
		return nil
	}
	return httpx.DecodeJSON(c, dst)
}

// audit logs an administrative change and the id of the admin token that made it. Key
// prefixes may be logged; secrets and hashes never.
func (h *handlers) audit(c *gin.Context, msg string, fields ...zap.Field) {
	httpx.Logger(c, h.log).Info(msg, append([]zap.Field{zap.String("admin_id", adminID(c))}, fields...)...)
}

func (h *handlers) createTenant(c *gin.Context) {
	var req api.CreateTenantRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	t, err := h.admin.CreateTenant(c.Request.Context(), newTenant(req))
	if err != nil {
		fail(c, err)
		return
	}
	h.audit(c, "tenant created", zap.String("tenant_id", t.ID), zap.Int("partitions", t.Partitions))
	c.JSON(http.StatusCreated, toTenant(t))
}

func (h *handlers) listTenants(c *gin.Context) {
	limit := tenant.DefaultListLimit
	if s, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(s)
		if err != nil {
			fail(c, httpx.BadRequest("limit must be an integer between 1 and 100"))
			return
		}
		limit = n
	}
	after := ""
	if s := c.Query("cursor"); s != "" {
		id, ok := decodeCursor(s)
		if !ok {
			fail(c, errInvalidCursor)
			return
		}
		after = id
	}
	tenants, next, err := h.admin.ListTenants(c.Request.Context(), limit, after)
	if err != nil {
		fail(c, err)
		return
	}
	out := api.TenantList{Tenants: make([]api.Tenant, 0, len(tenants)), NextCursor: encodeCursor(next)}
	for _, t := range tenants {
		out.Tenants = append(out.Tenants, toTenant(t))
	}
	c.JSON(http.StatusOK, out)
}

func (h *handlers) getTenant(c *gin.Context) {
	t, err := h.admin.GetTenant(c.Request.Context(), c.Param("tenant_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toTenant(t))
}

func (h *handlers) patchTenant(c *gin.Context) {
	var req api.PatchTenantRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	t, err := h.admin.UpdateTenant(c.Request.Context(), c.Param("tenant_id"), tenantPatch(req))
	if err != nil {
		fail(c, err)
		return
	}
	h.audit(c, "tenant updated", zap.String("tenant_id", t.ID), zap.String("status", string(t.Status)),
		zap.Int("partitions", t.Partitions), zap.Int("max_deliveries", t.MaxDeliveries), zap.Int("retention_days", t.RetentionDays),
		zap.Int("rate_limit", t.RateLimit))
	c.JSON(http.StatusOK, toTenant(t))
}

func (h *handlers) issueKey(c *gin.Context) {
	var req api.IssueKeyRequest
	if err := decodeOptional(c, &req); err != nil {
		fail(c, err)
		return
	}
	in := tenant.KeyRequest{Scopes: req.Scopes, Label: req.Label}
	if req.ExpiresAt != nil {
		at, err := time.Parse(time.RFC3339, *req.ExpiresAt)
		if err != nil {
			fail(c, httpx.BadRequest("expires_at must be an RFC 3339 time such as 2030-01-02T15:04:05Z"))
			return
		}
		in.ExpiresAt = at
	}
	k, err := h.admin.IssueKey(c.Request.Context(), c.Param("tenant_id"), in)
	if err != nil {
		fail(c, err)
		return
	}
	h.audit(c, "api key issued", zap.String("tenant_id", k.Key.TenantID), zap.String("key_id", k.Key.ID),
		zap.String("key_prefix", k.Key.Prefix))
	c.JSON(http.StatusCreated, toIssuedKey(k))
}

func (h *handlers) listKeys(c *gin.Context) {
	keys, err := h.admin.ListKeys(c.Request.Context(), c.Param("tenant_id"))
	if err != nil {
		fail(c, err)
		return
	}
	out := api.KeyList{Keys: make([]api.Key, 0, len(keys))}
	for _, k := range keys {
		out.Keys = append(out.Keys, toKey(k))
	}
	c.JSON(http.StatusOK, out)
}

func (h *handlers) revokeKey(c *gin.Context) {
	k, err := h.admin.RevokeKey(c.Request.Context(), c.Param("tenant_id"), c.Param("key_id"))
	if err != nil {
		fail(c, err)
		return
	}
	h.audit(c, "api key revoked", zap.String("tenant_id", k.TenantID), zap.String("key_id", k.ID))
	c.JSON(http.StatusOK, toKey(k))
}

func (h *handlers) rollKey(c *gin.Context) {
	var req api.RollKeyRequest
	if err := decodeOptional(c, &req); err != nil {
		fail(c, err)
		return
	}
	overlap := tenant.DefaultRollOverlap
	if s := req.ExpiresInSeconds; s != nil {
		// Bounded here as well as in the domain: a huge number of seconds would overflow the
		// conversion to a duration and slip through.
		if *s < 0 || *s > int64(tenant.MaxRollOverlap/time.Second) {
			fail(c, httpx.BadRequest("expires_in_seconds must be between 0 and 2592000"))
			return
		}
		overlap = time.Duration(*s) * time.Second
	}
	r, err := h.admin.RollKey(c.Request.Context(), c.Param("tenant_id"), c.Param("key_id"), overlap)
	if err != nil {
		fail(c, err)
		return
	}
	h.audit(c, "api key rolled", zap.String("tenant_id", r.New.Key.TenantID), zap.String("old_key_id", r.Old.ID),
		zap.Time("old_key_expires_at", r.Old.ExpiresAt), zap.String("key_id", r.New.Key.ID),
		zap.String("key_prefix", r.New.Key.Prefix))
	c.JSON(http.StatusCreated, toIssuedKey(r.New))
}
