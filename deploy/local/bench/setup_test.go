package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
)

// ingestPost sends the body as is with the key, takes only a 202 as success, explains a
// refusal as the client would, and keeps its one connection whatever the answer: a new
// connection per request would put TCP handshakes into the measured rate.
func TestIngestPostSendsTheEventAndKeepsTheConnection(t *testing.T) {
	body := eventBody(0)
	var conns, refused atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/events" || r.Header.Get("Authorization") != "Bearer k" ||
			r.Header.Get("Content-Type") != "application/json" || !bytes.Equal(got, body) {
			t.Errorf("%s %s %v %s", r.Method, r.URL.Path, r.Header, got)
		}
		if refused.Add(-1) >= 0 {
			w.Header().Set(api.HeaderRequestID, "req_1")
			w.WriteHeader(http.StatusTooManyRequests)
			_ = json.NewEncoder(w).Encode(api.ErrorEnvelope{Error: api.ErrorBody{Code: api.CodeRateLimited, Message: "slow down"}})
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"event_id":"evt_1","received_at":1,"status":"accepted"}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	hc := loadClient(1)
	defer hc.CloseIdleConnections()
	send := ingestPost(hc, srv.URL, "k", body)

	if err := send(t.Context()); err != nil {
		t.Fatal(err)
	}
	refused.Store(1)
	err := send(t.Context())
	if e, ok := errors.AsType[*client.Error](err); !ok || e.Status != http.StatusTooManyRequests || e.Code != api.CodeRateLimited || e.RequestID != "req_1" {
		t.Fatalf("refusal: %v", err)
	}
	if err := send(t.Context()); err != nil {
		t.Fatal(err)
	}
	if conns.Load() != 1 {
		t.Fatalf("%d connections for 3 sequential requests", conns.Load())
	}
}

func TestServiceEnvSetsGOMAXPROCSOnlyWhenAsked(t *testing.T) {
	has := func(env []string, kv string) bool { return slices.Contains(env, kv) }
	o := options{logLevel: "info", serviceProcs: 1}
	if env := serviceEnv("http://127.0.0.1:1", "p_", "127.0.0.1:2", o); !has(env, "GOMAXPROCS=1") || !has(env, "TRIGGER_LOG_LEVEL=info") {
		t.Fatalf("procs 1: %q", env)
	}
	o.serviceProcs = 0
	for _, kv := range serviceEnv("http://127.0.0.1:1", "p_", "127.0.0.1:2", o) {
		if strings.HasPrefix(kv, "GOMAXPROCS=") && os.Getenv("GOMAXPROCS") == "" {
			t.Fatalf("procs 0: %s set", kv)
		}
	}
}
