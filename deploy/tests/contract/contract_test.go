package contract_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
	"github.com/trigger-api/trigger-api/deploy/tests/contract"
	"github.com/trigger-api/trigger-api/pkg/openapi"
)

// TestContract checks every request and answer of a scripted run against the document: the
// seed's demo (its worker included), every bad input of the lifecycle and delivery tables,
// pulls, extends, nacks, dead letters, redrive, batches and idempotent replays on the real
// stack, then the answers only a failing DynamoDB or a spent tenant rate gives on the real
// routers. At the end every answer the document describes must have been seen, so a
// documented answer that nothing produces fails as surely as an answer that nothing documents.
func TestContract(t *testing.T) {
	v := loadDocument(t)

	t.Run("seed-demo", func(t *testing.T) {
		st := sharedStack(t)
		proxy := checkingProxy(t, v, st.GatewayURL)
		env := st.Env()
		env.GatewayURL = proxy
		var out syncBuffer
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		res, err := stack.Demo(ctx, &out, env)
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, out.String())
		}
		if len(res.InboxA) != 1 || len(res.InboxB) != 1 || len(res.Processed) < 2 {
			t.Fatalf("demo result %+v", res)
		}
	})

	t.Run("live-run", func(t *testing.T) {
		st := sharedStack(t)
		liveRun(t, newClient(v, st.GatewayURL), st)
	})

	t.Run("every-route-by-scope", func(t *testing.T) {
		st := sharedStack(t)
		scopeMatrix(t, newClient(v, st.GatewayURL), st.AdminToken)
	})

	t.Run("probes-and-documents", func(t *testing.T) {
		st := sharedStack(t)
		for _, service := range openapi.Services {
			base := st.ServiceURLs[service]
			if base == "" {
				t.Fatalf("the stack has no URL for %s", service)
			}
			c := newClient(v, base)
			c.do(t, call{name: service + "-livez", method: "GET", path: "/livez", status: 200})
			c.do(t, call{name: service + "-readyz", method: "GET", path: "/readyz", status: 200})
			a := c.do(t, call{name: service + "-openapi", method: "GET", path: "/openapi.json", status: 200})
			want, err := openapi.ForService(service)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Body, want) {
				t.Errorf("%s serves a /openapi.json that is not its part of the document", service)
			}
		}
	})

	t.Run("fault-answers", func(t *testing.T) {
		faultAnswers(t, func(h http.Handler) *client { return inProcess(v, h) })
	})

	t.Run("rate-limited-answers", func(t *testing.T) {
		rateLimitedAnswers(t, func(h http.Handler) *client { return inProcess(v, h) })
	})

	t.Run("every-documented-answer-seen", func(t *testing.T) {
		for _, k := range v.Unseen() {
			t.Errorf("documented, never answered in the run: %s", k)
		}
		for _, k := range v.Undocumented() {
			t.Errorf("answered in the run, not documented: %s", k)
		}
	})
}

// checkingProxy puts a reverse proxy in front of the gateway that checks everything passing
// through against the document; everything sent through it must conform.
func checkingProxy(t *testing.T, v *contract.Validator, gateway string) string {
	t.Helper()
	target, err := url.Parse(gateway)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(contract.NewProxy(target, v, func(ex contract.Exchange, res contract.Result) {
		where := ex.Request.Method + " " + ex.Request.URL.RequestURI()
		if res.Request != nil {
			t.Errorf("%s: the request does not match the document: %v", where, res.Request)
		}
		if res.Response != nil {
			t.Errorf("%s → %d: the answer does not match the document: %v\n%s", where, ex.Status, res.Response, clip(ex.Body))
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimRight(srv.URL, "/")
}
