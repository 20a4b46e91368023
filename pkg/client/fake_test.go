package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/trigger-api/trigger-api/pkg/client"
)

const (
	testKey   = "tenant_acme_live_s3cr3tK3yV4lu3"
	testToken = "admin-token-that-must-never-show-0123456789"
)

// seen is one request as the fake API received it.
type seen struct {
	method, path, query string
	header              http.Header
	body                []byte
	// op is the trigger.operation label the call's context carried.
	op string
}

// reply is what the fake answers.
type reply struct {
	status int
	header map[string]string
	body   string
}

// fakeAPI records every request and answers each with what its reply function says for the
// n-th request (from 1).
type fakeAPI struct {
	srv   *httptest.Server
	reply func(n int, s seen) reply

	mu    sync.Mutex
	calls []seen
	// failures counts the attempts failed before they left the client (see failFirst).
	failures atomic.Int32
	// failFirst makes the first n attempts fail in the transport, as a reset connection does.
	failFirst int32
	sleeps    []time.Duration
}

func newFake(t *testing.T, r func(n int, s seen) reply) *fakeAPI {
	t.Helper()
	f := &fakeAPI{reply: r}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// always answers every request alike.
func always(status int, body string) func(int, seen) reply {
	return func(int, seen) reply { return reply{status: status, body: body} }
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := readAll(r)
	s := seen{
		method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, header: r.Header.Clone(),
		body: body, op: r.Header.Get("X-Test-Operation"),
	}
	f.mu.Lock()
	f.calls = append(f.calls, s)
	n := len(f.calls)
	f.mu.Unlock()
	rep := f.reply(n, s)
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func (f *fakeAPI) seen() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.calls...)
}

func (f *fakeAPI) waits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// httpClient carries the calls to the fake, copying each call's operation label into a header
// the fake records, and failing the first failFirst attempts.
func (f *fakeAPI) httpClient() *http.Client {
	return &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		if f.failures.Add(1) <= f.failFirst {
			return nil, errors.New("connection reset by peer")
		}
		r = r.Clone(r.Context())
		if l, ok := otelhttp.ClientLabelerFromContext(r.Context()); ok {
			for _, a := range l.Get() {
				if a.Key == "trigger.operation" {
					r.Header.Set("X-Test-Operation", a.Value.AsString())
				}
			}
		}
		return f.srv.Client().Transport.RoundTrip(r)
	})}
}

// options points a client at the fake and records its retry waits instead of spending them.
func (f *fakeAPI) options(extra ...client.Option) []client.Option {
	return append([]client.Option{
		client.WithHTTPClient(f.httpClient()),
		client.WithSleep(func(ctx context.Context, d time.Duration) error {
			f.mu.Lock()
			f.sleeps = append(f.sleeps, d)
			f.mu.Unlock()
			return ctx.Err()
		}),
	}, extra...)
}

func (f *fakeAPI) client(t *testing.T, extra ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(f.srv.URL, testKey, f.options(extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakeAPI) admin(t *testing.T, extra ...client.Option) *client.Admin {
	t.Helper()
	a, err := client.NewAdmin(f.srv.URL, testToken, f.options(extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type roundTrip func(*http.Request) (*http.Response, error)

func (rt roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return rt(r) }

func readAll(r *http.Request) ([]byte, error) {
	defer r.Body.Close()
	return io.ReadAll(r.Body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// envelope is an error answer's body.
func envelope(code, message string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": message, "request_id": "req_body"}})
	return string(b)
}
