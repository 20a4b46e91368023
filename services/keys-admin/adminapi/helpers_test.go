package adminapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	"github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/services/keys-admin/adminapi"
)

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

// The router's two admins: adminToken, which e.do sends unless told otherwise, and secondToken.
const (
	adminID     = "ops-alice"
	adminToken  = adminID + ":adm_0123456789abcdef0123456789abcdef"
	secondID    = "ci"
	secondToken = secondID + ":adm_fedcba9876543210fedcba9876543210"
)

// clock is a manual clock shared by the router and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one router over its own tables.
type env struct {
	router *gin.Engine
	tables ddb.Tables
	// store reads the tables directly, bypassing the router, for checks.
	store tenant.Store
	clock *clock
}

type envOptions struct {
	client *dynamodb.Client
	log    *zap.Logger
}

func newEnv(t *testing.T, opts envOptions) *env {
	t.Helper()
	if opts.client == nil {
		opts.client = shared.Client
	}
	if opts.log == nil {
		opts.log = zap.NewNop()
	}
	tables := shared.Tables(t)
	tokens, err := adminapi.ParseAdminTokens([]string{adminToken, secondToken})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	client := opts.client
	ready := func(context.Context) error { return nil }
	return &env{
		router: adminapi.NewRouter(opts.log, dynamo.New(client, tables), tokens, ready, c.Now),
		tables: tables,
		store:  dynamo.New(shared.Client, tables),
		clock:  c,
	}
}

// authenticator is a fresh authenticator over the env's tables at the env's time: nothing
// cached from earlier calls.
func (e *env) authenticator() *tenant.Authenticator {
	return tenant.NewAuthenticator(e.store, tenant.AuthConfig{}, e.clock.Now)
}

// request describes one call. A nil token sends the admin token; a pointer to "" sends none.
type request struct {
	method, path string
	body         string
	contentType  string
	token        *string
	header       map[string]string
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func str(s string) *string { return &s }

func (e *env) do(t *testing.T, req request) response {
	t.Helper()
	var body *strings.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(req.method, req.path, body)
		ct := req.contentType
		if ct == "" {
			ct = "application/json"
		}
		r.Header.Set("Content-Type", ct)
	} else {
		r = httptest.NewRequest(req.method, req.path, nil)
	}
	token := adminToken
	if req.token != nil {
		token = *req.token
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.router.ServeHTTP(w, r)
	res := response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	checkEnvelope(t, res)
	return res
}

// checkEnvelope holds every answer to the shared contract: a request id header and, on
// failure, exactly {"error":{"code","message","request_id"}} carrying that id.
func checkEnvelope(t *testing.T, res response) {
	t.Helper()
	id := res.header.Get("X-Request-Id")
	if id == "" {
		t.Fatalf("status %d without X-Request-Id", res.status)
	}
	if res.status < 400 {
		return
	}
	var env map[string]map[string]any
	dec := json.NewDecoder(strings.NewReader(string(res.body)))
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("status %d body %s is not the envelope: %v", res.status, res.body, err)
	}
	inner, ok := env["error"]
	if len(env) != 1 || !ok || len(inner) != 3 {
		t.Fatalf("status %d body %s is not exactly the envelope", res.status, res.body)
	}
	for _, f := range []string{"code", "message", "request_id"} {
		if s, ok := inner[f].(string); !ok || s == "" {
			t.Fatalf("envelope %s: %q missing or empty", res.body, f)
		}
	}
	if inner["request_id"] != id {
		t.Fatalf("envelope request_id %v, header %q", inner["request_id"], id)
	}
}

func errorCode(t *testing.T, res response) string {
	t.Helper()
	var env struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(res.body, &env); err != nil {
		t.Fatalf("body %s: %v", res.body, err)
	}
	return env.Error.Code
}

func object(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	return m
}

// wantFields checks that m has exactly the fields named.
func wantFields(t *testing.T, m map[string]any, fields ...string) {
	t.Helper()
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	// A clone: callers pass shared lists (tenantFields...) from parallel tests.
	want := slices.Sorted(slices.Values(fields))
	if !slices.Equal(got, want) {
		t.Fatalf("fields %v, want exactly %v", got, want)
	}
}

// call is one row of a route table test.
type call struct {
	name string
	request
	before func() // runs first, e.g. to move the clock
	status int
	code   string // the envelope's code, for failures
	check  func(t *testing.T, res response)
}

// runCalls runs calls in order: later rows may depend on what earlier rows did.
func (e *env) runCalls(t *testing.T, calls []call) {
	t.Helper()
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if c.before != nil {
				c.before()
			}
			res := e.do(t, c.request)
			if res.status != c.status {
				t.Fatalf("%s %s: status %d, want %d; body %s", c.method, c.path, res.status, c.status, res.body)
			}
			if c.code != "" {
				if got := errorCode(t, res); got != c.code {
					t.Fatalf("code %q, want %q", got, c.code)
				}
			}
			if c.check != nil {
				c.check(t, res)
			}
		})
	}
}

func (e *env) mustCreateTenant(t *testing.T, id string) {
	t.Helper()
	res := e.do(t, request{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"` + id + `","name":"Tenant ` + id + `"}`})
	if res.status != http.StatusCreated {
		t.Fatalf("create tenant %s: %d %s", id, res.status, res.body)
	}
}

type issued struct {
	KeyID     string   `json:"key_id"`
	TenantID  string   `json:"tenant_id"`
	APIKey    string   `json:"api_key"`
	Prefix    string   `json:"prefix"`
	Label     string   `json:"label"`
	Scopes    []string `json:"scopes"`
	Status    string   `json:"status"`
	CreatedAt string   `json:"created_at"`
	ExpiresAt string   `json:"expires_at"`
}

func (e *env) mustIssue(t *testing.T, tenantID, body string) issued {
	t.Helper()
	res := e.do(t, request{method: "POST", path: "/admin/tenants/" + tenantID + "/keys", body: body})
	if res.status != http.StatusCreated {
		t.Fatalf("issue key for %s: %d %s", tenantID, res.status, res.body)
	}
	var k issued
	if err := json.Unmarshal(res.body, &k); err != nil {
		t.Fatal(err)
	}
	return k
}

func (e *env) mustRevoke(t *testing.T, tenantID, keyID string) {
	t.Helper()
	res := e.do(t, request{method: "DELETE", path: "/admin/tenants/" + tenantID + "/keys/" + keyID})
	if res.status != http.StatusOK {
		t.Fatalf("revoke %s: %d %s", keyID, res.status, res.body)
	}
}
