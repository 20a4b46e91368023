package demo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/client"
)

const testAdminToken = "0123456789abcdef0123456789abcdef"

// printingClient is a tenant client whose calls Printer writes to out.
func printingClient(t *testing.T, base, key string, out io.Writer) *client.Client {
	t.Helper()
	c, err := client.New(base, key, client.WithRetries(0),
		client.WithHTTPClient(&http.Client{Transport: &Printer{Next: http.DefaultTransport, Out: out}}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPrinterShowsEachCallAndHandsBothBodiesOn(t *testing.T) {
	var received []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, `{"events":[{"event_id":"evt_1","status":"undelivered"}]}`)
			return
		}
		received, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"event_id":"evt_1","received_at":7,"status":"accepted"}`)
	}))
	t.Cleanup(srv.Close)
	key, err := apikey.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	c := printingClient(t, srv.URL, key.String(), &out)

	// Spaced as a producer might send it: the API stores the bytes it is sent, so they must
	// pass the printer unchanged.
	event := `{"event_type": "customer.created", "customer_id": "123"}`
	acc, _, err := c.Publish(context.Background(), json.RawMessage(event), "")
	if err != nil {
		t.Fatal(err)
	}
	if string(received) != event {
		t.Errorf("the API received %q, want %q", received, event)
	}
	if acc.EventID != "evt_1" || acc.ReceivedAt != 7 {
		t.Errorf("the client decoded %+v from the printed answer", acc)
	}
	page, err := c.Inbox(context.Background(), client.InboxQuery{Limit: 100})
	if err != nil || len(page.Events) != 1 || page.Events[0].EventID != "evt_1" {
		t.Fatalf("inbox %+v, %v", page, err)
	}

	want := "→ POST /events\n" +
		"  Authorization: Bearer " + key.Prefix() + "…\n" +
		"  " + event + "\n" +
		"← 202 Accepted\n" +
		"  {\n    \"event_id\": \"evt_1\",\n    \"received_at\": 7,\n    \"status\": \"accepted\"\n  }\n" +
		"→ GET /inbox?limit=100\n" +
		"  Authorization: Bearer " + key.Prefix() + "…\n" +
		"← 200 OK\n" +
		"  {\n    \"events\": [\n      {\n        \"event_id\": \"evt_1\",\n        \"status\": \"undelivered\"\n      }\n    ]\n  }\n"
	if out.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", out.String(), want)
	}
	if strings.Contains(out.String(), key.String()) {
		t.Error("the printer showed the whole API key")
	}
}

// fakeAdmin is the admin API's tenant creation and key issue for tenant acme: create answers
// createStatus and issue answers issuedKey.
type fakeAdmin struct {
	createStatus int
	issuedKey    string

	mu    sync.Mutex
	calls []string
}

func (f *fakeAdmin) serve(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls = append(f.calls, r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+testAdminToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case r.URL.Path == "/admin/tenants" && f.createStatus == http.StatusConflict:
			w.WriteHeader(f.createStatus)
			_, _ = io.WriteString(w, `{"error":{"code":"tenant_exists","message":"a tenant with this id already exists","request_id":"r1"}}`)
		case r.URL.Path == "/admin/tenants" && f.createStatus != http.StatusCreated:
			w.WriteHeader(f.createStatus)
			_, _ = io.WriteString(w, `{"error":{"code":"internal","message":"internal error","request_id":"r1"}}`)
		case r.URL.Path == "/admin/tenants":
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"tenant_id":"acme","name":"Acme","status":"active"}`)
		case r.URL.Path == "/admin/tenants/acme/keys":
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]string{"key_id": "k1", "tenant_id": "acme", "api_key": f.issuedKey})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCreateTenantWithKey(t *testing.T) {
	key, err := apikey.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	issue := []string{"POST /admin/tenants", "POST /admin/tenants/acme/keys"}
	cases := []struct {
		name         string
		createStatus int
		issuedKey    string
		wantErr      string // "" for key
		wantCalls    []string
	}{
		{"new-tenant", http.StatusCreated, key.String(), "", issue},
		{"existing-tenant-gets-a-key", http.StatusConflict, key.String(), "", issue},
		{"create-fails", http.StatusInternalServerError, key.String(), "create tenant acme: create_tenant: HTTP 500", issue[:1]},
		{"malformed-key", http.StatusCreated, "not-a-key", "no well-formed api_key", issue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAdmin{createStatus: tc.createStatus, issuedKey: tc.issuedKey}
			var out strings.Builder
			admin, err := client.NewAdmin(f.serve(t), testAdminToken, client.WithRetries(0),
				client.WithHTTPClient(&http.Client{Transport: &Printer{Next: http.DefaultTransport, Out: &out}}))
			if err != nil {
				t.Fatal(err)
			}
			got, err := CreateTenantWithKey(context.Background(), admin, "acme", "Acme")
			switch {
			case tc.wantErr == "" && (err != nil || got != key.String()):
				t.Errorf("key %q, %v; want the issued key", got, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("key %q, error %v; want an error with %q", got, err, tc.wantErr)
			}
			if strings.Join(f.calls, ", ") != strings.Join(tc.wantCalls, ", ") {
				t.Errorf("calls %v, want %v", f.calls, tc.wantCalls)
			}
			if !strings.Contains(out.String(), "Authorization: Bearer <admin token>\n") || strings.Contains(out.String(), testAdminToken) {
				t.Errorf("the admin token is not redacted in:\n%s", out.String())
			}
			if tc.wantErr == "" && (strings.Contains(out.String(), key.String()) || !strings.Contains(out.String(), `"api_key": "`+key.Prefix()+`…"`)) {
				t.Errorf("the issued key is not redacted to its prefix in:\n%s", out.String())
			}
		})
	}
}

func TestIsolatedWantsNotFoundForBothCalls(t *testing.T) {
	cases := []struct {
		name           string
		getStatus, ack int
		wantErr        string // "" for isolated
	}{
		{"both-not-found", http.StatusNotFound, http.StatusNotFound, ""},
		{"read-succeeds", http.StatusOK, http.StatusNotFound, "GET /events/evt_a with tenant B's key on tenant A's event: want 404, got a success"},
		{"read-forbidden", http.StatusForbidden, http.StatusNotFound, "want 404, got 403"},
		{"ack-succeeds", http.StatusNotFound, http.StatusOK, "POST /ack of evt_a with tenant B's key on tenant A's event: want 404, got a success"},
		{"ack-unavailable", http.StatusNotFound, http.StatusServiceUnavailable, "want 404, got 503"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls = append(calls, r.Method+" "+r.URL.Path)
				status := tc.getStatus
				if r.URL.Path == "/ack" {
					status = tc.ack
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				if status == http.StatusOK {
					_, _ = io.WriteString(w, `{"event_id":"evt_a","status":"acknowledged"}`)
					return
				}
				_, _ = io.WriteString(w, `{"error":{"code":"not_found","message":"no such event","request_id":"r1"}}`)
			}))
			t.Cleanup(srv.Close)
			c := printingClient(t, srv.URL, "key-b", io.Discard)
			b := Tenant{Name: "B", Printed: Clients{Ingest: c, Inbox: c}}
			err := Isolated(context.Background(), b, "evt_a")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if strings.Join(calls, ", ") != "GET /events/evt_a, POST /ack" {
					t.Errorf("calls %v, want a read and an ack", calls)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestWantNotFoundPassesOnATransportFailure(t *testing.T) {
	cause := errors.New("connection refused")
	if err := wantNotFound(cause, "GET /events/evt_a"); !errors.Is(err, cause) {
		t.Errorf("error %v, want the transport failure itself", err)
	}
}
