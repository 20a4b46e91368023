package tenant_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/storage"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	"github.com/trigger-api/trigger-api/pkg/tenant/tenanttest"
)

// noStore fails the test on any store call (through the nil interface it embeds): for checks
// that must be decided before the database is asked.
type noStore struct{ tenant.Store }

func newAdmin(t *testing.T) (*tenant.Admin, *tenanttest.Memory, *clock) {
	t.Helper()
	store, c := tenanttest.NewMemory(), newClock()
	return tenant.NewAdmin(store, c.Now), store, c
}

func mustTenant(t *testing.T, a *tenant.Admin, id string) tenant.Tenant {
	t.Helper()
	tn, err := a.CreateTenant(context.Background(), tenant.NewTenant{ID: id, Name: "Tenant " + id, Partitions: 1})
	if err != nil {
		t.Fatalf("create tenant %s: %v", id, err)
	}
	return tn
}

func mustIssue(t *testing.T, a *tenant.Admin, tenantID string, req tenant.KeyRequest) tenant.IssuedKey {
	t.Helper()
	k, err := a.IssueKey(context.Background(), tenantID, req)
	if err != nil {
		t.Fatalf("issue key for %s: %v", tenantID, err)
	}
	return k
}

func isValidation(err error) bool {
	var ve *tenant.ValidationError
	return errors.As(err, &ve)
}

func TestCreateTenant(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		in      tenant.NewTenant
		invalid bool
	}{
		{"ok-one-partition", tenant.NewTenant{ID: "acme", Name: "Acme", Partitions: 1}, false},
		{"ok-max-partitions", tenant.NewTenant{ID: "a1", Name: "x", Partitions: 64}, false},
		{"ok-63-char-id", tenant.NewTenant{ID: "a" + strings.Repeat("b", 62), Name: "x", Partitions: 1}, false},
		{"invalid-empty-id", tenant.NewTenant{ID: "", Name: "x", Partitions: 1}, true},
		{"invalid-one-char-id", tenant.NewTenant{ID: "a", Name: "x", Partitions: 1}, true},
		{"invalid-64-char-id", tenant.NewTenant{ID: "a" + strings.Repeat("b", 63), Name: "x", Partitions: 1}, true},
		{"invalid-uppercase-id", tenant.NewTenant{ID: "Acme", Name: "x", Partitions: 1}, true},
		{"invalid-underscore-id", tenant.NewTenant{ID: "ac_me", Name: "x", Partitions: 1}, true},
		{"invalid-leading-dash-id", tenant.NewTenant{ID: "-acme", Name: "x", Partitions: 1}, true},
		{"invalid-empty-name", tenant.NewTenant{ID: "acme", Name: "", Partitions: 1}, true},
		{"invalid-blank-name", tenant.NewTenant{ID: "acme", Name: "   ", Partitions: 1}, true},
		{"invalid-long-name", tenant.NewTenant{ID: "acme", Name: strings.Repeat("n", 201), Partitions: 1}, true},
		{"invalid-zero-partitions", tenant.NewTenant{ID: "acme", Name: "x", Partitions: 0}, true},
		{"invalid-65-partitions", tenant.NewTenant{ID: "acme", Name: "x", Partitions: 65}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.invalid {
				_, err := tenant.NewAdmin(noStore{}, nil).CreateTenant(context.Background(), tc.in)
				if !isValidation(err) {
					t.Fatalf("got %v, want a ValidationError", err)
				}
				return
			}
			a, store, c := newAdmin(t)
			got, err := a.CreateTenant(context.Background(), tc.in)
			if err != nil {
				t.Fatal(err)
			}
			want := tenant.Tenant{
				ID: tc.in.ID, Name: tc.in.Name, Status: tenant.StatusActive, Partitions: tc.in.Partitions,
				MaxDeliveries: tenant.DefaultMaxDeliveries, RetentionDays: tenant.DefaultRetentionDays,
				CreatedAt: c.Now(), UpdatedAt: c.Now(),
			}
			if got != want {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
			if stored, err := store.GetTenant(context.Background(), tc.in.ID); err != nil || stored != want {
				t.Fatalf("stored %+v, %v", stored, err)
			}
		})
	}

	t.Run("duplicate-exists", func(t *testing.T) {
		t.Parallel()
		a, _, _ := newAdmin(t)
		mustTenant(t, a, "acme")
		_, err := a.CreateTenant(context.Background(), tenant.NewTenant{ID: "acme", Name: "again", Partitions: 1})
		if !errors.Is(err, tenant.ErrExists) {
			t.Fatalf("got %v, want ErrExists", err)
		}
	})
}

func TestCreateTenantTimesAtStorePrecision(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 5, 6, 7, 8, 9, 123_456_789, time.FixedZone("X", 3600))
	a := tenant.NewAdmin(tenanttest.NewMemory(), func() time.Time { return now })
	got, err := a.CreateTenant(context.Background(), tenant.NewTenant{ID: "acme", Name: "Acme", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2030, 5, 6, 6, 8, 9, 123_000_000, time.UTC)
	if !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("created_at %v, want %v in UTC", got.CreatedAt, want)
	}
}

// scanLikeStore answers like a DynamoDB Scan: a full page always carries a next cursor, even
// when nothing follows it.
type scanLikeStore struct{ *tenanttest.Memory }

func (s scanLikeStore) ListTenants(ctx context.Context, limit int, after string) ([]tenant.Tenant, string, error) {
	got, next, err := s.Memory.ListTenants(ctx, limit, after)
	if err == nil && len(got) == limit {
		next = got[len(got)-1].ID
	}
	return got, next, err
}

func TestListTenantsPages(t *testing.T) {
	t.Parallel()
	for _, count := range []int{0, 1, 4, 5} {
		t.Run(fmt.Sprintf("%d-tenants-limit-2", count), func(t *testing.T) {
			t.Parallel()
			store := scanLikeStore{tenanttest.NewMemory()}
			a := tenant.NewAdmin(store, nil)
			var want []string
			for i := range count {
				id := fmt.Sprintf("t%02d", i)
				mustTenant(t, a, id)
				want = append(want, id)
			}
			var got []string
			var sizes []int
			after := ""
			for range count + 2 {
				page, next, err := a.ListTenants(context.Background(), 2, after)
				if err != nil {
					t.Fatal(err)
				}
				sizes = append(sizes, len(page))
				for _, tn := range page {
					got = append(got, tn.ID)
				}
				if next == "" {
					break
				}
				after = next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("listed %v, want %v", got, want)
			}
			// No page after the first may be empty: the last full page must not promise more.
			for i, n := range sizes {
				if n == 0 && i > 0 {
					t.Fatalf("page sizes %v end with an empty page", sizes)
				}
			}
		})
	}
}

func TestListTenantsInvalid(t *testing.T) {
	t.Parallel()
	a := tenant.NewAdmin(noStore{}, nil)
	for _, tc := range []struct {
		name  string
		limit int
		after string
	}{
		{"limit-0", 0, ""},
		{"limit-101", 101, ""},
		{"cursor-not-an-id", 10, "Not An Id"},
	} {
		if _, _, err := a.ListTenants(context.Background(), tc.limit, tc.after); !isValidation(err) {
			t.Errorf("%s: got %v, want a ValidationError", tc.name, err)
		}
	}
}

func TestSetTenantStatus(t *testing.T) {
	t.Parallel()
	a, _, c := newAdmin(t)
	created := mustTenant(t, a, "acme")
	c.Advance(time.Minute)
	got, err := a.SetTenantStatus(context.Background(), "acme", tenant.StatusSuspended)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != tenant.StatusSuspended || !got.UpdatedAt.Equal(c.Now()) || !got.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("suspended tenant %+v", got)
	}
	if _, err := a.SetTenantStatus(context.Background(), "acme", "deleted"); !isValidation(err) {
		t.Fatalf("unknown status: got %v, want a ValidationError", err)
	}
	if _, err := a.SetTenantStatus(context.Background(), "ghost", tenant.StatusActive); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("unknown tenant: got %v, want ErrNotFound", err)
	}
	if _, err := a.SetTenantStatus(context.Background(), "Bad_Id", tenant.StatusActive); !isValidation(err) {
		t.Fatalf("bad id: got %v, want a ValidationError", err)
	}
}

func TestIssueKey(t *testing.T) {
	t.Parallel()
	a, store, c := newAdmin(t)
	mustTenant(t, a, "acme")
	expires := c.Now().Add(time.Hour + 1500*time.Microsecond)
	issued := mustIssue(t, a, "acme", tenant.KeyRequest{
		Scopes: []string{"inbox:ack", "events:write", "inbox:ack"}, Label: "ci", ExpiresAt: expires,
	})

	parsed, err := apikey.Parse(issued.Secret.Reveal())
	if err != nil || parsed.TenantID != "acme" {
		t.Fatalf("issued secret does not parse as an acme key: %v", err)
	}
	k := issued.Key
	if !tenant.ValidKeyID(k.ID) || k.TenantID != "acme" || k.Hash != parsed.Hash() || k.Prefix != parsed.Prefix() ||
		k.Label != "ci" || k.Status != tenant.KeyActive || !k.CreatedAt.Equal(c.Now()) ||
		!k.ExpiresAt.Equal(expires.Truncate(time.Millisecond)) || !k.RevokedAt.IsZero() {
		t.Fatalf("issued key %+v", k)
	}
	if want := []tenant.Scope{tenant.ScopeEventsWrite, tenant.ScopeInboxAck}; !slices.Equal(k.Scopes, want) {
		t.Fatalf("scopes %v, want %v in canonical order without duplicates", k.Scopes, want)
	}
	stored, err := store.KeyByHash(context.Background(), parsed.Hash())
	if err != nil || stored.ID != k.ID || !slices.Equal(stored.Scopes, k.Scopes) {
		t.Fatalf("stored %+v, %v", stored, err)
	}

	all := mustIssue(t, a, "acme", tenant.KeyRequest{})
	if !slices.Equal(all.Key.Scopes, tenant.AllScopes) || !all.Key.ExpiresAt.IsZero() || all.Key.Label != "" {
		t.Fatalf("default key %+v, want all scopes, no expiry, no label", all.Key)
	}
	if all.Key.ID == k.ID || all.Secret.Reveal() == issued.Secret.Reveal() {
		t.Fatal("two issued keys share an id or a secret")
	}
}

func TestIssueKeyRefusals(t *testing.T) {
	t.Parallel()
	a, _, c := newAdmin(t)
	mustTenant(t, a, "acme")
	cases := []struct {
		name   string
		tenant string
		req    tenant.KeyRequest
		want   func(error) bool
	}{
		{"invalid-tenant-id", "Bad_Id", tenant.KeyRequest{}, isValidation},
		{"invalid-empty-scopes", "acme", tenant.KeyRequest{Scopes: []string{}}, isValidation},
		{"invalid-unknown-scope", "acme", tenant.KeyRequest{Scopes: []string{"admin"}}, isValidation},
		{"invalid-label-101-chars", "acme", tenant.KeyRequest{Label: strings.Repeat("é", 101)}, isValidation},
		{"invalid-label-not-utf8", "acme", tenant.KeyRequest{Label: "\xff"}, isValidation},
		{"invalid-expiry-now", "acme", tenant.KeyRequest{ExpiresAt: c.Now()}, isValidation},
		{"invalid-expiry-past", "acme", tenant.KeyRequest{ExpiresAt: c.Now().Add(-time.Hour)}, isValidation},
		{"unknown-tenant", "ghost", tenant.KeyRequest{}, func(err error) bool { return errors.Is(err, tenant.ErrNotFound) }},
	}
	for _, tc := range cases {
		if _, err := a.IssueKey(context.Background(), tc.tenant, tc.req); !tc.want(err) {
			t.Errorf("%s: got %v", tc.name, err)
		}
	}
	if _, err := a.IssueKey(context.Background(), "acme", tenant.KeyRequest{Label: strings.Repeat("é", 100)}); err != nil {
		t.Errorf("a 100-character label was refused: %v", err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	a, _, _ := newAdmin(t)
	mustTenant(t, a, "acme")
	issued := mustIssue(t, a, "acme", tenant.KeyRequest{})
	raw := issued.Secret.Reveal()
	js, err := json.Marshal(issued)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprint(issued), fmt.Sprintf("%+v", issued), fmt.Sprintf("%#v", issued), string(js),
		fmt.Sprint(issued.Secret), fmt.Sprintf("%s", issued.Secret),
	} {
		if strings.Contains(out, raw) {
			t.Fatalf("the secret leaked into %q", out)
		}
	}
}

func TestListKeys(t *testing.T) {
	t.Parallel()
	a, _, c := newAdmin(t)
	mustTenant(t, a, "acme")
	mustTenant(t, a, "globex")
	var want []string
	for range 4 {
		want = append(want, mustIssue(t, a, "acme", tenant.KeyRequest{}).Key.ID)
		c.Advance(time.Second)
	}
	mustIssue(t, a, "globex", tenant.KeyRequest{})

	keys, err := a.ListKeys(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %v, want acme's keys oldest first %v", got, want)
	}
	if _, err := a.ListKeys(context.Background(), "ghost"); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("unknown tenant: got %v, want ErrNotFound", err)
	}
	if _, err := a.ListKeys(context.Background(), "Bad_Id"); !isValidation(err) {
		t.Fatalf("bad id: got %v, want a ValidationError", err)
	}
}

func TestRevokeKey(t *testing.T) {
	t.Parallel()
	a, _, c := newAdmin(t)
	mustTenant(t, a, "acme")
	mustTenant(t, a, "globex")
	k := mustIssue(t, a, "acme", tenant.KeyRequest{}).Key
	first := c.Now()

	for i := range 2 {
		got, err := a.RevokeKey(context.Background(), "acme", k.ID)
		if err != nil {
			t.Fatalf("revoke %d: %v", i+1, err)
		}
		if got.Status != tenant.KeyRevoked || !got.RevokedAt.Equal(first) {
			t.Fatalf("revoke %d: %+v, want revoked at %v", i+1, got, first)
		}
		c.Advance(time.Minute)
	}
	if _, err := a.RevokeKey(context.Background(), "globex", k.ID); !errors.Is(err, tenant.ErrKeyNotFound) {
		t.Fatalf("another tenant's key: got %v, want ErrKeyNotFound", err)
	}

	check := tenant.NewAdmin(noStore{}, nil)
	for _, id := range []string{"", "key_", "key_0123", "key_0123456789ABCDEF01234567", "KEY_0123456789abcdef01234567", "key_0123456789abcdef012345678"} {
		if _, err := check.RevokeKey(context.Background(), "acme", id); !errors.Is(err, tenant.ErrKeyNotFound) {
			t.Errorf("malformed key id %q: got %v, want ErrKeyNotFound without a store call", id, err)
		}
	}
	if _, err := check.RevokeKey(context.Background(), "Bad_Id", k.ID); !isValidation(err) {
		t.Errorf("bad tenant id: got %v, want a ValidationError", err)
	}
}

func TestRollKey(t *testing.T) {
	t.Parallel()
	a, store, c := newAdmin(t)
	mustTenant(t, a, "acme")
	old := mustIssue(t, a, "acme", tenant.KeyRequest{Scopes: []string{"inbox:read"}, Label: "worker"})
	c.Advance(time.Hour)

	rolled, err := a.RollKey(context.Background(), "acme", old.Key.ID, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	n := rolled.New.Key
	if n.ID == old.Key.ID || rolled.New.Secret.Reveal() == old.Secret.Reveal() || n.Label != "worker" ||
		!slices.Equal(n.Scopes, []tenant.Scope{tenant.ScopeInboxRead}) || !n.ExpiresAt.IsZero() ||
		n.Status != tenant.KeyActive || !n.CreatedAt.Equal(c.Now()) {
		t.Fatalf("new key %+v", n)
	}
	if want := c.Now().Add(10 * time.Minute); !rolled.Old.ExpiresAt.Equal(want) || rolled.Old.ID != old.Key.ID {
		t.Fatalf("old key %+v, want it to expire at %v", rolled.Old, want)
	}

	// The old key works until its new expiry and not after; the new one keeps working.
	auth := tenant.NewAuthenticator(store, tenant.AuthConfig{}, c.Now)
	mustAuth(t, auth, old.Secret.Reveal())
	mustAuth(t, auth, rolled.New.Secret.Reveal())
	c.Advance(10 * time.Minute)
	auth = tenant.NewAuthenticator(store, tenant.AuthConfig{}, c.Now)
	mustRefuse(t, auth, old.Secret.Reveal())
	mustAuth(t, auth, rolled.New.Secret.Reveal())
}

func TestRollKeyNeverExtends(t *testing.T) {
	t.Parallel()
	a, _, c := newAdmin(t)
	mustTenant(t, a, "acme")
	soon := c.Now().Add(time.Hour)
	old := mustIssue(t, a, "acme", tenant.KeyRequest{ExpiresAt: soon})
	rolled, err := a.RollKey(context.Background(), "acme", old.Key.ID, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !rolled.Old.ExpiresAt.Equal(soon) {
		t.Fatalf("old key expires %v, want its earlier expiry %v kept", rolled.Old.ExpiresAt, soon)
	}
	if !rolled.New.Key.ExpiresAt.Equal(soon) {
		t.Fatalf("new key expires %v, want the old key's %v: a roll must not extend a grant", rolled.New.Key.ExpiresAt, soon)
	}
}

func TestRollKeyZeroOverlapEndsOldKeyNow(t *testing.T) {
	t.Parallel()
	a, store, c := newAdmin(t)
	mustTenant(t, a, "acme")
	old := mustIssue(t, a, "acme", tenant.KeyRequest{})
	if _, err := a.RollKey(context.Background(), "acme", old.Key.ID, 0); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, tenant.NewAuthenticator(store, tenant.AuthConfig{}, c.Now), old.Secret.Reveal())
}

func TestRollKeyRefusals(t *testing.T) {
	t.Parallel()
	a, _, c := newAdmin(t)
	mustTenant(t, a, "acme")
	mustTenant(t, a, "globex")
	live := mustIssue(t, a, "acme", tenant.KeyRequest{}).Key
	revoked := mustIssue(t, a, "acme", tenant.KeyRequest{}).Key
	if _, err := a.RevokeKey(context.Background(), "acme", revoked.ID); err != nil {
		t.Fatal(err)
	}
	expired := mustIssue(t, a, "acme", tenant.KeyRequest{ExpiresAt: c.Now().Add(time.Minute)}).Key
	c.Advance(time.Minute)

	is := func(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }
	cases := []struct {
		name    string
		tenant  string
		key     string
		overlap time.Duration
		want    func(error) bool
	}{
		{"revoked", "acme", revoked.ID, time.Hour, is(tenant.ErrKeyRevoked)},
		{"expired", "acme", expired.ID, time.Hour, is(tenant.ErrKeyExpired)},
		{"unknown-key", "acme", "key_000000000000000000000000", time.Hour, is(tenant.ErrKeyNotFound)},
		{"malformed-key-id", "acme", "key_nope", time.Hour, is(tenant.ErrKeyNotFound)},
		{"other-tenant", "globex", live.ID, time.Hour, is(tenant.ErrKeyNotFound)},
		{"invalid-tenant-id", "Bad_Id", live.ID, time.Hour, isValidation},
		{"invalid-negative-overlap", "acme", live.ID, -time.Second, isValidation},
		{"invalid-overlap-above-30-days", "acme", live.ID, 30*24*time.Hour + time.Second, isValidation},
	}
	for _, tc := range cases {
		if _, err := a.RollKey(context.Background(), tc.tenant, tc.key, tc.overlap); !tc.want(err) {
			t.Errorf("%s: got %v", tc.name, err)
		}
	}
	keys, err := a.ListKeys(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("refused rolls left %d keys, want the 3 issued", len(keys))
	}
	if _, err := a.RollKey(context.Background(), "acme", live.ID, 30*24*time.Hour); err != nil {
		t.Fatalf("a 30-day overlap was refused: %v", err)
	}
}

// failingExpiry fails the step of a roll that shortens the old key.
type failingExpiry struct{ *tenanttest.Memory }

func (failingExpiry) ExpireKeyBy(context.Context, string, string, time.Time) (tenant.APIKey, error) {
	return tenant.APIKey{}, storage.ErrUnavailable
}

func TestRollKeyFailureRevokesUnusedSuccessor(t *testing.T) {
	t.Parallel()
	store := failingExpiry{tenanttest.NewMemory()}
	c := newClock()
	a := tenant.NewAdmin(store, c.Now)
	mustTenant(t, a, "acme")
	old := mustIssue(t, a, "acme", tenant.KeyRequest{})

	if _, err := a.RollKey(context.Background(), "acme", old.Key.ID, time.Hour); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("got %v, want the store's ErrUnavailable", err)
	}
	keys, err := a.ListKeys(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d keys, want the old key and its revoked successor", len(keys))
	}
	for _, k := range keys {
		switch {
		case k.ID == old.Key.ID && (k.Status != tenant.KeyActive || !k.ExpiresAt.IsZero()):
			t.Fatalf("the failed roll changed the old key: %+v", k)
		case k.ID != old.Key.ID && k.Status != tenant.KeyRevoked:
			t.Fatalf("the unused successor is still %s", k.Status)
		}
	}
}
