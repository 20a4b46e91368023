package contract_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/deploy/tests/contract"
	"github.com/trigger-api/trigger-api/pkg/openapi"
)

// loadDocument is the whole document, validated, as the contract checks read it.
func loadDocument(t *testing.T) *contract.Validator {
	t.Helper()
	v, err := contract.Load(context.Background(), openapi.Document())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// call is one scripted request and what it must get back. Unless invalid is set the request
// must conform to the document; the answer always must.
type call struct {
	name        string
	method      string
	path        string
	key         string // bearer credential; empty: no Authorization header
	header      http.Header
	contentType string // empty: application/json when there is a body
	body        string
	status      int
	code        string // the envelope's code, for errors
	// invalid marks a request that breaks the document on purpose: a bad-input case. The
	// document must then reject it too, or it would describe a laxer API than the service.
	invalid bool
}

// answer is a response, read in full.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.Body, v); err != nil {
		t.Fatalf("answer %d is not the JSON expected: %v: %s", a.Status, err, a.Body)
	}
}

// client sends scripted calls to base (a gateway or a service) or straight into handler, and
// checks each exchange against the document.
type client struct {
	v       *contract.Validator
	base    string
	handler http.Handler
	http    *http.Client
}

func newClient(v *contract.Validator, base string) *client {
	return &client{v: v, base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 60 * time.Second}}
}

func inProcess(v *contract.Validator, h http.Handler) *client {
	return &client{v: v, handler: h}
}

func (c *client) do(t *testing.T, tc call) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), tc.method, c.base+tc.path, strings.NewReader(tc.body))
	if err != nil {
		t.Fatalf("%s: %v", tc.name, err)
	}
	for k, vs := range tc.header {
		req.Header[k] = vs
	}
	if tc.key != "" {
		req.Header.Set("Authorization", "Bearer "+tc.key)
	}
	switch {
	case tc.contentType != "":
		req.Header.Set("Content-Type", tc.contentType)
	case tc.body != "":
		req.Header.Set("Content-Type", "application/json")
	}

	var a answer
	if c.handler != nil {
		rec := httptest.NewRecorder()
		c.handler.ServeHTTP(rec, req)
		a = answer{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	} else {
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatalf("%s: %s %s: %v", tc.name, tc.method, tc.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: read the answer: %v", tc.name, err)
		}
		a = answer{Status: resp.StatusCode, Header: resp.Header, Body: body}
	}

	res := c.v.Check(t.Context(), contract.Exchange{Request: req, RequestBody: []byte(tc.body), Status: a.Status, Header: a.Header, Body: a.Body})
	switch {
	case res.Response != nil:
		t.Errorf("%s: %s %s → %d does not match the document: %v\nbody: %s", tc.name, tc.method, tc.path, a.Status, res.Response, clip(a.Body))
	case tc.invalid && res.Request == nil:
		t.Errorf("%s: the document accepts %s %s, which the service refuses (%d): it is laxer than the service", tc.name, tc.method, tc.path, a.Status)
	case !tc.invalid && res.Request != nil:
		t.Errorf("%s: the request does not match the document: %v", tc.name, res.Request)
	}
	if tc.status != 0 && a.Status != tc.status {
		t.Errorf("%s: %s %s answered %d, want %d: %s", tc.name, tc.method, tc.path, a.Status, tc.status, clip(a.Body))
	}
	if tc.code != "" {
		var env struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(a.Body, &env) != nil || env.Error.Code != tc.code {
			t.Errorf("%s: error code %q, want %q: %s", tc.name, env.Error.Code, tc.code, clip(a.Body))
		}
	}
	return a
}

// run sends calls in order.
func (c *client) run(t *testing.T, calls []call) {
	t.Helper()
	for _, tc := range calls {
		c.do(t, tc)
	}
}

func clip(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// jsonBody marshals v for a call's body.
func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// padded is a valid JSON object of more than n bytes whose fields the document allows: the
// object with whitespace before its closing brace, so only the size is wrong.
func padded(object string, n int) string {
	return strings.TrimSuffix(object, "}") + strings.Repeat(" ", n) + "}"
}
