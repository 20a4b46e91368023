package adminapi

import (
	"encoding/base64"
	"time"

	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// Wire types of the admin API and their converters. Domain types never go on the wire
// directly, so a field added to the domain cannot leak by accident (a key's hash above all).

type createTenantRequest struct {
	TenantID      string `json:"tenant_id"`
	Name          string `json:"name"`
	Partitions    *int   `json:"partitions"`
	MaxDeliveries *int   `json:"max_deliveries"`
	RetentionDays *int   `json:"retention_days"`
	RateLimit     *int   `json:"rate_limit"`
}

func (r createTenantRequest) toDomain() tenant.NewTenant {
	// Omitted means the default; an explicit 0 stays 0 and is refused.
	partitions := tenant.DefaultPartitions
	if r.Partitions != nil {
		partitions = *r.Partitions
	}
	t := tenant.NewTenant{ID: r.TenantID, Name: r.Name, Partitions: partitions,
		MaxDeliveries: r.MaxDeliveries, RetentionDays: r.RetentionDays}
	if r.RateLimit != nil {
		t.RateLimit = *r.RateLimit
	}
	return t
}

type patchTenantRequest struct {
	Status        *string `json:"status"`
	Partitions    *int    `json:"partitions"`
	MaxDeliveries *int    `json:"max_deliveries"`
	RetentionDays *int    `json:"retention_days"`
	RateLimit     *int    `json:"rate_limit"`
}

func (r patchTenantRequest) toDomain() tenant.Patch {
	p := tenant.Patch{Partitions: r.Partitions, MaxDeliveries: r.MaxDeliveries, RetentionDays: r.RetentionDays, RateLimit: r.RateLimit}
	if r.Status != nil {
		s := tenant.Status(*r.Status)
		p.Status = &s
	}
	return p
}

type issueKeyRequest struct {
	Scopes    []string `json:"scopes"`
	Label     string   `json:"label"`
	ExpiresAt *string  `json:"expires_at"`
}

type rollKeyRequest struct {
	ExpiresInSeconds *int64 `json:"expires_in_seconds"`
}

type tenantResponse struct {
	TenantID      string `json:"tenant_id"`
	Name          string `json:"name"`
	Status        string `json:"status"`
	Partitions    int    `json:"partitions"`
	MaxDeliveries int    `json:"max_deliveries"`
	RetentionDays int    `json:"retention_days"`
	RateLimit     int    `json:"rate_limit"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
}

type tenantListResponse struct {
	Tenants    []tenantResponse `json:"tenants"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// keyResponse is a key's metadata: never its secret, never its hash.
type keyResponse struct {
	KeyID     string   `json:"key_id"`
	TenantID  string   `json:"tenant_id"`
	Prefix    string   `json:"prefix"`
	Label     string   `json:"label"`
	Scopes    []string `json:"scopes"`
	Status    string   `json:"status"`
	CreatedAt string   `json:"created_at"`
	ExpiresAt string   `json:"expires_at,omitempty"`
	RevokedAt string   `json:"revoked_at,omitempty"`
}

// issuedKeyResponse is the one answer that carries a key's secret: issue and roll.
type issuedKeyResponse struct {
	KeyID     string   `json:"key_id"`
	TenantID  string   `json:"tenant_id"`
	APIKey    string   `json:"api_key"`
	Prefix    string   `json:"prefix"`
	Label     string   `json:"label"`
	Scopes    []string `json:"scopes"`
	Status    string   `json:"status"`
	CreatedAt string   `json:"created_at"`
	ExpiresAt string   `json:"expires_at,omitempty"`
}

type keyListResponse struct {
	Keys []keyResponse `json:"keys"`
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func optionalTimestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return timestamp(t)
}

func scopeStrings(scopes []tenant.Scope) []string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = string(s)
	}
	return out
}

func toTenantResponse(t tenant.Tenant) tenantResponse {
	return tenantResponse{
		TenantID:      t.ID,
		Name:          t.Name,
		Status:        string(t.Status),
		Partitions:    t.Partitions,
		MaxDeliveries: t.MaxDeliveries,
		RetentionDays: t.RetentionDays,
		RateLimit:     t.RateLimit,
		CreatedAt:     timestamp(t.CreatedAt),
		UpdatedAt:     timestamp(t.UpdatedAt),
	}
}

func toKeyResponse(k tenant.APIKey) keyResponse {
	return keyResponse{
		KeyID:     k.ID,
		TenantID:  k.TenantID,
		Prefix:    k.Prefix,
		Label:     k.Label,
		Scopes:    scopeStrings(k.Scopes),
		Status:    string(k.Status),
		CreatedAt: timestamp(k.CreatedAt),
		ExpiresAt: optionalTimestamp(k.ExpiresAt),
		RevokedAt: optionalTimestamp(k.RevokedAt),
	}
}

func toIssuedKeyResponse(k tenant.IssuedKey) issuedKeyResponse {
	return issuedKeyResponse{
		KeyID:     k.Key.ID,
		TenantID:  k.Key.TenantID,
		APIKey:    k.Secret.Reveal(),
		Prefix:    k.Key.Prefix,
		Label:     k.Key.Label,
		Scopes:    scopeStrings(k.Key.Scopes),
		Status:    string(k.Key.Status),
		CreatedAt: timestamp(k.Key.CreatedAt),
		ExpiresAt: optionalTimestamp(k.Key.ExpiresAt),
	}
}

// Tenant list cursors are opaque to clients: the base64url of the last tenant id of a page.

func encodeCursor(lastID string) string {
	if lastID == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

func decodeCursor(cursor string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || tenant.ValidateID(string(b)) != nil {
		return "", false
	}
	return string(b), true
}
