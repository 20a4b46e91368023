package api

// Admin API (keys-admin). Timestamps are RFC 3339 in UTC.

// CreateTenantRequest is POST /admin/tenants; omitted settings take the defaults.
type CreateTenantRequest struct {
	TenantID      string `json:"tenant_id"`
	Name          string `json:"name"`
	Partitions    *int   `json:"partitions,omitempty"`
	MaxDeliveries *int   `json:"max_deliveries,omitempty"`
	RetentionDays *int   `json:"retention_days,omitempty"`
	RateLimit     *int   `json:"rate_limit,omitempty"`
}

// PatchTenantRequest is PATCH /admin/tenants/{id}; nil fields stay as they are.
type PatchTenantRequest struct {
	Status        *string `json:"status,omitempty"`
	Partitions    *int    `json:"partitions,omitempty"`
	MaxDeliveries *int    `json:"max_deliveries,omitempty"`
	RetentionDays *int    `json:"retention_days,omitempty"`
	RateLimit     *int    `json:"rate_limit,omitempty"`
}

// IssueKeyRequest is POST /admin/tenants/{id}/keys; no scopes means all of them.
type IssueKeyRequest struct {
	Scopes    []string `json:"scopes,omitempty"`
	Label     string   `json:"label,omitempty"`
	ExpiresAt *string  `json:"expires_at,omitempty"`
}

// RollKeyRequest is POST /admin/tenants/{id}/keys/{key_id}/roll.
type RollKeyRequest struct {
	ExpiresInSeconds *int64 `json:"expires_in_seconds,omitempty"`
}

// Tenant is a tenant as the admin API shows it.
type Tenant struct {
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

// TenantList is a page of tenants.
type TenantList struct {
	Tenants    []Tenant `json:"tenants"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

// Key is a key's metadata: never its secret, never its hash.
type Key struct {
	KeyID     string   `json:"key_id"`
	TenantID  string   `json:"tenant_id"`
	Prefix    string   `json:"prefix"`
	Label     string   `json:"label"`
	Scopes    []string `json:"scopes"`
	Status    string   `json:"status"`
	CreatedAt string   `json:"created_at"`
	ExpiresAt string   `json:"expires_at,omitempty"`
	RevokedAt string   `json:"revoked_at,omitempty"`
	// LastUsedAt is kept to the hour: uses within an hour of the recorded one are not written.
	LastUsedAt string `json:"last_used_at,omitempty"`
}

// KeyList is a tenant's keys.
type KeyList struct {
	Keys []Key `json:"keys"`
}

// IssuedKey is the one answer that carries a key's secret: issue and roll.
type IssuedKey struct {
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
