package stack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trigger-api/trigger-api/pkg/client"
	"github.com/trigger-api/trigger-api/pkg/demo"
)

func TestListeningInReadsTheAPIServersAddress(t *testing.T) {
	cases := []struct{ name, log, want string }{
		{"api-after-metrics", `{"level":"info","msg":"config","http_addr":"127.0.0.1:0"}
{"level":"info","msg":"listening","server":"metrics","addr":"127.0.0.1:40001"}
{"level":"info","msg":"listening","addr":"127.0.0.1:40002"}
`, "127.0.0.1:40002"},
		{"only-metrics", `{"level":"info","msg":"listening","server":"metrics","addr":"127.0.0.1:40001"}
`, ""},
		{"line-still-being-written", `{"level":"info","msg":"listening","addr":"127.0.0.1:4`, ""},
		{"no-file", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "svc.log")
			if tc.log != "" {
				if err := os.WriteFile(path, []byte(tc.log), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if got := listeningIn(path); got != tc.want {
				t.Errorf("listeningIn = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOptionsRefuseLogLevelsWithoutInfoLines(t *testing.T) {
	for level, ok := range map[string]bool{"": true, "debug": true, "INFO": true, "warn": false, "error": false} {
		o := Options{Root: t.TempDir(), LogLevel: level}
		if err := o.complete(); (err == nil) != ok {
			t.Errorf("log level %q: error %v, want ok %v", level, err, ok)
		}
	}
}

// fakeInbox answers GET /events/{id} with status[id] and GET /inbox with inbox, for any key,
// and returns a client of it.
func fakeInbox(t *testing.T, status map[string]string, inbox []string) *client.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/inbox":
			events := []map[string]string{}
			for _, id := range inbox {
				events = append(events, map[string]string{"event_id": id})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"events": events})
		case strings.HasPrefix(r.URL.Path, "/events/"):
			_ = json.NewEncoder(w).Encode(map[string]string{"status": status[strings.TrimPrefix(r.URL.Path, "/events/")]})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, "key", client.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// processing is the worker's log line for each of ids.
func processing(ids ...string) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(`{"level":"info","msg":"processing event","tenant_id":"t","event_id":"` + id + `","delivery_count":1}` + "\n")
	}
	return b.String()
}

func TestWorkerSettledOnlyOnceEveryEventIsProcessedAndDelivered(t *testing.T) {
	delivered := map[string]string{"evt_a": "delivered", "evt_b": "delivered"}
	cases := []struct {
		name    string
		logs    string
		status  map[string]string
		inbox   []string
		settled bool
		state   string
	}{
		{"inboxes-empty-but-b-not-processed", processing("evt_a"), delivered, nil, false, "no processing line for evt_b"},
		{"b-processing-line-half-written", processing("evt_a") + processing("evt_b")[:40], delivered, nil, false, "no processing line for evt_b"},
		{"b-processed-not-yet-acknowledged", processing("evt_a", "evt_b"), map[string]string{"evt_a": "delivered", "evt_b": "leased"}, nil, false, "evt_b is leased"},
		{"inbox-lists-another-event", processing("evt_a", "evt_b"), delivered, []string{"evt_c"}, false, "tenant A's inbox still lists [evt_c]"},
		{"all-processed-and-delivered", processing("evt_b", "evt_a"), delivered, nil, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inbox := fakeInbox(t, tc.status, tc.inbox)
			tenants := []demo.Tenant{{Name: "A", Quiet: demo.Clients{Ingest: inbox, Inbox: inbox}, Event: "evt_a"}, {Name: "B", Quiet: demo.Clients{Ingest: inbox, Inbox: inbox}, Event: "evt_b"}}
			settled, state, err := workerSettled(context.Background(), tc.logs, tenants)
			if err != nil {
				t.Fatal(err)
			}
			if settled != tc.settled || !strings.Contains(state, tc.state) {
				t.Errorf("settled %v (%q), want %v (%q)", settled, state, tc.settled, tc.state)
			}
		})
	}
}

func TestProcessedInListsWantedEventsInLogOrder(t *testing.T) {
	logs := `{"msg":"running","consumers":2}
{"msg":"processing event","event_id":"evt_b"}
{"msg":"processing event","event_id":"evt_other"}
{"msg":"event acknowledged","event_id":"evt_c"}
{"msg":"processing event","event_id":"evt_a"}
`
	got := processedIn(logs, []string{"evt_a", "evt_b", "evt_c"})
	if !slices.Equal(got, []string{"evt_b", "evt_a"}) {
		t.Errorf("processedIn = %v, want [evt_b evt_a]", got)
	}
}
