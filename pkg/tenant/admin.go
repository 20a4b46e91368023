package tenant

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/trigger-api/trigger-api/pkg/apikey"
)

// Errors only the admin operations produce.
var (
	// ErrKeyRevoked refuses to roll a revoked key: a roll hands a working key over to its
	// successor, and a revoked key has nothing left to hand over.
	ErrKeyRevoked = errors.New("api key is revoked")
	// ErrKeyExpired refuses to roll an expired key for the same reason; issue a new key instead.
	ErrKeyExpired = errors.New("api key has expired")
)

// Limits of the admin operations.
const (
	MaxLabelLen      = 100
	DefaultListLimit = 50
	MaxListLimit     = 100
	// DefaultRollOverlap is how long a rolled key keeps working when the caller does not say.
	DefaultRollOverlap = 24 * time.Hour
	MaxRollOverlap     = 30 * 24 * time.Hour
)

var keyIDPattern = regexp.MustCompile(`^key_[0-9a-f]{24}$`)

// ValidKeyID reports whether id has the shape of a key id ("key_" and 24 lowercase hex digits).
func ValidKeyID(id string) bool { return keyIDPattern.MatchString(id) }

func newKeyID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it aborts the program instead.
	return "key_" + hex.EncodeToString(b[:])
}

// Secret is a full API key. It prints and marshals as a placeholder so a stray log field or
// debug dump cannot leak it; Reveal is the only way to read it.
type Secret struct{ v string }

// Reveal returns the key itself, to be shown to the admin exactly once.
func (s Secret) Reveal() string { return s.v }

// String hides the key.
func (s Secret) String() string { return "[redacted]" }

// GoString hides the key from %#v.
func (s Secret) GoString() string { return "[redacted]" }

// MarshalJSON hides the key from encoders, zap's reflection among them.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// IssuedKey is a freshly minted key: its stored metadata and the secret the caller must keep.
type IssuedKey struct {
	Key    APIKey
	Secret Secret
}

// RolledKey is the outcome of a roll: the new key and the old one with its shortened life.
type RolledKey struct {
	New IssuedKey
	Old APIKey
}

// NewTenant is a request to create a tenant. Partitions must be 1 to MaxPartitions; callers
// that let clients omit it pass DefaultPartitions.
type NewTenant struct {
	ID         string
	Name       string
	Partitions int
	// Nil means the default.
	MaxDeliveries *int
	RetentionDays *int
	RateLimit     int // 0: the service's default
}

// KeyRequest is a request to issue a key. Nil scopes mean all of them; a zero ExpiresAt means
// the key does not expire.
type KeyRequest struct {
	Scopes    []string
	Label     string
	ExpiresAt time.Time
}

// Admin carries out the admin API's operations on tenants and keys.
type Admin struct {
	store Store
	now   func() time.Time
}

// NewAdmin returns the admin operations over store; now may be nil for the wall clock.
func NewAdmin(store Store, now func() time.Time) *Admin {
	if now == nil {
		now = time.Now
	}
	return &Admin{store: store, now: now}
}

// clock is now at the precision the store keeps, so what an operation returns is exactly what a
// later read returns.
func (a *Admin) clock() time.Time { return a.now().UTC().Truncate(time.Millisecond) }

// CreateTenant creates an active tenant with the default limits; ErrExists if the id is taken.
func (a *Admin) CreateTenant(ctx context.Context, in NewTenant) (Tenant, error) {
	if err := ValidateID(in.ID); err != nil {
		return Tenant{}, err
	}
	if err := ValidateName(in.Name); err != nil {
		return Tenant{}, err
	}
	maxDeliveries, retentionDays := DefaultMaxDeliveries, DefaultRetentionDays
	if in.MaxDeliveries != nil {
		maxDeliveries = *in.MaxDeliveries
	}
	if in.RetentionDays != nil {
		retentionDays = *in.RetentionDays
	}
	limits := Patch{Partitions: &in.Partitions, MaxDeliveries: &maxDeliveries, RetentionDays: &retentionDays, RateLimit: &in.RateLimit}
	if err := limits.Validate(); err != nil {
		return Tenant{}, err
	}
	now := a.clock()
	t := Tenant{
		ID:            in.ID,
		Name:          in.Name,
		Status:        StatusActive,
		Partitions:    in.Partitions,
		MaxDeliveries: maxDeliveries,
		RetentionDays: retentionDays,
		RateLimit:     in.RateLimit,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	if err := a.store.CreateTenant(ctx, t); err != nil {
		return Tenant{}, err
	}
	return t, nil
}

// GetTenant returns one tenant.
func (a *Admin) GetTenant(ctx context.Context, id string) (Tenant, error) {
	if err := ValidateID(id); err != nil {
		return Tenant{}, err
	}
	return a.store.GetTenant(ctx, id)
}

// ListTenants returns up to limit tenants after the tenant id after ("" for the first page) and
// the id to continue from, "" when there are no more.
func (a *Admin) ListTenants(ctx context.Context, limit int, after string) ([]Tenant, string, error) {
	if limit < 1 || limit > MaxListLimit {
		return nil, "", invalid("limit must be between 1 and %d", MaxListLimit)
	}
	if after != "" && !apikey.ValidTenantID(after) {
		return nil, "", invalid("cursor is malformed")
	}
	// One extra row tells whether another page exists, so the last page does not promise a
	// next one that turns out empty.
	tenants, next, err := a.store.ListTenants(ctx, limit+1, after)
	if err != nil {
		return nil, "", err
	}
	if len(tenants) > limit {
		tenants = tenants[:limit]
		next = tenants[limit-1].ID
	}
	return tenants, next, nil
}

// SetTenantStatus suspends or reactivates a tenant. Its keys follow within the authenticator's
// cache TTL.
func (a *Admin) SetTenantStatus(ctx context.Context, id string, status Status) (Tenant, error) {
	return a.UpdateTenant(ctx, id, StatusPatch(status))
}

// UpdateTenant changes a tenant's status and limits. Services see the change within the
// authenticator's cache TTL.
func (a *Admin) UpdateTenant(ctx context.Context, id string, p Patch) (Tenant, error) {
	if err := ValidateID(id); err != nil {
		return Tenant{}, err
	}
	if p.Empty() {
		return Tenant{}, invalid("nothing to change: send status, partitions, max_deliveries or retention_days")
	}
	if err := p.Validate(); err != nil {
		return Tenant{}, err
	}
	return a.store.UpdateTenant(ctx, id, p, a.clock())
}

// ValidateLabel checks a key's free-text label.
func ValidateLabel(label string) error {
	if !utf8.ValidString(label) || utf8.RuneCountInString(label) > MaxLabelLen {
		return invalid("label must be valid UTF-8 of at most %d characters", MaxLabelLen)
	}
	return nil
}

// IssueKey mints a key for an existing tenant. The secret is in the result and nowhere else.
func (a *Admin) IssueKey(ctx context.Context, tenantID string, req KeyRequest) (IssuedKey, error) {
	if err := ValidateID(tenantID); err != nil {
		return IssuedKey{}, err
	}
	scopes, err := ParseScopes(req.Scopes)
	if err != nil {
		return IssuedKey{}, err
	}
	if err := ValidateLabel(req.Label); err != nil {
		return IssuedKey{}, err
	}
	now := a.clock()
	expires := req.ExpiresAt
	if !expires.IsZero() {
		expires = expires.UTC().Truncate(time.Millisecond)
		if !expires.After(now) {
			return IssuedKey{}, invalid("expires_at must be in the future")
		}
	}
	if _, err := a.store.GetTenant(ctx, tenantID); err != nil {
		return IssuedKey{}, err
	}
	return a.mint(ctx, tenantID, scopes, req.Label, expires, now)
}

func (a *Admin) mint(ctx context.Context, tenantID string, scopes []Scope, label string, expires, now time.Time) (IssuedKey, error) {
	key, err := apikey.New(tenantID)
	if err != nil {
		return IssuedKey{}, fmt.Errorf("new key: %w", err)
	}
	k := APIKey{
		ID:        newKeyID(),
		TenantID:  tenantID,
		Hash:      key.Hash(),
		Prefix:    key.Prefix(),
		Label:     label,
		Scopes:    canonicalScopes(scopes),
		Status:    KeyActive,
		CreatedAt: now,
		ExpiresAt: expires,
	}
	if err := a.store.CreateKey(ctx, k); err != nil {
		return IssuedKey{}, err
	}
	return IssuedKey{Key: k, Secret: Secret{v: key.String()}}, nil
}

// canonicalScopes orders scopes as AllScopes does: the store keeps them as a set, so this is
// the order every later read returns and the issuing answer must match it.
func canonicalScopes(scopes []Scope) []Scope {
	out := slices.Clone(scopes)
	slices.SortFunc(out, func(x, y Scope) int {
		return slices.Index(AllScopes, x) - slices.Index(AllScopes, y)
	})
	return out
}

// ListKeys returns a tenant's keys, oldest first; ErrNotFound for an unknown tenant.
func (a *Admin) ListKeys(ctx context.Context, tenantID string) ([]APIKey, error) {
	if err := ValidateID(tenantID); err != nil {
		return nil, err
	}
	if _, err := a.store.GetTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	keys, err := a.store.ListKeys(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(x, y APIKey) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), cmp.Compare(x.ID, y.ID))
	})
	return keys, nil
}

// RevokeKey revokes a tenant's key. Revoking again changes nothing and succeeds, so a retried
// call is safe.
func (a *Admin) RevokeKey(ctx context.Context, tenantID, keyID string) (APIKey, error) {
	if err := ValidateID(tenantID); err != nil {
		return APIKey{}, err
	}
	if !ValidKeyID(keyID) {
		return APIKey{}, ErrKeyNotFound
	}
	return a.store.RevokeKey(ctx, tenantID, keyID, a.clock())
}

// RollKey issues a successor to a working key, with the same scopes, label and expiry, and makes
// the old key expire no later than overlap from now so its users have time to switch. A roll
// replaces the secret, never the grant: it cannot extend a key that was due to expire.
func (a *Admin) RollKey(ctx context.Context, tenantID, keyID string, overlap time.Duration) (RolledKey, error) {
	if err := ValidateID(tenantID); err != nil {
		return RolledKey{}, err
	}
	if !ValidKeyID(keyID) {
		return RolledKey{}, ErrKeyNotFound
	}
	if overlap < 0 || overlap > MaxRollOverlap {
		return RolledKey{}, invalid("expires_in_seconds must be between 0 and %d", int64(MaxRollOverlap/time.Second))
	}
	old, err := a.store.GetKey(ctx, tenantID, keyID)
	if err != nil {
		return RolledKey{}, err
	}
	now := a.clock()
	switch {
	case old.Status == KeyRevoked:
		return RolledKey{}, ErrKeyRevoked
	case !old.Usable(now):
		return RolledKey{}, ErrKeyExpired
	}
	// The successor exists before the old key is shortened: a failure in between must never
	// leave the tenant with a dying key and no replacement.
	issued, err := a.mint(ctx, tenantID, old.Scopes, old.Label, old.ExpiresAt, now)
	if err != nil {
		return RolledKey{}, err
	}
	shortened, err := a.store.ExpireKeyBy(ctx, tenantID, keyID, now.Add(overlap))
	if err != nil {
		// The caller never sees the new secret, so the new key would be unusable clutter.
		if _, rerr := a.store.RevokeKey(context.WithoutCancel(ctx), tenantID, issued.Key.ID, now); rerr != nil {
			err = errors.Join(err, fmt.Errorf("revoke unused successor %s: %w", issued.Key.ID, rerr))
		}
		return RolledKey{}, err
	}
	return RolledKey{New: issued, Old: shortened}, nil
}
