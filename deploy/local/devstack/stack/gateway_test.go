package stack

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// upstream answers with its own name and what it received, so a test sees where a request went.
func upstream(t *testing.T, name string) *url.URL {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"upstream": name, "path": r.URL.RequestURI(), "auth": r.Header.Get("Authorization"),
			"request_id": r.Header.Get("X-Request-Id"),
		})
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestGatewayRoutesLikeTheIngress(t *testing.T) {
	gw := httptest.NewServer(NewGateway(Upstreams{
		Ingest: upstream(t, Ingest), Inbox: upstream(t, Inbox), KeysAdmin: upstream(t, KeysAdmin),
	}, log.New(io.Discard, "", 0)))
	t.Cleanup(gw.Close)

	cases := []struct {
		name, method, path, want string // want: the upstream, or "" for the gateway's 404
	}{
		{"events-post", http.MethodPost, "/events", Ingest},
		{"events-get-one", http.MethodGet, "/events/evt_1", Ingest},
		{"events-batch", http.MethodPost, "/events/batch", Ingest},
		{"inbox", http.MethodGet, "/inbox?limit=5&cursor=abc", Inbox},
		{"inbox-pull", http.MethodPost, "/inbox/pull", Inbox},
		{"ack", http.MethodPost, "/ack", Inbox},
		{"nack", http.MethodPost, "/nack", Inbox},
		{"admin-tenants", http.MethodPost, "/admin/tenants", KeysAdmin},
		{"admin-keys", http.MethodGet, "/admin/tenants/acme/keys", KeysAdmin},
		{"root-404", http.MethodGet, "/", ""},
		{"admin-bare-404", http.MethodGet, "/admin", ""},
		{"eventsx-404", http.MethodGet, "/eventsx", ""},
		{"ack-subpath-404", http.MethodPost, "/ack/evt_1", ""},
		{"readyz-404", http.MethodGet, "/readyz", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, gw.URL+tc.path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer k")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if tc.want == "" {
				var env struct {
					Error struct {
						Code      string `json:"code"`
						Message   string `json:"message"`
						RequestID string `json:"request_id"`
					} `json:"error"`
				}
				if resp.StatusCode != http.StatusNotFound || json.Unmarshal(body, &env) != nil ||
					env.Error.Code != "not_found" || env.Error.Message == "" || env.Error.RequestID == "" {
					t.Fatalf("want the 404 envelope, got %d %s", resp.StatusCode, body)
				}
				if resp.Header.Get("X-Request-Id") != env.Error.RequestID {
					t.Errorf("X-Request-Id %q differs from the envelope's %q", resp.Header.Get("X-Request-Id"), env.Error.RequestID)
				}
				return
			}
			var got map[string]string
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil {
				t.Fatalf("got %d %s", resp.StatusCode, body)
			}
			if got["upstream"] != tc.want || got["path"] != tc.path || got["auth"] != "Bearer k" {
				t.Errorf("routed to %v, want %s with path and credentials unchanged", got, tc.want)
			}
			if !strings.HasPrefix(got["request_id"], "req_") {
				t.Errorf("upstream got request id %q, want one set by the gateway", got["request_id"])
			}
		})
	}
}

func TestGatewayAnswersBadGatewayWhenAServiceIsDown(t *testing.T) {
	down := upstream(t, Ingest)
	// A closed server's address: connections are refused.
	srv := httptest.NewServer(http.NotFoundHandler())
	dead, _ := url.Parse(srv.URL)
	srv.Close()
	var logged strings.Builder
	gw := httptest.NewServer(NewGateway(Upstreams{Ingest: dead, Inbox: down, KeysAdmin: down}, log.New(&logged, "", 0)))
	t.Cleanup(gw.Close)

	resp, err := http.Post(gw.URL+"/events", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), `"code":"bad_gateway"`) {
		t.Errorf("got %d %s, want the 502 envelope", resp.StatusCode, body)
	}
	if !strings.Contains(logged.String(), "ingest") {
		t.Errorf("the failure was not logged: %q", logged.String())
	}
}
