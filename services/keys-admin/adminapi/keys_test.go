package adminapi_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/apikey"
)

var (
	issuedFields = []string{"key_id", "tenant_id", "api_key", "prefix", "label", "scopes", "status", "created_at"}
	keyIDPattern = regexp.MustCompile(`^key_[0-9a-f]{24}$`)
)

// wantIssued checks a 201 that hands out a key: its shape and that the secret is a real key of
// the tenant whose prefix is the one shown.
func wantIssued(tenantID, label string, scopes []string, expiresAt string) func(*testing.T, response) {
	return func(t *testing.T, res response) {
		t.Helper()
		m := object(t, res.body)
		fields := slices.Clone(issuedFields)
		if expiresAt != "" {
			fields = append(fields, "expires_at")
		}
		wantFields(t, m, fields...)
		var k issued
		if err := json.Unmarshal(res.body, &k); err != nil {
			t.Fatal(err)
		}
		parsed, err := apikey.Parse(k.APIKey)
		if err != nil {
			t.Fatalf("api_key does not parse: %v", err)
		}
		if !keyIDPattern.MatchString(k.KeyID) || k.TenantID != tenantID || parsed.TenantID != tenantID ||
			k.Prefix != parsed.Prefix() || !strings.HasPrefix(k.APIKey, k.Prefix) ||
			!strings.HasPrefix(k.Prefix, "tenant_"+tenantID+"_live_") || k.Label != label ||
			!slices.Equal(k.Scopes, scopes) || k.Status != "active" || k.ExpiresAt != expiresAt {
			t.Fatalf("issued key %s", res.body)
		}
		if _, err := time.Parse(time.RFC3339, k.CreatedAt); err != nil || !strings.HasSuffix(k.CreatedAt, "Z") {
			t.Fatalf("created_at %q is not RFC 3339 UTC", k.CreatedAt)
		}
	}
}

var allScopes = []string{"events:write", "inbox:read", "inbox:ack"}

func TestKeyRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.mustCreateTenant(t, "acme")
	e.mustCreateTenant(t, "globex")
	future := e.clock.Now().Add(48 * time.Hour).Format(time.RFC3339)
	past := e.clock.Now().Add(-time.Minute).Format(time.RFC3339)

	var first issued
	keep := func(t *testing.T, res response) {
		if err := json.Unmarshal(res.body, &first); err != nil {
			t.Fatal(err)
		}
	}
	both := func(checks ...func(*testing.T, response)) func(*testing.T, response) {
		return func(t *testing.T, res response) {
			for _, c := range checks {
				c(t, res)
			}
		}
	}
	keysPath := "/admin/tenants/acme/keys"

	e.runCalls(t, []call{
		{name: "keys-201", request: request{method: "POST", path: keysPath,
			body: `{"scopes":["inbox:ack","events:write"],"label":"ci deploys","expires_at":"` + future + `"}`},
			status: 201, check: both(wantIssued("acme", "ci deploys", []string{"events:write", "inbox:ack"}, future), keep)},
		{name: "keys-201-no-body", request: request{method: "POST", path: keysPath},
			before: func() { e.clock.Advance(time.Second) },
			status: 201, check: wantIssued("acme", "", allScopes, "")},
		{name: "keys-201-empty-object", request: request{method: "POST", path: keysPath, body: `{}`},
			before: func() { e.clock.Advance(time.Second) },
			status: 201, check: wantIssued("acme", "", allScopes, "")},
		{name: "keys-201-label-100-chars", request: request{method: "POST", path: keysPath, body: `{"label":"` + strings.Repeat("ü", 100) + `"}`},
			before: func() { e.clock.Advance(time.Second) },
			status: 201, check: wantIssued("acme", strings.Repeat("ü", 100), allScopes, "")},
		{name: "keys-201-suspended-tenant-still-issues", request: request{method: "POST", path: "/admin/tenants/globex/keys", body: `{"scopes":["inbox:read"]}`},
			before: func() {
				if res := e.do(t, request{method: "PATCH", path: "/admin/tenants/globex", body: `{"status":"suspended"}`}); res.status != 200 {
					t.Fatalf("suspend: %d", res.status)
				}
			},
			status: 201, check: wantIssued("globex", "", []string{"inbox:read"}, "")},
		{name: "keys-404-unknown-tenant", request: request{method: "POST", path: "/admin/tenants/ghost/keys", body: `{}`},
			status: 404, code: "not_found"},
		{name: "keys-400-bad-tenant-id", request: request{method: "POST", path: "/admin/tenants/Bad_Id/keys", body: `{}`},
			status: 400, code: "invalid_request"},
		{name: "keys-400-unknown-scope", request: request{method: "POST", path: keysPath, body: `{"scopes":["admin"]}`},
			status: 400, code: "invalid_request"},
		{name: "keys-400-empty-scopes", request: request{method: "POST", path: keysPath, body: `{"scopes":[]}`},
			status: 400, code: "invalid_request"},
		{name: "keys-400-label-101-chars", request: request{method: "POST", path: keysPath, body: `{"label":"` + strings.Repeat("a", 101) + `"}`},
			status: 400, code: "invalid_request"},
		{name: "keys-400-expires-in-past", request: request{method: "POST", path: keysPath, body: `{"expires_at":"` + past + `"}`},
			status: 400, code: "invalid_request"},
		{name: "keys-400-expires-not-rfc3339", request: request{method: "POST", path: keysPath, body: `{"expires_at":"tomorrow"}`},
			status: 400, code: "invalid_request"},
		{name: "keys-400-expires-empty", request: request{method: "POST", path: keysPath, body: `{"expires_at":""}`},
			status: 400, code: "invalid_request"},
		{name: "keys-400-unknown-field", request: request{method: "POST", path: keysPath, body: `{"secret":"mine"}`},
			status: 400, code: "invalid_request"},
		{name: "keys-400-invalid-json", request: request{method: "POST", path: keysPath, body: `[`},
			status: 400, code: "invalid_json"},
		{name: "keys-415-not-json", request: request{method: "POST", path: keysPath, body: `label=x`, contentType: "text/plain"},
			status: 415, code: "unsupported_media_type"},
		{name: "list-keys-200", request: request{method: "GET", path: keysPath},
			status: 200, check: func(t *testing.T, res response) {
				var out struct {
					Keys []map[string]any `json:"keys"`
				}
				if err := json.Unmarshal(res.body, &out); err != nil {
					t.Fatal(err)
				}
				if len(out.Keys) != 4 || out.Keys[0]["key_id"] != first.KeyID {
					t.Fatalf("listed %d keys, first %v; want 4, oldest (%s) first", len(out.Keys), out.Keys[0]["key_id"], first.KeyID)
				}
				wantFields(t, out.Keys[0], "key_id", "tenant_id", "prefix", "label", "scopes", "status", "created_at", "expires_at")
				if out.Keys[0]["prefix"] != first.Prefix || out.Keys[0]["expires_at"] != future {
					t.Fatalf("first key %v", out.Keys[0])
				}
				for _, k := range out.Keys[1:] {
					wantFields(t, k, "key_id", "tenant_id", "prefix", "label", "scopes", "status", "created_at")
				}
				wantNoSecrets(t, res.body, first)
			}},
		{name: "list-keys-404-unknown-tenant", request: request{method: "GET", path: "/admin/tenants/ghost/keys"},
			status: 404, code: "not_found"},
		{name: "list-keys-400-bad-tenant-id", request: request{method: "GET", path: "/admin/tenants/Bad_Id/keys"},
			status: 400, code: "invalid_request"},
	})

	revokedAt := e.clock.Now().Format(time.RFC3339)
	wantRevoked := func(t *testing.T, res response) {
		m := object(t, res.body)
		wantFields(t, m, "key_id", "tenant_id", "prefix", "label", "scopes", "status", "created_at", "expires_at", "revoked_at")
		if m["key_id"] != first.KeyID || m["status"] != "revoked" || m["revoked_at"] != revokedAt {
			t.Fatalf("revoked key %s, want revoked at %s", res.body, revokedAt)
		}
		wantNoSecrets(t, res.body, first)
	}
	revokePath := keysPath + "/" + first.KeyID
	e.runCalls(t, []call{
		{name: "revoke-200", request: request{method: "DELETE", path: revokePath}, status: 200, check: wantRevoked},
		{name: "revoke-200-again-keeps-time", request: request{method: "DELETE", path: revokePath},
			before: func() { e.clock.Advance(time.Hour) }, status: 200, check: wantRevoked},
		{name: "revoke-404-unknown-key", request: request{method: "DELETE", path: keysPath + "/key_000000000000000000000000"},
			status: 404, code: "not_found"},
		{name: "revoke-404-malformed-key-id", request: request{method: "DELETE", path: keysPath + "/not-a-key"},
			status: 404, code: "not_found"},
		{name: "revoke-404-uppercase-key-id", request: request{method: "DELETE", path: keysPath + "/" + strings.ToUpper(first.KeyID)},
			status: 404, code: "not_found"},
		{name: "revoke-404-other-tenant", request: request{method: "DELETE", path: "/admin/tenants/globex/keys/" + first.KeyID},
			status: 404, code: "not_found"},
		{name: "revoke-400-bad-tenant-id", request: request{method: "DELETE", path: "/admin/tenants/Bad_Id/keys/" + first.KeyID},
			status: 400, code: "invalid_request"},
		{name: "list-keys-200-shows-revoked", request: request{method: "GET", path: keysPath},
			status: 200, check: func(t *testing.T, res response) {
				if !strings.Contains(string(res.body), `"status":"revoked"`) {
					t.Fatalf("list does not show the revocation: %s", res.body)
				}
			}},
	})
}

// wantNoSecrets checks a metadata answer carries neither the secret nor its hash.
func wantNoSecrets(t *testing.T, body []byte, k issued) {
	t.Helper()
	s := string(body)
	if strings.Contains(s, "api_key") || strings.Contains(s, "hash") || strings.Contains(s, k.APIKey) ||
		strings.Contains(s, apikey.Hash(k.APIKey)) {
		t.Fatalf("metadata answer leaks a secret or hash: %s", s)
	}
}

func TestRollRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.mustCreateTenant(t, "acme")
	live := e.mustIssue(t, "acme", `{"scopes":["inbox:read","inbox:ack"],"label":"worker"}`)
	fresh := e.mustIssue(t, "acme", `{}`)
	revoked := e.mustIssue(t, "acme", `{}`)
	e.mustRevoke(t, "acme", revoked.KeyID)
	expiring := e.mustIssue(t, "acme", `{"expires_at":"`+e.clock.Now().Add(time.Minute).Format(time.RFC3339)+`"}`)
	e.clock.Advance(time.Minute)

	rollPath := func(k issued) string { return "/admin/tenants/acme/keys/" + k.KeyID + "/roll" }
	e.runCalls(t, []call{
		{name: "roll-201", request: request{method: "POST", path: rollPath(live), body: `{"expires_in_seconds":3600}`},
			status: 201, check: func(t *testing.T, res response) {
				wantIssued("acme", "worker", []string{"inbox:read", "inbox:ack"}, "")(t, res)
				var k issued
				_ = json.Unmarshal(res.body, &k)
				if k.KeyID == live.KeyID || k.APIKey == live.APIKey {
					t.Fatal("roll returned the old key")
				}
				old, err := e.store.GetKey(t.Context(), "acme", live.KeyID)
				if err != nil {
					t.Fatal(err)
				}
				if want := e.clock.Now().Add(time.Hour); !old.ExpiresAt.Equal(want) || old.Status != "active" {
					t.Fatalf("old key %+v, want active until %v", old, want)
				}
			}},
		{name: "roll-201-no-body-defaults-24h", request: request{method: "POST", path: rollPath(fresh)},
			status: 201, check: func(t *testing.T, res response) {
				old, err := e.store.GetKey(t.Context(), "acme", fresh.KeyID)
				if err != nil {
					t.Fatal(err)
				}
				if want := e.clock.Now().Add(24 * time.Hour); !old.ExpiresAt.Equal(want) {
					t.Fatalf("old key expires %v, want %v", old.ExpiresAt, want)
				}
			}},
		{name: "roll-201-max-overlap", request: request{method: "POST", path: rollPath(fresh), body: `{"expires_in_seconds":2592000}`},
			status: 201},
		{name: "roll-201-zero-overlap", request: request{method: "POST", path: rollPath(fresh), body: `{"expires_in_seconds":0}`},
			status: 201},
		{name: "roll-409-revoked", request: request{method: "POST", path: rollPath(revoked), body: `{}`},
			status: 409, code: "key_revoked"},
		{name: "roll-409-expired", request: request{method: "POST", path: rollPath(expiring), body: `{}`},
			status: 409, code: "key_expired"},
		{name: "roll-409-after-zero-overlap", request: request{method: "POST", path: rollPath(fresh), body: `{}`},
			status: 409, code: "key_expired"},
		{name: "roll-404-unknown-key", request: request{method: "POST", path: "/admin/tenants/acme/keys/key_000000000000000000000000/roll", body: `{}`},
			status: 404, code: "not_found"},
		{name: "roll-404-malformed-key-id", request: request{method: "POST", path: "/admin/tenants/acme/keys/key_xyz/roll", body: `{}`},
			status: 404, code: "not_found"},
		{name: "roll-404-unknown-tenant", request: request{method: "POST", path: "/admin/tenants/ghost/keys/" + live.KeyID + "/roll", body: `{}`},
			status: 404, code: "not_found"},
		{name: "roll-400-bad-tenant-id", request: request{method: "POST", path: "/admin/tenants/Bad_Id/keys/" + live.KeyID + "/roll", body: `{}`},
			status: 400, code: "invalid_request"},
		{name: "roll-400-negative", request: request{method: "POST", path: rollPath(live), body: `{"expires_in_seconds":-1}`},
			status: 400, code: "invalid_request"},
		{name: "roll-400-above-30-days", request: request{method: "POST", path: rollPath(live), body: `{"expires_in_seconds":2592001}`},
			status: 400, code: "invalid_request"},
		{name: "roll-400-overflowing", request: request{method: "POST", path: rollPath(live), body: `{"expires_in_seconds":9223372036854775807}`},
			status: 400, code: "invalid_request"},
		{name: "roll-400-wrong-type", request: request{method: "POST", path: rollPath(live), body: `{"expires_in_seconds":"60"}`},
			status: 400, code: "invalid_request"},
		{name: "roll-400-unknown-field", request: request{method: "POST", path: rollPath(live), body: `{"grace":60}`},
			status: 400, code: "invalid_request"},
	})
}

// Answers carrying a key's secret must not be kept by any cache on the way.
func TestSecretAnswersAreNotStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.mustCreateTenant(t, "acme")
	k := e.mustIssue(t, "acme", `{}`)
	for _, tc := range []struct {
		name    string
		req     request
		status  int
		noStore bool
	}{
		{"issue-201-no-store", request{method: "POST", path: "/admin/tenants/acme/keys", body: `{}`}, http.StatusCreated, true},
		{"issue-without-body-201-no-store", request{method: "POST", path: "/admin/tenants/acme/keys"}, http.StatusCreated, true},
		{"roll-201-no-store", request{method: "POST", path: "/admin/tenants/acme/keys/" + k.KeyID + "/roll", body: `{}`}, http.StatusCreated, true},
		{"issue-404-no-store", request{method: "POST", path: "/admin/tenants/ghost/keys", body: `{}`}, http.StatusNotFound, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.do(t, tc.req)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			if got := res.header.Get("Cache-Control") == "no-store"; got != tc.noStore {
				t.Fatalf("Cache-Control %q, want no-store: %v", res.header.Get("Cache-Control"), tc.noStore)
			}
			if tc.noStore && res.status == http.StatusCreated && !strings.Contains(string(res.body), `"api_key":"`) {
				t.Fatalf("answer without the secret: %s", res.body)
			}
		})
	}
}
