// Package tenant holds tenants and their API keys: the rules, the store interface and the
// authenticator that turns a bearer key into the tenant it belongs to.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trigger-api/trigger-api/pkg/apikey"
)

// Domain errors. Adapters wrap store failures into these; handlers only test with errors.Is.
var (
	ErrNotFound    = errors.New("tenant not found")
	ErrExists      = errors.New("tenant already exists")
	ErrKeyNotFound = errors.New("api key not found")
	// ErrUnauthenticated covers every reason a key is refused, so callers cannot tell them apart.
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("api key lacks the required scope")
	// ErrPartitionsShrink: events already sit on every existing partition, so the count may
	// only grow.
	ErrPartitionsShrink = errors.New("partitions can only be increased")
)

// ValidationError is a client mistake in an admin request.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &ValidationError{Msg: fmt.Sprintf(format, args...)}
}

// Status is a tenant's state.
type Status string

// Tenant states.
const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
)

// Defaults for new tenants.
const (
	DefaultPartitions    = 1
	DefaultMaxDeliveries = 10
	DefaultRetentionDays = 7
	MaxPartitions        = 64
)

// Tenant is one customer of the API.
type Tenant struct {
	ID            string
	Name          string
	Status        Status
	Partitions    int
	MaxDeliveries int
	RetentionDays int
	// RateLimit is requests per second per service replica; 0 leaves it to the service.
	RateLimit int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Limits on tenant settings.
const (
	MaxMaxDeliveries = 1000
	MaxRetentionDays = 365
)

// Patch is a partial update of a tenant; nil fields stay as they are.
type Patch struct {
	Status        *Status
	Partitions    *int
	MaxDeliveries *int
	RetentionDays *int
	RateLimit     *int
}

// StatusPatch changes only the status.
func StatusPatch(s Status) Patch { return Patch{Status: &s} }

// Empty reports whether p changes nothing.
func (p Patch) Empty() bool {
	return p.Status == nil && p.Partitions == nil && p.MaxDeliveries == nil && p.RetentionDays == nil && p.RateLimit == nil
}

// Validate checks every field p sets.
func (p Patch) Validate() error {
	if p.Status != nil && *p.Status != StatusActive && *p.Status != StatusSuspended {
		return invalid("status must be %q or %q", StatusActive, StatusSuspended)
	}
	if p.Partitions != nil && (*p.Partitions < 1 || *p.Partitions > MaxPartitions) {
		return invalid("partitions must be between 1 and %d", MaxPartitions)
	}
	if p.MaxDeliveries != nil && (*p.MaxDeliveries < 1 || *p.MaxDeliveries > MaxMaxDeliveries) {
		return invalid("max_deliveries must be between 1 and %d", MaxMaxDeliveries)
	}
	if p.RetentionDays != nil && (*p.RetentionDays < 1 || *p.RetentionDays > MaxRetentionDays) {
		return invalid("retention_days must be between 1 and %d", MaxRetentionDays)
	}
	if p.RateLimit != nil && (*p.RateLimit < 0 || *p.RateLimit > MaxRateLimit) {
		return invalid("rate_limit must be between 0 (the service's default) and %d", MaxRateLimit)
	}
	return nil
}

// Apply returns t with p's fields set, or ErrPartitionsShrink.
func (p Patch) Apply(t Tenant, at time.Time) (Tenant, error) {
	if p.Partitions != nil && *p.Partitions < t.Partitions {
		return Tenant{}, ErrPartitionsShrink
	}
	if p.Status != nil {
		t.Status = *p.Status
	}
	if p.Partitions != nil {
		t.Partitions = *p.Partitions
	}
	if p.MaxDeliveries != nil {
		t.MaxDeliveries = *p.MaxDeliveries
	}
	if p.RetentionDays != nil {
		t.RetentionDays = *p.RetentionDays
	}
	if p.RateLimit != nil {
		t.RateLimit = *p.RateLimit
	}
	t.UpdatedAt = at
	return t, nil
}

// Scope is one permission a key grants.
type Scope string

// The scopes of DESIGN §4.
const (
	ScopeEventsWrite Scope = "events:write"
	ScopeInboxRead   Scope = "inbox:read"
	ScopeInboxAck    Scope = "inbox:ack"
)

// AllScopes is what a key gets when none are asked for.
var AllScopes = []Scope{ScopeEventsWrite, ScopeInboxRead, ScopeInboxAck}

// KeyStatus is an API key's state.
type KeyStatus string

// Key states.
const (
	KeyActive  KeyStatus = "active"
	KeyRevoked KeyStatus = "revoked"
)

// APIKey is a key's stored metadata; the secret itself is never kept.
type APIKey struct {
	ID        string
	TenantID  string
	Hash      string
	Prefix    string
	Label     string
	Scopes    []Scope
	Status    KeyStatus
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	RevokedAt time.Time // zero: not revoked
	// LastUsedAt is when the key last authenticated, recorded at most once an hour (see
	// LastUsedInterval); zero: never, or not since the field existed.
	LastUsedAt time.Time
}

// Usable reports whether the key may authenticate at now.
func (k APIKey) Usable(now time.Time) bool {
	return k.Status == KeyActive && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// Store persists tenants and keys.
type Store interface {
	CreateTenant(ctx context.Context, t Tenant) error
	GetTenant(ctx context.Context, id string) (Tenant, error)
	ListTenants(ctx context.Context, limit int, after string) (tenants []Tenant, next string, err error)
	// UpdateTenant applies the fields p sets; ErrPartitionsShrink if it would lower partitions.
	UpdateTenant(ctx context.Context, id string, p Patch, at time.Time) (Tenant, error)

	CreateKey(ctx context.Context, k APIKey) error
	KeyByHash(ctx context.Context, hash string) (APIKey, error)
	// KeyAndTenant reads the key stored under hash and the tenant tenantID together, in one
	// call: what authenticating a request needs, re-read every few seconds per active key.
	// ErrKeyNotFound without the key; ErrNotFound without the tenant.
	KeyAndTenant(ctx context.Context, hash, tenantID string) (APIKey, Tenant, error)
	GetKey(ctx context.Context, tenantID, keyID string) (APIKey, error)
	ListKeys(ctx context.Context, tenantID string) ([]APIKey, error)
	RevokeKey(ctx context.Context, tenantID, keyID string, at time.Time) (APIKey, error)
	// ExpireKeyBy makes a key expire no later than at and returns it as stored.
	ExpireKeyBy(ctx context.Context, tenantID, keyID string, at time.Time) (APIKey, error)
	// RecordKeyUse sets the last use of the key stored under hash to at unless a use after
	// since is stored already, so that every replica may try and one write lands per interval.
	// A missing key or a recent use is not an error.
	RecordKeyUse(ctx context.Context, hash string, at, since time.Time) error
}

// ParseScopes validates requested scopes; none requested means all of them.
func ParseScopes(in []string) ([]Scope, error) {
	if in == nil {
		return slices.Clone(AllScopes), nil
	}
	if len(in) == 0 {
		return nil, invalid("scopes must not be empty; omit the field for all scopes")
	}
	out := make([]Scope, 0, len(in))
	for _, s := range in {
		if !slices.Contains(AllScopes, Scope(s)) {
			return nil, invalid("unknown scope %q; valid scopes are events:write, inbox:read, inbox:ack", s)
		}
		if !slices.Contains(out, Scope(s)) {
			out = append(out, Scope(s))
		}
	}
	return out, nil
}

// ValidateName checks a tenant's display name.
func ValidateName(name string) error {
	if strings.TrimSpace(name) == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > 200 {
		return invalid("name must be 1 to 200 characters")
	}
	return nil
}

// ValidateID checks a tenant id against ^[a-z0-9][a-z0-9-]{1,62}$.
func ValidateID(id string) error {
	if !apikey.ValidTenantID(id) {
		return invalid("tenant_id must match ^[a-z0-9][a-z0-9-]{1,62}$")
	}
	return nil
}
