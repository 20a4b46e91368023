package contract_test

import (
	"context"

	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
	"github.com/trigger-api/trigger-api/deploy/tests/contract"
	"github.com/trigger-api/trigger-api/pkg/openapi"
	"github.com/trigger-api/trigger-api/services/inbox/inboxapi"
	"github.com/trigger-api/trigger-api/services/ingest/ingestapi"
	"github.com/trigger-api/trigger-api/services/keys-admin/adminapi"
)

// routers builds each service's real route table. Registering routes touches none of the
// dependencies, so none are given.
func routers() map[string]*gin.Engine {
	log := zap.NewNop()
	ready := func(context.Context) error { return nil }
	return map[string]*gin.Engine{
		openapi.Ingest:    ingestapi.NewRouter(ingestapi.Deps{Log: log, Ready: ready}),
		openapi.Inbox:     inboxapi.NewRouter(inboxapi.Deps{Log: log, Ready: ready}),
		openapi.KeysAdmin: adminapi.NewRouter(log, nil, &adminapi.TokenSet{}, ready, nil),
	}
}

// TestRoutesMatchDocument holds the document and the Gin route tables in step, both ways: every
// route a service registers is documented as that service's, with the same method and path,
// and every operation the document gives a service is registered by it.
func TestRoutesMatchDocument(t *testing.T) {
	for service, r := range routers() {
		t.Run(service, func(t *testing.T) {
			var served []string
			for _, rt := range r.Routes() {
				served = append(served, rt.Method+" "+openapi.DocumentPath(rt.Path))
			}
			ops, err := openapi.Operations(service)
			if err != nil {
				t.Fatal(err)
			}
			var documented []string
			for _, o := range ops {
				documented = append(documented, o.Method+" "+o.Path)
			}
			for _, s := range served {
				if !slices.Contains(documented, s) {
					t.Errorf("%s serves %s, which the document does not give it", service, s)
				}
			}
			for _, d := range documented {
				if !slices.Contains(served, d) {
					t.Errorf("the document gives %s to %s, which does not serve it", d, service)
				}
			}
		})
	}
}

// TestServedDocumentMatchesRoutes reads each service's /openapi.json through its real router
// and checks it is that service's part, valid, and lists exactly the routes it serves.
func TestServedDocumentMatchesRoutes(t *testing.T) {
	for service, r := range routers() {
		t.Run(service, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("GET /openapi.json: %d %s", rec.Code, rec.Body)
			}
			want, err := openapi.ForService(service)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Body.String() != string(want) {
				t.Fatal("GET /openapi.json is not the service's part of the document")
			}
			v, err := contract.Load(context.Background(), rec.Body.Bytes())
			if err != nil {
				t.Fatalf("the served document: %v", err)
			}
			var documented []string
			for _, k := range v.Documented() {
				op := k[:strings.LastIndexByte(k, ' ')]
				if !strings.HasPrefix(op, "(") && !slices.Contains(documented, op) {
					documented = append(documented, op)
				}
			}
			var served []string
			for _, rt := range r.Routes() {
				served = append(served, rt.Method+" "+openapi.DocumentPath(rt.Path))
			}
			slices.Sort(documented)
			slices.Sort(served)
			if !slices.Equal(documented, served) {
				t.Fatalf("%s's /openapi.json documents %v, the router serves %v", service, documented, served)
			}
		})
	}
}

// TestGatewayRoutesEachOperationToItsService checks the dev gateway, which routes like the
// production ingress, sends every documented API path to the service the document names.
func TestGatewayRoutesEachOperationToItsService(t *testing.T) {
	upstream := func(name string) *url.URL {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Upstream", name)
		}))
		t.Cleanup(srv.Close)
		u, err := url.Parse(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	gw := httptest.NewServer(stack.NewGateway(stack.Upstreams{
		Ingest:    upstream(openapi.Ingest),
		Inbox:     upstream(openapi.Inbox),
		KeysAdmin: upstream(openapi.KeysAdmin),
	}, log.New(io.Discard, "", 0)))
	defer gw.Close()

	ops, err := openapi.Operations("")
	if err != nil {
		t.Fatal(err)
	}
	examples := strings.NewReplacer(
		"{event_id}", "evt_0f8fad5bd9cb469fa16570867728950e",
		"{tenant_id}", "acme",
		"{key_id}", "key_9b2f4c1d8e7a6b5c4d3e2f10",
	)
	for _, o := range ops {
		if o.Service == openapi.Every {
			continue // each service's own: probes and documents are not routed by path
		}
		req, err := http.NewRequest(o.Method, gw.URL+examples.Replace(o.Path), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := gw.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if got := resp.Header.Get("X-Upstream"); got != o.Service {
			t.Errorf("the gateway sends %s %s to %q (status %d), the document to %q", o.Method, o.Path, got, resp.StatusCode, o.Service)
		}
	}
}

// sampleRequests is one request that conforms to the document for every operation of the
// API: the fault test sends them to routers whose store fails. The drift check below keeps it
// complete.
func sampleRequests(tenantKey, adminToken string) map[string]call {
	const (
		id    = "evt_0f8fad5bd9cb469fa16570867728950e"
		lease = "lse_7c9e6679742540de944be07fc1f90ae7"
		key   = "key_9b2f4c1d8e7a6b5c4d3e2f10"
	)
	leases := `[{"event_id":"` + id + `","lease_id":"` + lease + `"}]`
	return map[string]call{
		"ingestEvent":     {method: "POST", path: "/events", key: tenantKey, body: `{"event_type":"customer.created","customer_id":"123","email":"alice@example.com"}`},
		"ingestBatch":     {method: "POST", path: "/events/batch", key: tenantKey, body: `{"events":[{"event_type":"invoice.paid","invoice_id":"inv_8912","amount":3200}]}`},
		"getEvent":        {method: "GET", path: "/events/" + id, key: tenantKey},
		"listInbox":       {method: "GET", path: "/inbox?limit=10", key: tenantKey},
		"pullEvents":      {method: "POST", path: "/inbox/pull", key: tenantKey, body: `{"max_events":10}`},
		"extendLeases":    {method: "POST", path: "/inbox/extend", key: tenantKey, body: `{"leases":` + leases + `,"visibility_timeout_seconds":30}`},
		"listDeadLetters": {method: "GET", path: "/inbox/dead", key: tenantKey},
		"redriveEvents":   {method: "POST", path: "/inbox/redrive", key: tenantKey, body: `{"all":true}`},
		"ackEvents":       {method: "POST", path: "/ack", key: tenantKey, body: `{"event_id":"` + id + `"}`},
		"nackEvents":      {method: "POST", path: "/nack", key: tenantKey, body: `{"leases":` + leases + `}`},
		"createTenant":    {method: "POST", path: "/admin/tenants", key: adminToken, body: `{"tenant_id":"acme","name":"Acme"}`},
		"listTenants":     {method: "GET", path: "/admin/tenants", key: adminToken},
		"getTenant":       {method: "GET", path: "/admin/tenants/acme", key: adminToken},
		"updateTenant":    {method: "PATCH", path: "/admin/tenants/acme", key: adminToken, body: `{"status":"suspended"}`},
		"issueKey":        {method: "POST", path: "/admin/tenants/acme/keys", key: adminToken, body: `{}`},
		"listKeys":        {method: "GET", path: "/admin/tenants/acme/keys", key: adminToken},
		"revokeKey":       {method: "DELETE", path: "/admin/tenants/acme/keys/" + key, key: adminToken},
		"rollKey":         {method: "POST", path: "/admin/tenants/acme/keys/" + key + "/roll", key: adminToken, body: `{"expires_in_seconds":60}`},
		"livez":           {method: "GET", path: "/livez"},
		"readyz":          {method: "GET", path: "/readyz"},
		"getOpenAPI":      {method: "GET", path: "/openapi.json"},
	}
}

func TestSampleRequestsCoverEveryOperation(t *testing.T) {
	ops, err := openapi.Operations("")
	if err != nil {
		t.Fatal(err)
	}
	samples := sampleRequests("k", "a")
	for _, o := range ops {
		s, ok := samples[o.ID]
		if !ok {
			t.Errorf("no sample request for %s (%s %s)", o.ID, o.Method, o.Path)
			continue
		}
		if p, _, _ := strings.Cut(s.path, "?"); s.method != o.Method || !matches(o.Path, p) {
			t.Errorf("the sample for %s is %s %s, the operation %s %s", o.ID, s.method, s.path, o.Method, o.Path)
		}
		delete(samples, o.ID)
	}
	for id := range samples {
		t.Errorf("sample request for %s, which the document does not have", id)
	}
}

// matches reports whether a concrete path fits a documented path template.
func matches(template, path string) bool {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if !strings.HasPrefix(ts[i], "{") && ts[i] != ps[i] {
			return false
		}
	}
	return true
}
