package inboxapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddbfault"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/events"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/services/inbox/inboxapi"
)

// faultEnv is the inbox over a fault proxy, with a tenant, its key and direct access to the
// tables for looking at what the service did.
type faultEnv struct {
	tables ddb.Tables
	proxy  *ddbfault.Proxy
	events events.Store
	key    string
	// attempt bounds each DynamoDB attempt of the service.
	attempt time.Duration
}

func newFaultEnv(t *testing.T) faultEnv {
	t.Helper()
	p, err := ddbfault.Start(shared.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	tables := shared.Tables(t)
	tenants := tenantdb.New(shared.Client, tables)
	apitest.SeedTenant(t, tenants, "acme", 1)
	key := apitest.SeedKey(t, tenants, "acme", apitest.KeyOptions{})
	return faultEnv{tables: tables, proxy: p, events: eventsdb.New(shared.Client, tables), key: key, attempt: 300 * time.Millisecond}
}

// settings reach the tables through the proxy, with attempts short enough that a stall costs
// a test a second, not a minute.
func (f faultEnv) settings() ddb.Settings {
	return ddb.Settings{Region: ddblocal.Region, Endpoint: f.proxy.URL(), AttemptTimeout: f.attempt,
		TablePrefix: strings.TrimSuffix(f.tables.Events, ddb.EventsTable)}
}

// server serves the inbox's handler over real HTTP; onPull sees each pull's request.
func (f faultEnv) server(t *testing.T, onPull func(*http.Request)) *httptest.Server {
	t.Helper()
	client, err := ddblocal.ClientWith(context.Background(), f.settings())
	if err != nil {
		t.Fatal(err)
	}
	h := inboxapi.NewHandler(inboxapi.Deps{
		Log:   zap.NewNop(),
		Inbox: queue.NewInbox(eventsdb.New(client, f.tables), queue.Options{}),
		Auth:  tenant.NewAuthenticator(tenantdb.New(shared.Client, f.tables), tenant.AuthConfig{}, nil),
		Ready: func(context.Context) error { return nil },
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/inbox/pull" && onPull != nil {
			onPull(r)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (f faultEnv) seed(t *testing.T) events.Event {
	t.Helper()
	e := events.New("acme", "a", []byte(`{"event_type":"a"}`), 1, time.Now().Add(-time.Second))
	if err := f.events.Put(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	return e
}

func rawCall(ctx context.Context, base, key, method, path, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// Every route answers a stalled DynamoDB with 503 unavailable and Retry-After, in bounded time.
func TestStalledDynamoDBAnswers503(t *testing.T) {
	t.Parallel()
	f := newFaultEnv(t)
	e := f.seed(t)
	srv := f.server(t, nil)
	f.proxy.Add(ddbfault.Rule{Kind: ddbfault.Stall})
	defer f.proxy.Release()
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/inbox", ""},
		{"GET", "/inbox/dead", ""},
		{"POST", "/inbox/pull", `{"max_events":1}`},
		{"POST", "/ack", `{"event_ids":["` + e.ID + `"]}`},
	} {
		resp, body, err := rawCall(context.Background(), srv.URL, f.key, r.method, r.path, r.body)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		if r.path == "/ack" {
			// A batch settle answers 200 with the failure per item.
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"unavailable"`)) {
				t.Errorf("%s %s: %d %s, want 200 with an unavailable item", r.method, r.path, resp.StatusCode, body)
			}
			continue
		}
		var env struct{ Error struct{ Code string } }
		_ = json.Unmarshal(body, &env)
		if resp.StatusCode != http.StatusServiceUnavailable || env.Error.Code != "unavailable" || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: %d %s (Retry-After %q), want 503 unavailable with Retry-After",
				r.method, r.path, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}
}

// A pull whose consumer left before the answer was written gives its leases back: the event is
// visible again at once with its delivery count as it was.
func TestPullGivesBackLeasesNobodyReceived(t *testing.T) {
	t.Parallel()
	f := newFaultEnv(t)
	// The stalled lease write must not be abandoned and retried: it is to land late.
	f.attempt = time.Minute
	e := f.seed(t)
	gone := make(chan struct{})
	srv := f.server(t, func(r *http.Request) { context.AfterFunc(r.Context(), func() { close(gone) }) })
	// The lease write waits until the consumer has gone.
	f.proxy.Add(ddbfault.Rule{Op: "UpdateItem", Kind: ddbfault.Stall, Times: 1})
	// Marks the write that gives the lease back, to tell it from an event never leased.
	f.proxy.Add(ddbfault.Rule{Op: "UpdateItem", Kind: ddbfault.Delay, Delay: time.Millisecond,
		Match: func(b []byte) bool { return bytes.Contains(b, []byte("released_lease")) }})
	ctx, cancel := context.WithCancel(context.Background())
	pulled := make(chan error, 1)
	go func() {
		_, _, err := rawCall(ctx, srv.URL, f.key, "POST", "/inbox/pull", `{"max_events":1,"visibility_timeout_seconds":43200}`)
		pulled <- err
	}()
	waitFor(t, "the lease write to stall", func() bool { return f.proxy.Acted("UpdateItem", ddbfault.Stall) == 1 })
	cancel()
	<-gone
	<-pulled
	f.proxy.Release()
	waitFor(t, "the lease to be given back", func() bool {
		if f.proxy.Acted("UpdateItem", ddbfault.Delay) != 1 {
			return false
		}
		got, err := f.events.Get(context.Background(), "acme", e.ID, time.Now())
		return err == nil && got.LeaseID == "" && got.DeliveryCount == 0 && !got.VisibleAt.After(time.Now())
	})
}

// On SIGTERM (the service's context ending) a parked long poll answers at once, 200 with no
// events, and the service stops without waiting out the poll.
func TestStopAnswersParkedLongPolls(t *testing.T) {
	t.Parallel()
	f := newFaultEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	cfg := inboxapi.Config{HTTPAddr: addr, Settings: f.settings(),
		ServerConfig:     httpx.ServerConfig{ShutdownTimeout: time.Minute},
		LongPollBackstop: 10 * time.Millisecond}
	ran := make(chan error, 1)
	go func() { ran <- inboxapi.Run(ctx, zap.NewNop(), cfg) }()
	base := "http://" + addr
	waitFor(t, "the inbox to serve", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})

	start := time.Now()
	type answer struct {
		status int
		body   []byte
		err    error
	}
	polled := make(chan answer, 1)
	go func() {
		resp, body, err := rawCall(context.Background(), base, f.key, "POST", "/inbox/pull", `{"wait_seconds":20}`)
		if err != nil {
			polled <- answer{err: err}
			return
		}
		polled <- answer{status: resp.StatusCode, body: body}
	}()
	// The backstop's checks show the poll is parked: one query leases, the rest watch.
	var a answer
	answered := false
	waitFor(t, "the poll to park", func() bool {
		select {
		case a = <-polled:
			answered = true
			return true
		default:
		}
		return f.proxy.Seen("Query") >= 3
	})
	if answered {
		t.Fatalf("the poll answered before the stop: %d %s %v", a.status, a.body, a.err)
	}
	stop()
	a = <-polled
	if a.err != nil || a.status != http.StatusOK || !bytes.Equal(bytes.TrimSpace(a.body), []byte(`{"events":[]}`)) {
		t.Fatalf("parked poll on stop: %d %s %v, want 200 with no events", a.status, a.body, a.err)
	}
	if waited := time.Since(start); waited >= 20*time.Second {
		t.Fatalf("the poll answered after %v: it waited out its 20 s instead of ending on stop", waited)
	}
	if err := <-ran; err != nil {
		t.Fatalf("run: %v", err)
	}
}
