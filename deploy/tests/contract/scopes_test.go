package contract_test

import (
	"slices"
	"testing"

	"github.com/trigger-api/trigger-api/pkg/openapi"
)

// scopeMatrix sends every tenant operation's sample request with a key of each single scope:
// a key without one of the operation's documented scopes must get 403, a key with one must get
// past the scope check (any answer but 401 and 403). Routers and document are held to each other.
func scopeMatrix(t *testing.T, c *client, adminToken string) {
	const tenantID = "scopes"
	c.do(t, call{name: "scopes-tenant", method: "POST", path: tenants, key: adminToken,
		body: `{"tenant_id":"` + tenantID + `","name":"Scopes","rate_limit":10000}`, status: 201})
	ops, err := openapi.Operations("")
	if err != nil {
		t.Fatal(err)
	}
	for _, scope := range []string{"events:write", "inbox:read", "inbox:ack"} {
		a := c.do(t, call{name: "scopes-key-" + scope, method: "POST", path: keysOf(tenantID), key: adminToken,
			body: `{"scopes":["` + scope + `"]}`, status: 201})
		key := decodeAs[issuedKey](t, a).APIKey
		samples := sampleRequests(key, adminToken)
		tested := 0
		for _, o := range ops {
			if len(o.TenantScopes) == 0 {
				continue
			}
			tested++
			s := samples[o.ID]
			s.name = o.ID + "-with-" + scope
			got := c.do(t, s).Status
			allowed := slices.Contains(o.TenantScopes, scope)
			switch {
			case allowed && (got == 401 || got == 403):
				t.Errorf("%s with only %s: %d, want past the scope check (documented scopes %v)", o.ID, scope, got, o.TenantScopes)
			case !allowed && got != 403:
				t.Errorf("%s with only %s: %d, want 403 (documented scopes %v)", o.ID, scope, got, o.TenantScopes)
			}
		}
		if tested < 10 {
			t.Fatalf("only %d operations take a tenant key: the document's security is not being read", tested)
		}
	}
}
