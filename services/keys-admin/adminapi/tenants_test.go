package adminapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

var tenantFields = []string{"tenant_id", "name", "status", "partitions", "max_deliveries", "retention_days", "rate_limit", "created_at", "updated_at"}

func TestTenantRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	created := e.clock.Now().Format(time.RFC3339)
	var updated string

	wantTenant := func(id, status string, partitions int) func(*testing.T, response) {
		return func(t *testing.T, res response) {
			m := object(t, res.body)
			wantFields(t, m, tenantFields...)
			if m["tenant_id"] != id || m["status"] != status || m["partitions"] != float64(partitions) ||
				m["max_deliveries"] != float64(10) || m["retention_days"] != float64(7) || m["rate_limit"] != float64(0) ||
				m["created_at"] != created {
				t.Fatalf("tenant %s", res.body)
			}
			if updated != "" && m["updated_at"] != updated {
				t.Fatalf("updated_at %v, want %s", m["updated_at"], updated)
			}
		}
	}

	wantLimits := func(partitions, maxDeliveries, retentionDays, rateLimit int) func(*testing.T, response) {
		return func(t *testing.T, res response) {
			m := object(t, res.body)
			if m["partitions"] != float64(partitions) || m["max_deliveries"] != float64(maxDeliveries) || m["retention_days"] != float64(retentionDays) ||
				m["rate_limit"] != float64(rateLimit) {
				t.Fatalf("limits %s", res.body)
			}
		}
	}

	e.runCalls(t, []call{
		{name: "create-201", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"acme","name":"Acme Inc"}`},
			status: 201, check: func(t *testing.T, res response) {
				wantTenant("acme", "active", 1)(t, res)
				if m := object(t, res.body); m["name"] != "Acme Inc" || m["updated_at"] != created {
					t.Fatalf("tenant %s", res.body)
				}
			}},
		{name: "create-201-partitions", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"big-co","name":"Big","partitions":64}`},
			status: 201, check: wantTenant("big-co", "active", 64)},
		{name: "create-409-duplicate", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"acme","name":"Again"}`},
			status: 409, code: "tenant_exists"},
		{name: "create-400-bad-id", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"Acme_1","name":"x"}`},
			status: 400, code: "invalid_request"},
		{name: "create-400-missing-id", request: request{method: "POST", path: "/admin/tenants", body: `{"name":"x"}`},
			status: 400, code: "invalid_request"},
		{name: "create-400-missing-name", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"nameless"}`},
			status: 400, code: "invalid_request"},
		{name: "create-400-partitions-0", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"p0","name":"x","partitions":0}`},
			status: 400, code: "invalid_request"},
		{name: "create-400-partitions-65", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"p65","name":"x","partitions":65}`},
			status: 400, code: "invalid_request"},
		{name: "create-400-partitions-fraction", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"pf","name":"x","partitions":1.5}`},
			status: 400, code: "invalid_request"},
		{name: "create-400-unknown-field", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"x1","name":"x","plan":"gold"}`},
			status: 400, code: "invalid_request"},
		{name: "create-400-wrong-type", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":7,"name":"x"}`},
			status: 400, code: "invalid_request"},
		{name: "create-400-invalid-json", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":`},
			status: 400, code: "invalid_json"},
		{name: "create-400-trailing-data", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"t2","name":"x"} {}`},
			status: 400, code: "invalid_json"},
		{name: "create-415-not-json", request: request{method: "POST", path: "/admin/tenants", body: `tenant_id=x`, contentType: "application/x-www-form-urlencoded"},
			status: 415, code: "unsupported_media_type"},
		{name: "get-200", request: request{method: "GET", path: "/admin/tenants/acme"},
			status: 200, check: wantTenant("acme", "active", 1)},
		{name: "get-404-unknown", request: request{method: "GET", path: "/admin/tenants/ghost"},
			status: 404, code: "not_found"},
		{name: "get-400-bad-id", request: request{method: "GET", path: "/admin/tenants/Bad_Id"},
			status: 400, code: "invalid_request"},
		{name: "patch-200-suspend", request: request{method: "PATCH", path: "/admin/tenants/acme", body: `{"status":"suspended"}`},
			before: func() {
				e.clock.Advance(90 * time.Second)
				updated = e.clock.Now().Format(time.RFC3339)
			},
			status: 200, check: wantTenant("acme", "suspended", 1)},
		{name: "get-200-suspended", request: request{method: "GET", path: "/admin/tenants/acme"},
			status: 200, check: wantTenant("acme", "suspended", 1)},
		{name: "patch-200-activate", request: request{method: "PATCH", path: "/admin/tenants/acme", body: `{"status":"active"}`},
			status: 200, check: wantTenant("acme", "active", 1)},
		{name: "patch-400-bad-status", request: request{method: "PATCH", path: "/admin/tenants/acme", body: `{"status":"deleted"}`},
			status: 400, code: "invalid_request"},
		{name: "patch-400-empty-object", request: request{method: "PATCH", path: "/admin/tenants/acme", body: `{}`},
			status: 400, code: "invalid_request"},
		{name: "patch-400-null-status", request: request{method: "PATCH", path: "/admin/tenants/acme", body: `{"status":null}`},
			status: 400, code: "invalid_request"},
		{name: "patch-400-unknown-field", request: request{method: "PATCH", path: "/admin/tenants/acme", body: `{"status":"active","name":"x"}`},
			status: 400, code: "invalid_request"},
		{name: "patch-400-no-body", request: request{method: "PATCH", path: "/admin/tenants/acme", body: ` `},
			status: 400, code: "invalid_json"},
		{name: "patch-404-unknown", request: request{method: "PATCH", path: "/admin/tenants/ghost", body: `{"status":"active"}`},
			status: 404, code: "not_found"},
		{name: "patch-400-bad-id", request: request{method: "PATCH", path: "/admin/tenants/Bad_Id", body: `{"status":"active"}`},
			status: 400, code: "invalid_request"},
		{name: "patch-200-limits", request: request{method: "PATCH", path: "/admin/tenants/acme", body: `{"partitions":4,"max_deliveries":3,"retention_days":30,"rate_limit":50}`},
			status: 200, check: wantLimits(4, 3, 30, 50)},
		{name: "patch-409-partitions-shrink", request: request{method: "PATCH", path: "/admin/tenants/acme", body: `{"partitions":2}`},
			status: 409, code: "partitions_shrink"},
		{name: "patch-400-partitions-over-64", request: request{method: "PATCH", path: "/admin/tenants/acme", body: `{"partitions":65}`},
			status: 400, code: "invalid_request"},
		{name: "patch-400-max-deliveries-0", request: request{method: "PATCH", path: "/admin/tenants/acme", body: `{"max_deliveries":0}`},
			status: 400, code: "invalid_request"},
		{name: "patch-400-retention-366", request: request{method: "PATCH", path: "/admin/tenants/acme", body: `{"retention_days":366}`},
			status: 400, code: "invalid_request"},
		{name: "patch-400-rate-limit-negative", request: request{method: "PATCH", path: "/admin/tenants/acme", body: `{"rate_limit":-1}`},
			status: 400, code: "invalid_request"},
		{name: "patch-400-rate-limit-over", request: request{method: "PATCH", path: "/admin/tenants/acme", body: `{"rate_limit":100001}`},
			status: 400, code: "invalid_request"},
		{name: "get-200-limits-kept", request: request{method: "GET", path: "/admin/tenants/acme"},
			status: 200, check: wantLimits(4, 3, 30, 50)},
		{name: "create-201-limits", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"limited","name":"L","partitions":2,"max_deliveries":5,"retention_days":1,"rate_limit":7}`},
			status: 201, check: wantLimits(2, 5, 1, 7)},
		{name: "create-400-rate-limit-float", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"limited3","name":"L","rate_limit":1.5}`},
			status: 400, code: "invalid_request"},
		{name: "create-400-retention-0", request: request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"limited2","name":"L","retention_days":0}`},
			status: 400, code: "invalid_request"},
		{name: "get-404-still-unknown-after-patch", request: request{method: "GET", path: "/admin/tenants/ghost"},
			status: 404, code: "not_found"},
		{name: "any-405-wrong-method", request: request{method: "PUT", path: "/admin/tenants/acme", body: `{}`},
			status: 405, code: "method_not_allowed"},
		{name: "any-404-no-route", request: request{method: "GET", path: "/admin/nothing"},
			status: 404, code: "not_found"},
		{name: "any-401-no-route-without-token", request: request{method: "GET", path: "/admin/nothing", token: str("")},
			status: 401, code: "unauthenticated"},
		{name: "any-401-wrong-method-without-token", request: request{method: "PUT", path: "/admin/tenants/acme", body: `{}`, token: str("")},
			status: 401, code: "unauthenticated"},
		{name: "any-401-trailing-slash-without-token", request: request{method: "GET", path: "/admin/tenants/", token: str("")},
			status: 401, code: "unauthenticated"},
		{name: "any-404-trailing-slash", request: request{method: "GET", path: "/admin/tenants/"},
			status: 404, code: "not_found"},
		{name: "any-401-outside-admin-without-token", request: request{method: "GET", path: "/events", token: str("")},
			status: 401, code: "unauthenticated"},
	})

}

type tenantPage struct {
	Tenants []struct {
		TenantID string `json:"tenant_id"`
	} `json:"tenants"`
	NextCursor *string `json:"next_cursor"`
}

func TestListTenantsRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})

	res := e.do(t, request{method: "GET", path: "/admin/tenants"})
	if res.status != http.StatusOK || strings.TrimSpace(string(res.body)) != `{"tenants":[]}` {
		t.Fatalf("empty list: %d %s, want 200 {\"tenants\":[]}", res.status, res.body)
	}

	want := map[string]bool{}
	for _, id := range []string{"t-a", "t-b", "t-c", "t-d", "t-e"} {
		e.mustCreateTenant(t, id)
		want[id] = true
	}

	t.Run("list-200-pages", func(t *testing.T) {
		seen := map[string]bool{}
		path := "/admin/tenants?limit=2"
		for page := 0; ; page++ {
			if page > 5 {
				t.Fatal("pagination does not end")
			}
			res := e.do(t, request{method: "GET", path: path})
			if res.status != http.StatusOK {
				t.Fatalf("page %d: %d %s", page, res.status, res.body)
			}
			var p tenantPage
			if err := json.Unmarshal(res.body, &p); err != nil {
				t.Fatal(err)
			}
			if len(p.Tenants) == 0 || len(p.Tenants) > 2 {
				t.Fatalf("page %d has %d tenants, want 1 or 2", page, len(p.Tenants))
			}
			for _, tn := range p.Tenants {
				if seen[tn.TenantID] || !want[tn.TenantID] {
					t.Fatalf("page %d: unexpected or repeated %s", page, tn.TenantID)
				}
				seen[tn.TenantID] = true
			}
			if p.NextCursor == nil {
				if strings.Contains(string(res.body), "next_cursor") {
					t.Fatalf("last page carries next_cursor: %s", res.body)
				}
				break
			}
			if *p.NextCursor == "" {
				t.Fatalf("page %d: empty next_cursor present", page)
			}
			path = "/admin/tenants?limit=2&cursor=" + *p.NextCursor
		}
		if len(seen) != len(want) {
			t.Fatalf("listed %d tenants, want %d", len(seen), len(want))
		}
	})

	badCursor := base64.RawURLEncoding.EncodeToString([]byte("Bad_Id"))
	e.runCalls(t, []call{
		{name: "list-200-default-limit", request: request{method: "GET", path: "/admin/tenants"},
			status: 200, check: func(t *testing.T, res response) {
				var p tenantPage
				if err := json.Unmarshal(res.body, &p); err != nil {
					t.Fatal(err)
				}
				if len(p.Tenants) != 5 || p.NextCursor != nil {
					t.Fatalf("default limit listed %d tenants, next %v", len(p.Tenants), p.NextCursor)
				}
				for _, raw := range object(t, res.body)["tenants"].([]any) {
					wantFields(t, raw.(map[string]any), tenantFields...)
				}
			}},
		{name: "list-200-limit-100", request: request{method: "GET", path: "/admin/tenants?limit=100"}, status: 200},
		{name: "list-400-limit-0", request: request{method: "GET", path: "/admin/tenants?limit=0"}, status: 400, code: "invalid_request"},
		{name: "list-400-limit-101", request: request{method: "GET", path: "/admin/tenants?limit=101"}, status: 400, code: "invalid_request"},
		{name: "list-400-limit-not-a-number", request: request{method: "GET", path: "/admin/tenants?limit=ten"}, status: 400, code: "invalid_request"},
		{name: "list-400-limit-empty", request: request{method: "GET", path: "/admin/tenants?limit="}, status: 400, code: "invalid_request"},
		{name: "list-400-cursor-not-base64", request: request{method: "GET", path: "/admin/tenants?cursor=%21%21%21"}, status: 400, code: "invalid_cursor"},
		{name: "list-400-cursor-not-a-tenant-id", request: request{method: "GET", path: "/admin/tenants?cursor=" + badCursor}, status: 400, code: "invalid_cursor"},
	})
}
