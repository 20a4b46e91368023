package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/trigger-api/trigger-api/pkg/api"
)

// Admin speaks the admin API (tenants and their keys) with one admin token. It is safe for
// concurrent use.
type Admin struct {
	c *conn
}

// NewAdmin returns a client of the admin API at baseURL authenticated with adminToken.
func NewAdmin(baseURL, adminToken string, opts ...Option) (*Admin, error) {
	c, err := newConn(baseURL, adminToken, "admin token", opts)
	if err != nil {
		return nil, err
	}
	return &Admin{c: c}, nil
}

// CreateTenant creates a tenant; one that exists already is a 409.
func (a *Admin) CreateTenant(ctx context.Context, req api.CreateTenantRequest) (api.Tenant, error) {
	return call[api.Tenant](ctx, a, "create_tenant", http.MethodPost, "/admin/tenants", req, http.StatusCreated, false)
}

// GetTenant reads one tenant.
func (a *Admin) GetTenant(ctx context.Context, tenantID string) (api.Tenant, error) {
	return call[api.Tenant](ctx, a, "get_tenant", http.MethodGet, tenantPath(tenantID), nil, http.StatusOK, true)
}

// ListTenants reads a page of tenants; limit 0 and cursor "" take the first page's defaults.
func (a *Admin) ListTenants(ctx context.Context, limit int, cursor string) (api.TenantList, error) {
	var out api.TenantList
	_, err := a.c.do(ctx, request{
		op: "list_tenants", method: http.MethodGet, path: "/admin/tenants", query: pageQuery(limit, cursor),
		want: []int{http.StatusOK}, limit: maxSmallBytes, retry: true,
	}, &out)
	return out, err
}

// PatchTenant changes the fields of req that are set. It is retried like a read: each field
// is set to a value, so setting it twice changes nothing more.
func (a *Admin) PatchTenant(ctx context.Context, tenantID string, req api.PatchTenantRequest) (api.Tenant, error) {
	return call[api.Tenant](ctx, a, "patch_tenant", http.MethodPatch, tenantPath(tenantID), req, http.StatusOK, true)
}

// IssueKey issues a key for the tenant; the answer is the only one that carries its secret.
func (a *Admin) IssueKey(ctx context.Context, tenantID string, req api.IssueKeyRequest) (api.IssuedKey, error) {
	return call[api.IssuedKey](ctx, a, "issue_key", http.MethodPost, tenantPath(tenantID)+"/keys", req, http.StatusCreated, false)
}

// ListKeys lists the tenant's keys: metadata only, never a secret.
func (a *Admin) ListKeys(ctx context.Context, tenantID string) (api.KeyList, error) {
	return call[api.KeyList](ctx, a, "list_keys", http.MethodGet, tenantPath(tenantID)+"/keys", nil, http.StatusOK, true)
}

// RevokeKey revokes a key; revoking a revoked key changes nothing, so it is retried.
func (a *Admin) RevokeKey(ctx context.Context, tenantID, keyID string) (api.Key, error) {
	return call[api.Key](ctx, a, "revoke_key", http.MethodDelete, keyPath(tenantID, keyID), nil, http.StatusOK, true)
}

// RollKey issues a replacement for a key; the old one keeps working for req.ExpiresInSeconds.
func (a *Admin) RollKey(ctx context.Context, tenantID, keyID string, req api.RollKeyRequest) (api.IssuedKey, error) {
	return call[api.IssuedKey](ctx, a, "roll_key", http.MethodPost, keyPath(tenantID, keyID)+"/roll", req, http.StatusCreated, false)
}

// call makes one admin call and decodes its answer as T; body nil sends none.
func call[T any](ctx context.Context, a *Admin, op, method, path string, body any, want int, retry bool) (T, error) {
	var out T
	r := request{op: op, method: method, path: path, want: []int{want}, limit: maxSmallBytes, retry: retry}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return out, err
		}
		r.body = b
	}
	_, err := a.c.do(ctx, r, &out)
	return out, err
}

func tenantPath(tenantID string) string { return "/admin/tenants/" + url.PathEscape(tenantID) }

func keyPath(tenantID, keyID string) string {
	return tenantPath(tenantID) + "/keys/" + url.PathEscape(keyID)
}
