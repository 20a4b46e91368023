package adminapi

import (
	"encoding/base64"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// Converters between the admin API's wire types (pkg/api) and the domain. Domain types never go
// on the wire directly, so a field added to the domain cannot leak by accident (a key's hash
// above all).

func newTenant(r api.CreateTenantRequest) tenant.NewTenant {
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

func tenantPatch(r api.PatchTenantRequest) tenant.Patch {
	p := tenant.Patch{Partitions: r.Partitions, MaxDeliveries: r.MaxDeliveries, RetentionDays: r.RetentionDays, RateLimit: r.RateLimit}
	if r.Status != nil {
		s := tenant.Status(*r.Status)
		p.Status = &s
	}
	return p
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

func toTenant(t tenant.Tenant) api.Tenant {
	return api.Tenant{
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

func toKey(k tenant.APIKey) api.Key {
	return api.Key{
		KeyID:      k.ID,
		TenantID:   k.TenantID,
		Prefix:     k.Prefix,
		Label:      k.Label,
		Scopes:     scopeStrings(k.Scopes),
		Status:     string(k.Status),
		CreatedAt:  timestamp(k.CreatedAt),
		ExpiresAt:  optionalTimestamp(k.ExpiresAt),
		RevokedAt:  optionalTimestamp(k.RevokedAt),
		LastUsedAt: optionalTimestamp(k.LastUsedAt),
	}
}

func toIssuedKey(k tenant.IssuedKey) api.IssuedKey {
	return api.IssuedKey{
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
