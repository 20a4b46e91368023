package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
)

const (
	settled1 = `{"results":[{"event_id":"evt_1","status":"acknowledged"}],"succeeded_count":1,"failed_count":0}`
	settled2 = `{"results":[{"event_id":"evt_1","status":"redriven"},{"event_id":"evt_2","error":{"code":"not_found","message":"no"}}],"succeeded_count":1,"failed_count":1}`
	tenantJS = `{"tenant_id":"acme","name":"Acme","status":"active","partitions":2,"max_deliveries":5,"retention_days":7,"rate_limit":100,"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}`
	issuedJS = `{"key_id":"key_1","tenant_id":"acme","api_key":"tenant_acme_live_new","prefix":"tenant_acme_live_ne","label":"ci","scopes":["inbox:read"],"status":"active","created_at":"2025-01-01T00:00:00Z"}`
	pageJS   = `{"events":[{"event_id":"evt_1","event_type":"order.paid","payload":{"event_type":"order.paid","n":1},"timestamp":1,"received_at":2,"status":"undelivered","delivery_count":0}],"next_cursor":"c2"}`
	traceTP  = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
)

// route is one client call and the request it must make.
type route struct {
	name           string
	call           func(t *testing.T, ctx context.Context, c *client.Client, a *client.Admin)
	status         int
	answer         string
	method, path   string
	query          string // raw, keys sorted
	body           string // exactly the bytes sent; "" for none
	op             string
	admin          bool
	idempotencyKey string
}

// must takes a call's results and returns what it decoded, failing t if the call failed, so
// each case checks its answer in one line.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatalf("call failed: %v", err)
		}
		return v
	}
}

func tenantRoutes() []route {
	leases := []api.LeaseRef{{EventID: "evt_1", LeaseID: "lse_1", TraceContext: &api.TraceContext{Traceparent: traceTP}}}
	return []route{
		{name: "publish", status: http.StatusAccepted, answer: `{"event_id":"evt_1","received_at":5,"status":"accepted"}`,
			method: "POST", path: "/events", op: "publish",
			// Spacing, key order and <, >, & are the producer's and must arrive as they were.
			body: `{ "event_type":"order.paid",  "note":"<b>&</b>" }`,
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				acc, replayed, err := c.Publish(ctx, json.RawMessage(`{ "event_type":"order.paid",  "note":"<b>&</b>" }`), "")
				if err != nil || acc.EventID != "evt_1" || acc.ReceivedAt != 5 || replayed {
					t.Errorf("Publish = %+v, %v, %v", acc, replayed, err)
				}
			}},
		{name: "publish-with-idempotency-key", status: http.StatusAccepted, answer: `{"event_id":"evt_1","received_at":5,"status":"accepted"}`,
			method: "POST", path: "/events", op: "publish", body: `{"event_type":"a"}`, idempotencyKey: "order-42",
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				_, _, err := c.Publish(ctx, json.RawMessage(`{"event_type":"a"}`), "order-42")
				must(0, err)(t)
			}},
		{name: "publish-batch", status: http.StatusOK,
			answer: `{"results":[{"event_id":"evt_1","received_at":5,"status":"accepted"},{"error":{"code":"invalid_event","message":"no type"}}],"failed_count":1}`,
			method: "POST", path: "/events/batch", op: "publish_batch", body: `{"events":[{"event_type":"a"},{ "x" : "<&>" }]}`,
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				got := must(c.PublishBatch(ctx, []json.RawMessage{[]byte(`{"event_type":"a"}`), []byte(`{ "x" : "<&>" }`)}))(t)
				if got.FailedCount != 1 || len(got.Results) != 2 || got.Results[0].EventID != "evt_1" || got.Results[1].Error.Code != "invalid_event" {
					t.Errorf("PublishBatch = %+v", got)
				}
			}},
		{name: "get-event", status: http.StatusOK,
			answer: `{"event_id":"evt_1","event_type":"a","payload":{"event_type":"a", "k":[1,2]},"timestamp":1,"received_at":2,"status":"delivered","delivery_count":3,"delivered_at":4}`,
			method: "GET", path: "/events/evt_1", op: "get_event",
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				ev := must(c.GetEvent(ctx, "evt_1"))(t)
				if ev.DeliveryCount != 3 || ev.DeliveredAt != 4 || string(ev.Payload) != `{"event_type":"a", "k":[1,2]}` {
					t.Errorf("GetEvent = %+v (payload %s)", ev, ev.Payload)
				}
			}},
		{name: "get-event-escapes-the-id", status: http.StatusOK, answer: `{"event_id":"a/b?c"}`,
			method: "GET", path: "/events/a%2Fb%3Fc", op: "get_event",
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				must(c.GetEvent(ctx, "a/b?c"))(t)
			}},
		{name: "inbox", status: http.StatusOK, answer: pageJS,
			method: "GET", path: "/inbox", query: "cursor=c1&event_type=order.paid&limit=5", op: "inbox",
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				p := must(c.Inbox(ctx, client.InboxQuery{Limit: 5, Cursor: "c1", EventType: "order.paid"}))(t)
				if len(p.Events) != 1 || p.NextCursor != "c2" || p.Events[0].EventType != "order.paid" {
					t.Errorf("Inbox = %+v", p)
				}
			}},
		{name: "inbox-defaults", status: http.StatusOK, answer: `{"events":[]}`, method: "GET", path: "/inbox", op: "inbox",
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				must(c.Inbox(ctx, client.InboxQuery{}))(t)
			}},
		{name: "pull", status: http.StatusOK,
			answer: `{"events":[{"event_id":"evt_1","event_type":"a","payload":{"event_type":"a"},"timestamp":1,"received_at":2,"status":"undelivered","delivery_count":1,"lease_id":"lse_1","lease_expires_at":9,"trace_context":{"traceparent":"` + traceTP + `"}}]}`,
			method: "POST", path: "/inbox/pull", op: "pull", body: `{"max_events":5,"visibility_timeout_seconds":60,"wait_seconds":2}`,
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				p := must(c.Pull(ctx, api.PullRequest{MaxEvents: api.Int(5), VisibilityTimeoutSeconds: api.Int(60), WaitSeconds: api.Int(2)}))(t)
				if len(p.Events) != 1 || p.Events[0].LeaseID != "lse_1" || p.Events[0].LeaseExpiresAt != 9 || p.Events[0].Traceparent() != traceTP {
					t.Errorf("Pull = %+v", p)
				}
			}},
		{name: "ack-one-under-its-lease", status: http.StatusOK, answer: `{"status":"acknowledged"}`,
			method: "POST", path: "/ack", op: "ack", body: `{"event_id":"evt_1","lease_id":"lse_1"}`,
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				if got := must(c.Ack(ctx, "evt_1", "lse_1"))(t); got.Status != api.StatusAcknowledged {
					t.Errorf("Ack = %+v", got)
				}
			}},
		{name: "ack-one-without-lease", status: http.StatusOK, answer: `{"status":"acknowledged"}`,
			method: "POST", path: "/ack", op: "ack", body: `{"event_id":"evt_1"}`,
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				must(c.Ack(ctx, "evt_1", ""))(t)
			}},
		{name: "ack-leases", status: http.StatusOK, answer: settled1,
			method: "POST", path: "/ack", op: "ack",
			body: `{"leases":[{"event_id":"evt_1","lease_id":"lse_1","trace_context":{"traceparent":"` + traceTP + `"}}]}`,
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				if got := must(c.AckLeases(ctx, leases))(t); got.SucceededCount != 1 || got.Results[0].Status != api.StatusAcknowledged {
					t.Errorf("AckLeases = %+v", got)
				}
			}},
		{name: "ack-ids", status: http.StatusOK, answer: settled1,
			method: "POST", path: "/ack", op: "ack", body: `{"event_ids":["evt_1"]}`,
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				must(c.AckIDs(ctx, []string{"evt_1"}))(t)
			}},
		{name: "extend", status: http.StatusOK,
			answer: `{"results":[{"event_id":"evt_1","status":"extended","lease_id":"lse_1","lease_expires_at":77}],"succeeded_count":1,"failed_count":0}`,
			method: "POST", path: "/inbox/extend", op: "extend",
			body: `{"leases":[{"event_id":"evt_1","lease_id":"lse_1","trace_context":{"traceparent":"` + traceTP + `"}}],"visibility_timeout_seconds":120}`,
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				got := must(c.Extend(ctx, api.ExtendRequest{Leases: leases, VisibilityTimeoutSeconds: api.Int(120)}))(t)
				if got.Results[0].LeaseExpiresAt != 77 {
					t.Errorf("Extend = %+v", got)
				}
			}},
		{name: "nack-leases", status: http.StatusOK,
			answer: `{"results":[{"event_id":"evt_1","status":"nacked","visible_at":88}],"succeeded_count":1,"failed_count":0}`,
			method: "POST", path: "/nack", op: "nack",
			body: `{"leases":[{"event_id":"evt_1","lease_id":"lse_1","trace_context":{"traceparent":"` + traceTP + `"}}],"delay_seconds":0}`,
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				if got := must(c.Nack(ctx, api.NackRequest{Leases: leases, DelaySeconds: api.Int(0)}))(t); got.Results[0].VisibleAt != 88 {
					t.Errorf("Nack = %+v", got)
				}
			}},
		{name: "nack-ids", status: http.StatusOK, answer: `{"results":[{"event_id":"evt_1","status":"nacked","visible_at":88}],"succeeded_count":1,"failed_count":0}`,
			method: "POST", path: "/nack", op: "nack", body: `{"event_ids":["evt_1"],"delay_seconds":30}`,
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				must(c.Nack(ctx, api.NackRequest{EventIDs: []string{"evt_1"}, DelaySeconds: api.Int(30)}))(t)
			}},
		{name: "dead", status: http.StatusOK, answer: pageJS,
			method: "GET", path: "/inbox/dead", query: "cursor=c1&limit=10", op: "dead",
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				if p := must(c.Dead(ctx, 10, "c1"))(t); p.NextCursor != "c2" {
					t.Errorf("Dead = %+v", p)
				}
			}},
		{name: "redrive", status: http.StatusOK, answer: settled2,
			method: "POST", path: "/inbox/redrive", op: "redrive", body: `{"event_ids":["evt_1","evt_2"]}`,
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				got := must(c.Redrive(ctx, []string{"evt_1", "evt_2"}))(t)
				if got.FailedCount != 1 || got.Results[1].Error.Code != api.CodeNotFound {
					t.Errorf("Redrive = %+v", got)
				}
			}},
		{name: "redrive-all", status: http.StatusOK, answer: `{"redriven_count":3,"more":true}`,
			method: "POST", path: "/inbox/redrive", op: "redrive_all", body: `{"all":true}`,
			call: func(t *testing.T, ctx context.Context, c *client.Client, _ *client.Admin) {
				if got := must(c.RedriveAll(ctx))(t); got.RedrivenCount != 3 || !got.More {
					t.Errorf("RedriveAll = %+v", got)
				}
			}},
	}
}

func adminRoutes() []route {
	return []route{
		{name: "create-tenant", status: http.StatusCreated, answer: tenantJS,
			method: "POST", path: "/admin/tenants", op: "create_tenant", body: `{"tenant_id":"acme","name":"Acme","partitions":2}`,
			call: func(t *testing.T, ctx context.Context, _ *client.Client, a *client.Admin) {
				got := must(a.CreateTenant(ctx, api.CreateTenantRequest{TenantID: "acme", Name: "Acme", Partitions: api.Int(2)}))(t)
				if got.TenantID != "acme" || got.Partitions != 2 || got.RateLimit != 100 {
					t.Errorf("CreateTenant = %+v", got)
				}
			}},
		{name: "get-tenant", status: http.StatusOK, answer: tenantJS, method: "GET", path: "/admin/tenants/acme", op: "get_tenant",
			call: func(t *testing.T, ctx context.Context, _ *client.Client, a *client.Admin) {
				must(a.GetTenant(ctx, "acme"))(t)
			}},
		{name: "list-tenants", status: http.StatusOK, answer: `{"tenants":[` + tenantJS + `],"next_cursor":"n"}`,
			method: "GET", path: "/admin/tenants", query: "cursor=c&limit=20", op: "list_tenants",
			call: func(t *testing.T, ctx context.Context, _ *client.Client, a *client.Admin) {
				if got := must(a.ListTenants(ctx, 20, "c"))(t); len(got.Tenants) != 1 || got.NextCursor != "n" {
					t.Errorf("ListTenants = %+v", got)
				}
			}},
		{name: "patch-tenant", status: http.StatusOK, answer: tenantJS,
			method: "PATCH", path: "/admin/tenants/acme", op: "patch_tenant", body: `{"status":"suspended","rate_limit":50}`,
			call: func(t *testing.T, ctx context.Context, _ *client.Client, a *client.Admin) {
				suspended := "suspended"
				must(a.PatchTenant(ctx, "acme", api.PatchTenantRequest{Status: &suspended, RateLimit: api.Int(50)}))(t)
			}},
		{name: "issue-key", status: http.StatusCreated, answer: issuedJS,
			method: "POST", path: "/admin/tenants/acme/keys", op: "issue_key", body: `{"scopes":["inbox:read"],"label":"ci"}`,
			call: func(t *testing.T, ctx context.Context, _ *client.Client, a *client.Admin) {
				if got := must(a.IssueKey(ctx, "acme", api.IssueKeyRequest{Scopes: []string{"inbox:read"}, Label: "ci"}))(t); got.APIKey != "tenant_acme_live_new" {
					t.Errorf("IssueKey = %+v", got)
				}
			}},
		{name: "list-keys", status: http.StatusOK,
			answer: `{"keys":[{"key_id":"key_1","tenant_id":"acme","prefix":"p","label":"","scopes":["inbox:read"],"status":"active","created_at":"x"}]}`,
			method: "GET", path: "/admin/tenants/acme/keys", op: "list_keys",
			call: func(t *testing.T, ctx context.Context, _ *client.Client, a *client.Admin) {
				if got := must(a.ListKeys(ctx, "acme"))(t); len(got.Keys) != 1 || got.Keys[0].KeyID != "key_1" {
					t.Errorf("ListKeys = %+v", got)
				}
			}},
		{name: "revoke-key", status: http.StatusOK,
			answer: `{"key_id":"key_1","tenant_id":"acme","prefix":"p","label":"","scopes":[],"status":"revoked","created_at":"x","revoked_at":"y"}`,
			method: "DELETE", path: "/admin/tenants/acme/keys/key_1", op: "revoke_key",
			call: func(t *testing.T, ctx context.Context, _ *client.Client, a *client.Admin) {
				if got := must(a.RevokeKey(ctx, "acme", "key_1"))(t); got.Status != "revoked" || got.RevokedAt != "y" {
					t.Errorf("RevokeKey = %+v", got)
				}
			}},
		{name: "roll-key", status: http.StatusCreated, answer: issuedJS,
			method: "POST", path: "/admin/tenants/acme/keys/key_1/roll", op: "roll_key", body: `{"expires_in_seconds":3600}`,
			call: func(t *testing.T, ctx context.Context, _ *client.Client, a *client.Admin) {
				secs := int64(3600)
				must(a.RollKey(ctx, "acme", "key_1", api.RollKeyRequest{ExpiresInSeconds: &secs}))(t)
			}},
	}
}

// TestEveryRouteSendsItsMethodPathAndBody checks each call against the route table of the API:
// method, path, query, the exact body, the credential and headers, the operation label, and
// that the documented answer decodes.
func TestEveryRouteSendsItsMethodPathAndBody(t *testing.T) {
	routes := tenantRoutes()
	for _, r := range adminRoutes() {
		r.admin = true
		routes = append(routes, r)
	}
	for _, r := range routes {
		t.Run(r.name, func(t *testing.T) {
			f := newFake(t, always(r.status, r.answer))
			r.call(t, context.Background(), f.client(t), f.admin(t))
			calls := f.seen()
			if len(calls) != 1 {
				t.Fatalf("%d requests, want 1", len(calls))
			}
			got := calls[0]
			if got.method != r.method || got.path != r.path || got.query != r.query || got.op != r.op {
				t.Errorf("request %s %s?%s (op %q), want %s %s?%s (op %q)", got.method, got.path, got.query, got.op, r.method, r.path, r.query, r.op)
			}
			if string(got.body) != r.body {
				t.Errorf("body\n got %s\nwant %s", got.body, r.body)
			}
			wantAuth := "Bearer " + testKey
			if r.admin {
				wantAuth = "Bearer " + testToken
			}
			wantType := ""
			if r.body != "" {
				wantType = "application/json"
			}
			h := got.header
			if h.Get("Authorization") != wantAuth || h.Get("Content-Type") != wantType || h.Get("Accept") != "application/json" ||
				h.Get("User-Agent") != client.DefaultUserAgent || h.Get("Idempotency-Key") != r.idempotencyKey {
				t.Errorf("headers %v", h)
			}
		})
	}
}

func TestUserAgentAndPathPrefixAreKept(t *testing.T) {
	f := newFake(t, always(http.StatusOK, `{"events":[]}`))
	c, err := client.New(f.srv.URL+"/trigger/", testKey, f.options(client.WithUserAgent("my-app/1.0"))...)
	if err != nil {
		t.Fatal(err)
	}
	must(c.Dead(context.Background(), 0, ""))(t)
	got := f.seen()[0]
	if got.path != "/trigger/inbox/dead" || got.header.Get("User-Agent") != "my-app/1.0" {
		t.Errorf("request to %s with User-Agent %q", got.path, got.header.Get("User-Agent"))
	}
}
