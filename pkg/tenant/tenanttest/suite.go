package tenanttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// base is a fixed instant at millisecond precision, the precision stores keep.
var base = time.Date(2030, 1, 2, 3, 4, 5, 678_000_000, time.UTC)

// Run checks a tenant.Store implementation against the contract the admin API and the
// authenticator rely on. newStore must return an empty store that only the calling test uses.
func Run(t *testing.T, newStore func(t *testing.T) tenant.Store) {
	t.Helper()
	cases := []struct {
		name string
		run  func(t *testing.T, s tenant.Store)
	}{
		{"tenant-create-then-get", testTenantRoundTrip},
		{"tenant-create-duplicate-exists", testTenantDuplicate},
		{"tenant-get-unknown-not-found", testTenantUnknown},
		{"tenant-set-status", testTenantSetStatus},
		{"tenant-set-status-unknown-not-found", testTenantSetStatusUnknown},
		{"tenant-update-limits-partitions-only-grow", testTenantLimits},
		{"tenant-list-empty", testTenantListEmpty},
		{"tenant-list-pagination", testTenantListPagination},
		{"key-create-then-read", testKeyRoundTrip},
		{"key-optional-fields-absent", testKeyMinimal},
		{"key-unknown-not-found", testKeyUnknown},
		{"key-and-tenant-together", testKeyAndTenant},
		{"key-create-duplicate-hash-fails", testKeyDuplicateHash},
		{"key-list-by-tenant", testKeyList},
		{"key-revoke-keeps-first-time", testKeyRevoke},
		{"key-revoke-unknown-or-other-tenant", testKeyRevokeNotFound},
		{"key-expire-by-never-extends", testKeyExpireBy},
		{"key-expire-by-unknown-or-other-tenant", testKeyExpireByNotFound},
		{"key-record-use-once-per-interval", testKeyRecordUse},
		{"key-record-use-unknown-creates-nothing", testKeyRecordUseUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

func sampleTenant(id string) tenant.Tenant {
	return tenant.Tenant{
		ID:            id,
		Name:          "Tenant " + id,
		Status:        tenant.StatusActive,
		Partitions:    3,
		MaxDeliveries: 7,
		RetentionDays: 9,
		RateLimit:     250,
		CreatedAt:     base,
		UpdatedAt:     base.Add(time.Second),
	}
}

func sampleKey(t *testing.T, tenantID string) tenant.APIKey {
	t.Helper()
	k, err := apikey.New(tenantID)
	if err != nil {
		t.Fatal(err)
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return tenant.APIKey{
		ID:        "key_" + hex.EncodeToString(b[:]),
		TenantID:  tenantID,
		Hash:      k.Hash(),
		Prefix:    k.Prefix(),
		Label:     "ci deploys",
		Scopes:    []tenant.Scope{tenant.ScopeEventsWrite, tenant.ScopeInboxAck},
		Status:    tenant.KeyActive,
		CreatedAt: base,
		ExpiresAt: base.Add(48 * time.Hour),
	}
}

func tenantDiff(got, want tenant.Tenant) string {
	if got.ID != want.ID || got.Name != want.Name || got.Status != want.Status ||
		got.Partitions != want.Partitions || got.MaxDeliveries != want.MaxDeliveries ||
		got.RetentionDays != want.RetentionDays || got.RateLimit != want.RateLimit || !got.CreatedAt.Equal(want.CreatedAt) ||
		!got.UpdatedAt.Equal(want.UpdatedAt) {
		return fmt.Sprintf("got  %+v\nwant %+v", got, want)
	}
	return ""
}

func keyDiff(got, want tenant.APIKey) string {
	if got.ID != want.ID || got.TenantID != want.TenantID || got.Hash != want.Hash ||
		got.Prefix != want.Prefix || got.Label != want.Label || !slices.Equal(got.Scopes, want.Scopes) ||
		got.Status != want.Status || !got.CreatedAt.Equal(want.CreatedAt) ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || !got.RevokedAt.Equal(want.RevokedAt) ||
		!got.LastUsedAt.Equal(want.LastUsedAt) {
		return fmt.Sprintf("got  %+v\nwant %+v", got, want)
	}
	return ""
}

func mustCreateTenant(t *testing.T, s tenant.Store, tn tenant.Tenant) {
	t.Helper()
	if err := s.CreateTenant(context.Background(), tn); err != nil {
		t.Fatalf("create tenant %s: %v", tn.ID, err)
	}
}

func mustCreateKey(t *testing.T, s tenant.Store, k tenant.APIKey) {
	t.Helper()
	if err := s.CreateKey(context.Background(), k); err != nil {
		t.Fatalf("create key %s: %v", k.ID, err)
	}
}

// wantKey checks a key as every read path returns it.
func wantKey(t *testing.T, s tenant.Store, want tenant.APIKey) {
	t.Helper()
	ctx := context.Background()
	got, err := s.KeyByHash(ctx, want.Hash)
	if err != nil {
		t.Fatalf("key by hash: %v", err)
	}
	if d := keyDiff(got, want); d != "" {
		t.Fatalf("key by hash:\n%s", d)
	}
	got, err = s.GetKey(ctx, want.TenantID, want.ID)
	if err != nil {
		t.Fatalf("get key: %v", err)
	}
	if d := keyDiff(got, want); d != "" {
		t.Fatalf("get key:\n%s", d)
	}
}

func testTenantRoundTrip(t *testing.T, s tenant.Store) {
	want := sampleTenant("acme")
	mustCreateTenant(t, s, want)
	got, err := s.GetTenant(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if d := tenantDiff(got, want); d != "" {
		t.Fatal(d)
	}
}

func testTenantDuplicate(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	want := sampleTenant("acme")
	mustCreateTenant(t, s, want)
	again := sampleTenant("acme")
	again.Name = "Impostor"
	if err := s.CreateTenant(ctx, again); !errors.Is(err, tenant.ErrExists) {
		t.Fatalf("second create: got %v, want ErrExists", err)
	}
	got, err := s.GetTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if d := tenantDiff(got, want); d != "" {
		t.Fatalf("a refused create changed the tenant:\n%s", d)
	}
}

func testTenantUnknown(t *testing.T, s tenant.Store) {
	mustCreateTenant(t, s, sampleTenant("acme"))
	if _, err := s.GetTenant(context.Background(), "globex"); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

func testTenantSetStatus(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	tn := sampleTenant("acme")
	mustCreateTenant(t, s, tn)
	for i, status := range []tenant.Status{tenant.StatusSuspended, tenant.StatusActive} {
		at := base.Add(time.Duration(i+1) * time.Hour)
		got, err := s.UpdateTenant(ctx, "acme", tenant.StatusPatch(status), at)
		if err != nil {
			t.Fatalf("set %s: %v", status, err)
		}
		want := tn
		want.Status, want.UpdatedAt = status, at
		if d := tenantDiff(got, want); d != "" {
			t.Fatalf("set %s returned:\n%s", status, d)
		}
		read, err := s.GetTenant(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if d := tenantDiff(read, want); d != "" {
			t.Fatalf("after set %s, get:\n%s", status, d)
		}
	}
}

func testTenantSetStatusUnknown(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	if _, err := s.UpdateTenant(ctx, "ghost", tenant.StatusPatch(tenant.StatusSuspended), base); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	// An update must not create the tenant it did not find.
	if _, err := s.GetTenant(ctx, "ghost"); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("after a refused update, get: got %v, want ErrNotFound", err)
	}
}

func testTenantListEmpty(t *testing.T, s tenant.Store) {
	got, next, err := s.ListTenants(context.Background(), 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 || next != "" {
		t.Fatalf("empty store listed %d tenants, next %q", len(got), next)
	}
}

func testTenantListPagination(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	want := map[string]tenant.Tenant{}
	for i := range 7 {
		tn := sampleTenant(fmt.Sprintf("tenant-%02d", i))
		mustCreateTenant(t, s, tn)
		want[tn.ID] = tn
	}

	all, next, err := s.ListTenants(ctx, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(want) || next != "" {
		t.Fatalf("limit above the count: %d tenants, next %q; want %d and no next", len(all), next, len(want))
	}

	seen := map[string]bool{}
	after := ""
	for page := 0; ; page++ {
		if page > len(want) {
			t.Fatalf("pagination did not end after %d pages", page)
		}
		got, next, err := s.ListTenants(ctx, 3, after)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		if len(got) > 3 {
			t.Fatalf("page %d has %d tenants, limit 3", page, len(got))
		}
		for _, tn := range got {
			if seen[tn.ID] {
				t.Fatalf("page %d repeats %s", page, tn.ID)
			}
			seen[tn.ID] = true
			w, ok := want[tn.ID]
			if !ok {
				t.Fatalf("page %d lists unknown tenant %s", page, tn.ID)
			}
			if d := tenantDiff(tn, w); d != "" {
				t.Fatalf("page %d:\n%s", page, d)
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(seen) != len(want) {
		t.Fatalf("pages listed %d tenants, want %d", len(seen), len(want))
	}
}

func testKeyRoundTrip(t *testing.T, s tenant.Store) {
	k := sampleKey(t, "acme")
	mustCreateKey(t, s, k)
	wantKey(t, s, k)
}

func testKeyMinimal(t *testing.T, s tenant.Store) {
	k := sampleKey(t, "acme")
	k.Label, k.ExpiresAt = "", time.Time{}
	k.Scopes = []tenant.Scope{tenant.ScopeInboxRead}
	mustCreateKey(t, s, k)
	wantKey(t, s, k)
}

func testKeyAndTenant(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	tn := sampleTenant("acme")
	mustCreateTenant(t, s, tn)
	k := sampleKey(t, "acme")
	mustCreateKey(t, s, k)
	gotKey, gotTenant, err := s.KeyAndTenant(ctx, k.Hash, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if d := keyDiff(gotKey, k); d != "" || gotTenant.ID != "acme" || gotTenant.Partitions != tn.Partitions || gotTenant.Status != tn.Status {
		t.Fatalf("key and tenant: %s %+v", d, gotTenant)
	}
	if _, _, err := s.KeyAndTenant(ctx, apikey.Hash("tenant_acme_live_nothing"), "acme"); !errors.Is(err, tenant.ErrKeyNotFound) {
		t.Errorf("unknown key: got %v, want ErrKeyNotFound", err)
	}
	orphan := sampleKey(t, "globex") // a key whose tenant is not there
	mustCreateKey(t, s, orphan)
	if _, _, err := s.KeyAndTenant(ctx, orphan.Hash, "globex"); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("key without its tenant: got %v, want ErrNotFound", err)
	}
}

func testKeyUnknown(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	k := sampleKey(t, "acme")
	mustCreateKey(t, s, k)
	if _, err := s.KeyByHash(ctx, apikey.Hash("tenant_acme_live_nothing")); !errors.Is(err, tenant.ErrKeyNotFound) {
		t.Errorf("key by unknown hash: got %v, want ErrKeyNotFound", err)
	}
	if _, err := s.GetKey(ctx, "acme", "key_000000000000000000000000"); !errors.Is(err, tenant.ErrKeyNotFound) {
		t.Errorf("get unknown key id: got %v, want ErrKeyNotFound", err)
	}
	if _, err := s.GetKey(ctx, "globex", k.ID); !errors.Is(err, tenant.ErrKeyNotFound) {
		t.Errorf("get another tenant's key: got %v, want ErrKeyNotFound", err)
	}
}

func testKeyDuplicateHash(t *testing.T, s tenant.Store) {
	k := sampleKey(t, "acme")
	mustCreateKey(t, s, k)
	dup := sampleKey(t, "acme")
	dup.Hash = k.Hash
	if err := s.CreateKey(context.Background(), dup); err == nil {
		t.Fatal("a second key with the same hash was accepted")
	}
	got, err := s.KeyByHash(context.Background(), k.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if d := keyDiff(got, k); d != "" {
		t.Fatalf("a refused create changed the key:\n%s", d)
	}
}

func testKeyList(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	want := map[string]tenant.APIKey{}
	for range 3 {
		k := sampleKey(t, "acme")
		mustCreateKey(t, s, k)
		want[k.ID] = k
	}
	mustCreateKey(t, s, sampleKey(t, "globex"))

	got, err := s.ListKeys(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d keys, want %d", len(got), len(want))
	}
	for _, k := range got {
		w, ok := want[k.ID]
		if !ok {
			t.Fatalf("listed key %s of tenant %s", k.ID, k.TenantID)
		}
		if d := keyDiff(k, w); d != "" {
			t.Fatal(d)
		}
	}

	none, err := s.ListKeys(ctx, "initech")
	if err != nil || len(none) != 0 {
		t.Fatalf("tenant without keys: %d keys, err %v", len(none), err)
	}
}

func testKeyRevoke(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	k := sampleKey(t, "acme")
	mustCreateKey(t, s, k)
	first := base.Add(time.Hour)
	want := k
	want.Status, want.RevokedAt = tenant.KeyRevoked, first

	got, err := s.RevokeKey(ctx, "acme", k.ID, first)
	if err != nil {
		t.Fatal(err)
	}
	if d := keyDiff(got, want); d != "" {
		t.Fatalf("revoke returned:\n%s", d)
	}
	got, err = s.RevokeKey(ctx, "acme", k.ID, first.Add(time.Hour))
	if err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if d := keyDiff(got, want); d != "" {
		t.Fatalf("second revoke returned:\n%s", d)
	}
	wantKey(t, s, want)
}

func testKeyRevokeNotFound(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	k := sampleKey(t, "acme")
	mustCreateKey(t, s, k)
	if _, err := s.RevokeKey(ctx, "acme", "key_000000000000000000000000", base); !errors.Is(err, tenant.ErrKeyNotFound) {
		t.Errorf("revoke unknown key: got %v, want ErrKeyNotFound", err)
	}
	if _, err := s.RevokeKey(ctx, "globex", k.ID, base); !errors.Is(err, tenant.ErrKeyNotFound) {
		t.Errorf("revoke another tenant's key: got %v, want ErrKeyNotFound", err)
	}
	wantKey(t, s, k)
}

func testKeyExpireBy(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	k := sampleKey(t, "acme")
	k.ExpiresAt = time.Time{}
	mustCreateKey(t, s, k)

	steps := []struct {
		name string
		at   time.Time
		want time.Time
	}{
		{"no-expiry-gets-one", base.Add(10 * time.Hour), base.Add(10 * time.Hour)},
		{"later-is-ignored", base.Add(20 * time.Hour), base.Add(10 * time.Hour)},
		{"same-is-kept", base.Add(10 * time.Hour), base.Add(10 * time.Hour)},
		{"earlier-wins", base.Add(5 * time.Hour), base.Add(5 * time.Hour)},
	}
	for _, st := range steps {
		got, err := s.ExpireKeyBy(ctx, "acme", k.ID, st.at)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		want := k
		want.ExpiresAt = st.want
		if d := keyDiff(got, want); d != "" {
			t.Fatalf("%s returned:\n%s", st.name, d)
		}
		wantKey(t, s, want)
	}
}

func testKeyExpireByNotFound(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	k := sampleKey(t, "acme")
	mustCreateKey(t, s, k)
	if _, err := s.ExpireKeyBy(ctx, "acme", "key_000000000000000000000000", base); !errors.Is(err, tenant.ErrKeyNotFound) {
		t.Errorf("expire unknown key: got %v, want ErrKeyNotFound", err)
	}
	if _, err := s.ExpireKeyBy(ctx, "globex", k.ID, base); !errors.Is(err, tenant.ErrKeyNotFound) {
		t.Errorf("expire another tenant's key: got %v, want ErrKeyNotFound", err)
	}
	wantKey(t, s, k)
}

func testTenantLimits(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	tn := sampleTenant("acme")
	mustCreateTenant(t, s, tn)
	four, twenty, thirty, zero := 4, 20, 30, 0
	at := base.Add(time.Hour)
	got, err := s.UpdateTenant(ctx, "acme", tenant.Patch{Partitions: &four, MaxDeliveries: &twenty, RetentionDays: &thirty, RateLimit: &zero}, at)
	if err != nil {
		t.Fatal(err)
	}
	want := tn
	want.Partitions, want.MaxDeliveries, want.RetentionDays, want.RateLimit, want.UpdatedAt = 4, 20, 30, 0, at
	if d := tenantDiff(got, want); d != "" {
		t.Fatalf("update returned:\n%s", d)
	}
	two := 2
	if _, err := s.UpdateTenant(ctx, "acme", tenant.Patch{Partitions: &two, RetentionDays: &two}, base.Add(2*time.Hour)); !errors.Is(err, tenant.ErrPartitionsShrink) {
		t.Fatalf("shrinking partitions: %v", err)
	}
	// The refused update changed nothing, not even the fields beside partitions.
	read, err := s.GetTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if d := tenantDiff(read, want); d != "" {
		t.Fatalf("after a refused update:\n%s", d)
	}
	if _, err := s.UpdateTenant(ctx, "acme", tenant.Patch{Partitions: &four}, base.Add(3*time.Hour)); err != nil {
		t.Fatalf("keeping the same partitions: %v", err)
	}
}

func testKeyRecordUse(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	mustCreateTenant(t, s, sampleTenant("acme"))
	k := sampleKey(t, "acme")
	mustCreateKey(t, s, k)
	wantKey(t, s, k) // never used: no last use
	first := base.Add(time.Hour)
	if err := s.RecordKeyUse(ctx, k.Hash, first, first.Add(-time.Hour)); err != nil {
		t.Fatalf("first use: %v", err)
	}
	k.LastUsedAt = first
	wantKey(t, s, k)
	// Within the interval: the stored use is after since, so nothing changes.
	within := first.Add(59 * time.Minute)
	if err := s.RecordKeyUse(ctx, k.Hash, within, within.Add(-time.Hour)); err != nil {
		t.Fatalf("use within the interval: %v", err)
	}
	wantKey(t, s, k)
	later := first.Add(time.Hour)
	if err := s.RecordKeyUse(ctx, k.Hash, later, later.Add(-time.Hour)); err != nil {
		t.Fatalf("use after the interval: %v", err)
	}
	k.LastUsedAt = later
	wantKey(t, s, k)
}

func testKeyRecordUseUnknown(t *testing.T, s tenant.Store) {
	ctx := context.Background()
	mustCreateTenant(t, s, sampleTenant("acme"))
	k := sampleKey(t, "acme")
	if err := s.RecordKeyUse(ctx, k.Hash, base, base.Add(-time.Hour)); err != nil {
		t.Fatalf("record use of an unknown key: %v", err)
	}
	if _, err := s.KeyByHash(ctx, k.Hash); !errors.Is(err, tenant.ErrKeyNotFound) {
		t.Fatalf("after recording the use of an unknown key: got %v, want ErrKeyNotFound", err)
	}
	keys, err := s.ListKeys(ctx, "acme")
	if err != nil || len(keys) != 0 {
		t.Fatalf("list keys: %v, %v; want none", keys, err)
	}
}
