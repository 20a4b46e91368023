package stack

import (
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
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

// deadURL is the address of a closed server: connections to it are refused.
func deadURL(t *testing.T) *url.URL {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u, _ := url.Parse(srv.URL)
	srv.Close()
	return u
}

// upstreamOf posts body to path through gw and returns the status and the upstream that answered.
func upstreamOf(t *testing.T, gw, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(gw+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&got)
	return resp.StatusCode, got["upstream"]
}

func TestGatewayTakesTurnsBetweenReplicas(t *testing.T) {
	admin := upstream(t, KeysAdmin)
	gw := httptest.NewServer(NewGateway(Upstreams{
		Ingest: upstream(t, "ingest-a"), Inbox: upstream(t, "inbox-a"), KeysAdmin: admin,
		Replicas: map[string][]*url.URL{Ingest: {upstream(t, "ingest-b")}, Inbox: {upstream(t, "inbox-b")}},
	}, log.New(io.Discard, "", 0)))
	t.Cleanup(gw.Close)
	for _, tc := range []struct{ name, path, a, b string }{
		{"ingest", "/events", "ingest-a", "ingest-b"},
		{"inbox", "/inbox/pull", "inbox-a", "inbox-b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]int{}
			for range 4 {
				status, up := upstreamOf(t, gw.URL, tc.path, "{}")
				if status != http.StatusOK {
					t.Fatalf("status %d", status)
				}
				seen[up]++
			}
			if seen[tc.a] != 2 || seen[tc.b] != 2 {
				t.Errorf("four calls reached %v, want two on each replica", seen)
			}
		})
	}
}

func TestGatewayPassesOverAReplicaThatRefusesConnections(t *testing.T) {
	live := upstream(t, "ingest-live")
	gw := httptest.NewServer(NewGateway(Upstreams{
		Ingest: deadURL(t), Inbox: live, KeysAdmin: live,
		Replicas: map[string][]*url.URL{Ingest: {live}},
	}, log.New(io.Discard, "", 0)))
	t.Cleanup(gw.Close)
	for i := range 4 {
		if status, up := upstreamOf(t, gw.URL, "/events", `{"event_type":"x"}`); status != http.StatusOK || up != "ingest-live" {
			t.Fatalf("call %d: %d from %q, want 200 from the live replica", i+1, status, up)
		}
	}
}

func TestGatewayAnswers503WhenAReplicaFailsMidCall(t *testing.T) {
	// Takes the call, then drops the connection without an answer, as a killed process does.
	crashing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	t.Cleanup(crashing.Close)
	u, _ := url.Parse(crashing.URL)
	var logged strings.Builder
	gw := httptest.NewServer(NewGateway(Upstreams{Ingest: u, Inbox: u, KeysAdmin: u}, log.New(&logged, "", 0)))
	t.Cleanup(gw.Close)

	resp, err := http.Post(gw.URL+"/events", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), `"code":"unavailable"`) {
		t.Errorf("got %d (Retry-After %q) %s, want the 503 envelope with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if !strings.Contains(logged.String(), "ingest") {
		t.Errorf("the failure was not logged: %q", logged.String())
	}
}

// A connection a client opened and never used does not fail the gateway's stop: net/http holds
// such a connection active for its first 5 s, and the stop waits that out.
func TestGatewayStopsDespiteAnUnusedConnection(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server has accepted the connection once it answers a request on another one.
	res, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if err := shutdownGateway(srv); err != nil {
		t.Fatalf("stop with an unused connection open: %v", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Fatalf("serve: %v", err)
	}
}
