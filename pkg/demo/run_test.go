package demo

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/apikey"
)

// fakeAPI answers the calls Run makes, for keys it issued, keeping each tenant's events apart.
// leaseForeign makes every pull lease an event the tenant never posted.
type fakeAPI struct {
	leaseForeign bool

	mu      sync.Mutex
	keys    map[string]string // key -> tenant
	status  map[string]string // tenant -> status
	events  map[string]string // event id -> tenant
	settled map[string]bool
	n       int
}

func newFakeAPI(t *testing.T, leaseForeign bool) string {
	f := &fakeAPI{leaseForeign: leaseForeign, keys: map[string]string{}, status: map[string]string{}, events: map[string]string{}, settled: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if strings.HasPrefix(r.URL.Path, "/admin/") {
		f.admin(w, r, auth)
		return
	}
	tenant, ok := f.keys[auth]
	if !ok || f.status[tenant] != "active" {
		answer(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": "unauthorized", "message": "no", "request_id": "r"}})
		return
	}
	f.tenantCall(w, r, tenant)
}

func (f *fakeAPI) admin(w http.ResponseWriter, r *http.Request, auth string) {
	if auth != testAdminToken {
		answer(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": "unauthorized", "message": "no", "request_id": "r"}})
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/admin/tenants"), "/")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/admin/tenants":
		var req api.CreateTenantRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.status[req.TenantID] = "active"
		answer(w, http.StatusCreated, map[string]string{"tenant_id": req.TenantID, "status": "active"})
	case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "keys":
		k, _ := apikey.New(parts[1])
		f.keys[k.String()] = parts[1]
		answer(w, http.StatusCreated, map[string]string{"key_id": "k", "api_key": k.String()})
	case r.Method == http.MethodPatch && len(parts) == 2:
		var req api.PatchTenantRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.status[parts[1]] = *req.Status
		answer(w, http.StatusOK, map[string]string{"tenant_id": parts[1], "status": *req.Status})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeAPI) tenantCall(w http.ResponseWriter, r *http.Request, tenant string) {
	notFound := map[string]any{"error": map[string]string{"code": "not_found", "message": "no such event", "request_id": "r"}}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/events":
		f.n++
		id := "evt_" + strings.Repeat("0", f.n)
		f.events[id] = tenant
		answer(w, http.StatusAccepted, map[string]any{"event_id": id, "received_at": 1, "status": "accepted"})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/events/"):
		id := strings.TrimPrefix(r.URL.Path, "/events/")
		if f.events[id] != tenant {
			answer(w, http.StatusNotFound, notFound)
			return
		}
		status := "undelivered"
		if f.settled[id] {
			status = "delivered"
		}
		answer(w, http.StatusOK, map[string]any{"event_id": id, "status": status})
	case r.Method == http.MethodGet && r.URL.Path == "/inbox":
		answer(w, http.StatusOK, api.EventPage{Events: f.undelivered(tenant, false)})
	case r.Method == http.MethodPost && r.URL.Path == "/inbox/pull":
		answer(w, http.StatusOK, api.EventPage{Events: f.undelivered(tenant, true)})
	case r.Method == http.MethodPost && r.URL.Path == "/ack":
		var req api.AckRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.EventID != nil {
			answer(w, http.StatusNotFound, notFound) // the demo acks one id only across tenants
			return
		}
		ans := api.SettleAnswer{}
		for _, l := range req.Leases {
			f.settled[l.EventID] = f.events[l.EventID] == tenant && l.LeaseID == "lease-"+l.EventID
			ans.Results = append(ans.Results, api.SettleResult{EventID: l.EventID, Status: "delivered"})
			ans.SucceededCount++
		}
		answer(w, http.StatusOK, ans)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeAPI) undelivered(tenant string, lease bool) []api.Event {
	out := []api.Event{}
	for id, owner := range f.events {
		if owner != tenant || f.settled[id] {
			continue
		}
		e := api.Event{EventID: id, Status: "undelivered"}
		if lease {
			e.LeaseID, e.DeliveryCount = "lease-"+id, 1
			if f.leaseForeign {
				e.EventID = "evt_foreign"
			}
		}
		out = append(out, e)
	}
	return out
}

func answer(w http.ResponseWriter, status int, body any) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func demoConfig(url string) Config {
	return Config{AdminURL: url, IngestURL: url, InboxURL: url, AdminTokens: testAdminToken + ",\nspare:x", TenantPrefix: "t", Timeout: 30 * time.Second}
}

func TestRunConsumesAndSuspends(t *testing.T) {
	url := newFakeAPI(t, false)
	var out strings.Builder
	res, err := Run(context.Background(), &out, demoConfig(url))
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res.Processed) != 2 || res.Processed[0] != res.EventA || res.Processed[1] != res.EventB {
		t.Errorf("processed %v, want %s and %s", res.Processed, res.EventA, res.EventB)
	}
	for _, want := range []string{"→ POST /inbox/pull", "→ POST /ack", "Demo passed", "Suspended the demo's tenants " + res.TenantA + ", " + res.TenantB} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), testAdminToken) {
		t.Error("output shows the admin token")
	}
}

func TestRunFailsOnAForeignLeaseAndStillSuspends(t *testing.T) {
	url := newFakeAPI(t, true)
	var out strings.Builder
	_, err := Run(context.Background(), &out, demoConfig(url))
	if err == nil || !strings.Contains(err.Error(), "leased evt_foreign, which it never posted") {
		t.Fatalf("error %v, want the foreign lease named", err)
	}
	if !strings.Contains(out.String(), "Suspended the demo's tenants") {
		t.Errorf("the tenants were not suspended after the failure:\n%s", out.String())
	}
}

func TestConfigTakesTheFirstToken(t *testing.T) {
	for in, want := range map[string]string{"a:1,b:2": "a:1", " a:1\nb:2\n": "a:1", ",": ""} {
		if got := (Config{AdminTokens: in}).adminToken(); got != want {
			t.Errorf("adminToken(%q) = %q, want %q", in, got, want)
		}
	}
}
