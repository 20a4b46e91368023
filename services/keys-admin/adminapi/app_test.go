package adminapi_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	"github.com/trigger-api/trigger-api/services/keys-admin/adminapi"
)

func mustAuthenticate(t *testing.T, e *env, raw string) {
	t.Helper()
	if _, err := e.authenticator().Authenticate(context.Background(), raw); err != nil {
		t.Fatalf("key refused: %v", err)
	}
}

func mustBeRefused(t *testing.T, e *env, raw string) {
	t.Helper()
	if _, err := e.authenticator().Authenticate(context.Background(), raw); err != tenant.ErrUnauthenticated {
		t.Fatalf("got %v, want ErrUnauthenticated", err)
	}
}

// TestKeyLifecycle drives every route the way an operator would and checks, through the
// authenticator the public services use, that what the admin API says is what keys do. It
// also records every DynamoDB call and every log line the service makes.
func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	client, rec := shared.RecordingClient()
	core, logs := observer.New(zapcore.DebugLevel)
	e := newEnv(t, envOptions{client: client, log: zap.New(core)})

	for _, path := range []string{"/livez", "/readyz"} {
		if res := e.do(t, request{method: "GET", path: path, token: str("")}); res.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, res.status, res.body)
		}
	}
	e.mustCreateTenant(t, "acme")
	if res := e.do(t, request{method: "GET", path: "/admin/tenants"}); res.status != http.StatusOK {
		t.Fatalf("list tenants: %d", res.status)
	}
	if res := e.do(t, request{method: "GET", path: "/admin/tenants/acme"}); res.status != http.StatusOK {
		t.Fatalf("get tenant: %d", res.status)
	}

	var secrets []string
	t.Run("issued-key-authenticates-until-revoked", func(t *testing.T) {
		k := e.mustIssue(t, "acme", `{"scopes":["events:write"]}`)
		secrets = append(secrets, k.APIKey)
		p, err := e.authenticator().Authenticate(context.Background(), k.APIKey)
		if err != nil {
			t.Fatalf("issued key refused: %v", err)
		}
		if p.TenantID != "acme" || p.KeyID != k.KeyID || !p.Can(tenant.ScopeEventsWrite) || p.Can(tenant.ScopeInboxRead) {
			t.Fatalf("principal %+v", p)
		}
		e.mustRevoke(t, "acme", k.KeyID)
		mustBeRefused(t, e, k.APIKey)
	})

	t.Run("rolled-key-works-until-its-new-expiry", func(t *testing.T) {
		old := e.mustIssue(t, "acme", `{"label":"app"}`)
		res := e.do(t, request{method: "POST", path: "/admin/tenants/acme/keys/" + old.KeyID + "/roll", body: `{"expires_in_seconds":60}`})
		if res.status != http.StatusCreated {
			t.Fatalf("roll: %d %s", res.status, res.body)
		}
		var next issued
		if err := json.Unmarshal(res.body, &next); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, old.APIKey, next.APIKey)
		mustAuthenticate(t, e, old.APIKey)
		mustAuthenticate(t, e, next.APIKey)
		e.clock.Advance(59 * time.Second)
		mustAuthenticate(t, e, old.APIKey)
		e.clock.Advance(time.Second)
		mustBeRefused(t, e, old.APIKey)
		mustAuthenticate(t, e, next.APIKey)
	})

	t.Run("suspended-tenant-keys-refused-until-reactivated", func(t *testing.T) {
		k := e.mustIssue(t, "acme", `{}`)
		secrets = append(secrets, k.APIKey)
		for _, step := range []struct {
			status string
			works  bool
		}{{"suspended", false}, {"active", true}} {
			res := e.do(t, request{method: "PATCH", path: "/admin/tenants/acme", body: `{"status":"` + step.status + `"}`})
			if res.status != http.StatusOK {
				t.Fatalf("patch %s: %d", step.status, res.status)
			}
			if step.works {
				mustAuthenticate(t, e, k.APIKey)
			} else {
				mustBeRefused(t, e, k.APIKey)
			}
		}
		if res := e.do(t, request{method: "GET", path: "/admin/tenants/acme/keys"}); res.status != http.StatusOK {
			t.Fatalf("list keys: %d", res.status)
		}
	})

	t.Run("dynamodb-calls-within-grant", func(t *testing.T) {
		for _, op := range rec.Outside(ddb.ComponentKeysAdmin) {
			t.Errorf("keys-admin called %s, which its grant does not allow", op)
		}
		ops := rec.Operations()
		// The recorder must have seen the service at work for the check above to mean anything.
		// (DescribeTable is the start-up check's, made before the handler exists.)
		for _, op := range []string{"GetItem", "PutItem", "Query", "Scan", "UpdateItem"} {
			if !slices.Contains(ops, op) {
				t.Errorf("no %s recorded; recorded %v", op, ops)
			}
		}
	})

	t.Run("logs-hold-no-secret-or-hash", func(t *testing.T) {
		entries := logs.All()
		if len(entries) == 0 {
			t.Fatal("nothing was logged")
		}
		audited := 0
		for _, entry := range entries {
			line, err := json.Marshal(entry.ContextMap())
			if err != nil {
				t.Fatal(err)
			}
			text := entry.Message + string(line)
			for _, s := range secrets {
				if strings.Contains(text, s) || strings.Contains(text, apikey.Hash(s)) {
					t.Fatalf("log line leaks a key or its hash: %s", text)
				}
			}
			if strings.HasPrefix(entry.Message, "api key ") {
				audited++
			}
		}
		if audited < 4 {
			t.Fatalf("%d key audit lines, want one per issue, revoke and roll", audited)
		}
	})

	t.Run("audit-lines-name-the-admin", func(t *testing.T) {
		audited := 0
		for _, entry := range logs.All() {
			if !strings.HasPrefix(entry.Message, "api key ") && !strings.HasPrefix(entry.Message, "tenant ") {
				continue
			}
			audited++
			if got := entry.ContextMap()["admin_id"]; got != adminID {
				t.Errorf("audit line %q: admin_id %v, want %q", entry.Message, got, adminID)
			}
		}
		if audited < 6 {
			t.Fatalf("%d audit lines, want one per create, patch, issue, revoke and roll", audited)
		}
	})
}

func TestAdminTokenRequired(t *testing.T) {
	t.Parallel()
	client, rec := shared.RecordingClient()
	e := newEnv(t, envOptions{client: client})
	tenantKey, err := apikey.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	routes := []request{
		{method: "POST", path: "/admin/tenants", body: `{"tenant_id":"acme","name":"Acme"}`},
		{method: "GET", path: "/admin/tenants"},
		{method: "GET", path: "/admin/tenants/acme"},
		{method: "PATCH", path: "/admin/tenants/acme", body: `{"status":"suspended"}`},
		{method: "POST", path: "/admin/tenants/acme/keys", body: `{}`},
		{method: "GET", path: "/admin/tenants/acme/keys"},
		{method: "DELETE", path: "/admin/tenants/acme/keys/key_000000000000000000000000"},
		{method: "POST", path: "/admin/tenants/acme/keys/key_000000000000000000000000/roll", body: `{}`},
		// Authentication comes before any reading of the request.
		{method: "POST", path: "/admin/tenants", body: `{not json`},
		{method: "GET", path: "/admin/tenants/Bad_Id"},
	}
	credentials := []struct {
		name   string
		header string
	}{
		{"missing-token", ""},
		{"wrong-token", "Bearer " + strings.Repeat("x", 36)},
		{"token-prefix-only", "Bearer " + adminToken[:len(adminToken)-1]},
		{"token-with-suffix", "Bearer " + adminToken + "x"},
		{"empty-bearer", "Bearer "},
		{"basic-scheme", "Basic " + adminToken},
		{"bare-token", adminToken},
		{"secret-without-id", "Bearer " + strings.SplitN(adminToken, ":", 2)[1]},
		{"id-of-another-admin", "Bearer " + secondID + ":" + strings.SplitN(adminToken, ":", 2)[1]},
		{"tenant-api-key", "Bearer " + tenantKey.String()},
	}
	for _, cred := range credentials {
		t.Run("any-401-"+cred.name, func(t *testing.T) {
			for _, r := range routes {
				r.token = str("")
				if cred.header != "" {
					r.header = map[string]string{"Authorization": cred.header}
				}
				res := e.do(t, r)
				if res.status != http.StatusUnauthorized || errorCode(t, res) != "unauthenticated" {
					t.Fatalf("%s %s: %d %s, want 401 unauthenticated", r.method, r.path, res.status, res.body)
				}
				if res.header.Get("WWW-Authenticate") == "" {
					t.Fatalf("%s %s: 401 without WWW-Authenticate", r.method, r.path)
				}
			}
		})
	}
	t.Run("any-401-touches-no-table", func(t *testing.T) {
		if ops := rec.Operations(); len(ops) != 0 {
			t.Fatalf("refused requests reached DynamoDB: %v", ops)
		}
	})
	t.Run("any-200-second-token", func(t *testing.T) {
		res := e.do(t, request{method: "GET", path: "/admin/tenants", token: str(secondToken)})
		if res.status != http.StatusOK {
			t.Fatalf("second configured token: %d %s", res.status, res.body)
		}
	})
	t.Run("audit-names-the-second-admin", func(t *testing.T) {
		core, logs := observer.New(zapcore.InfoLevel)
		e := newEnv(t, envOptions{log: zap.New(core)})
		res := e.do(t, request{method: "POST", path: "/admin/tenants", token: str(secondToken), body: `{"tenant_id":"acme","name":"Acme"}`})
		if res.status != http.StatusCreated {
			t.Fatalf("create tenant: %d %s", res.status, res.body)
		}
		lines := logs.FilterMessage("tenant created").All()
		if len(lines) != 1 || lines[0].ContextMap()["admin_id"] != secondID {
			t.Fatalf("audit lines %v, want one with admin_id %q", lines, secondID)
		}
		if strings.Contains(fmt.Sprint(lines[0].ContextMap()), strings.SplitN(secondToken, ":", 2)[1]) {
			t.Fatal("the audit line holds the token's secret")
		}
	})
	t.Run("any-200-scheme-case-insensitive", func(t *testing.T) {
		res := e.do(t, request{method: "GET", path: "/admin/tenants", token: str(""), header: map[string]string{"Authorization": "bearer " + adminToken}})
		if res.status != http.StatusOK {
			t.Fatalf("lower-case scheme: %d %s", res.status, res.body)
		}
	})
	t.Run("request-id-echoed", func(t *testing.T) {
		res := e.do(t, request{method: "GET", path: "/admin/tenants/ghost", header: map[string]string{"X-Request-Id": "trace-me-42"}})
		if res.status != http.StatusNotFound || res.header.Get("X-Request-Id") != "trace-me-42" {
			t.Fatalf("status %d, request id %q", res.status, res.header.Get("X-Request-Id"))
		}
	})
}

// Readiness is the process's, not DynamoDB's: a DynamoDB hiccup must not take every pod out of
// the load balancer at once.
func TestReadyzFollowsTheProcess(t *testing.T) {
	t.Parallel()
	ctx, stop := context.WithCancel(context.Background())
	tokens, err := adminapi.ParseAdminTokens([]string{adminToken})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{router: adminapi.NewRouter(zap.NewNop(), tenant.Store(nil), tokens, httpx.ServingUntil(ctx), nil)}
	if res := e.do(t, request{method: "GET", path: "/readyz", token: str("")}); res.status != http.StatusOK {
		t.Fatalf("readyz while serving: %d, want 200", res.status)
	}
	stop()
	res := e.do(t, request{method: "GET", path: "/readyz", token: str("")})
	if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
		t.Fatalf("readyz while stopping: %d (Retry-After %q), want 503 with Retry-After", res.status, res.header.Get("Retry-After"))
	}
	if res := e.do(t, request{method: "GET", path: "/livez", token: str("")}); res.status != http.StatusOK {
		t.Fatalf("livez: %d, want 200", res.status)
	}
}

// A missing table is a deployment mistake no retry fixes: the service refuses to start and
// says what to do, instead of serving 503s forever.
func TestRunRefusesMissingTables(t *testing.T) {
	t.Parallel()
	cfg := adminapi.Config{
		HTTPAddr:     "127.0.0.1:0",
		ServerConfig: httpx.ServerConfig{ShutdownTimeout: time.Second},
		Settings:     ddb.Settings{Region: ddblocal.Region, Endpoint: shared.Endpoint, TablePrefix: "missing_" + t.Name() + "_"},
		AdminTokens:  []string{adminToken},
	}
	err := adminapi.Run(context.Background(), zap.NewNop(), cfg)
	if !errors.Is(err, ddb.ErrMisconfigured) || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), cfg.TablePrefix) {
		t.Fatalf("run without tables: %v, want ErrMisconfigured naming the table", err)
	}
}

func TestParseAdminTokens(t *testing.T) {
	t.Parallel()
	long := "ops:" + strings.Repeat("a", 32)
	short := strings.Repeat("s", 31)
	unnamed := strings.Repeat("u", 40)
	cases := []struct {
		name   string
		tokens []string
		want   string // the refusal's reason; "" accepts, with the ids of ids
		ids    []string
	}{
		{"refused-none", nil, "no admin token", nil},
		{"refused-empty-list", []string{}, "no admin token", nil},
		{"refused-blank", []string{""}, "is empty", nil},
		{"refused-unnamed", []string{unnamed}, "has no id", nil},
		{"refused-unnamed-among-named", []string{long, unnamed}, "token 2 of 2 has no id", nil},
		{"refused-empty-id", []string{":" + unnamed}, "the id", nil},
		{"refused-upper-case-id", []string{"Ops:" + unnamed}, "the id", nil},
		{"refused-id-with-space", []string{"ops alice:" + unnamed}, "the id", nil},
		{"refused-id-33-chars", []string{strings.Repeat("i", 33) + ":" + unnamed}, "the id", nil},
		{"refused-31-char-secret", []string{"ops:" + short}, "shorter than 32", nil},
		{"refused-padded-short", []string{"  ops:" + short + "  "}, "shorter than 32", nil},
		{"refused-one-short-among-good", []string{long, "ci:" + short}, "shorter than 32", nil},
		{"refused-trailing-comma", []string{long, ""}, "token 2 of 2 is empty", nil},
		{"accepted-32-char-secret", []string{long}, "", []string{"ops"}},
		{"accepted-secret-with-colon", []string{"ci-1:" + strings.Repeat("b:", 16)}, "", []string{"ci-1"}},
		{"accepted-two", []string{long, "ci:" + strings.Repeat("b", 64)}, "", []string{"ops", "ci"}},
		{"accepted-one-id-twice-while-rotating", []string{long, "ops:" + strings.Repeat("c", 32)}, "", []string{"ops", "ops"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tokens, err := adminapi.ParseAdminTokens(tc.tokens)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused good tokens: %v", err)
				}
				if !slices.Equal(tokens.IDs(), tc.ids) {
					t.Fatalf("ids %v, want %v", tokens.IDs(), tc.ids)
				}
				for i, raw := range tc.tokens {
					if id, ok := tokens.Identify(raw); !ok || id != tc.ids[i] {
						t.Fatalf("token %d identified as %q, %v; want %q", i+1, id, ok, tc.ids[i])
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a refusal about %q", err, tc.want)
			}
			if strings.Contains(err.Error(), short) || strings.Contains(err.Error(), unnamed) {
				t.Fatalf("the error shows the token: %v", err)
			}
		})
	}
}

func TestSplitTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{"one-per-line", "a:x\nb:y\n", []string{"a:x", "b:y"}},
		{"comma-separated", "a:x, b:y", []string{"a:x", "b:y"}},
		{"mixed-crlf-comments-blanks", "# admins\r\n\r\na:x,b:y\r\n  c:z  \n", []string{"a:x", "b:y", "c:z"}},
		{"empty", "", nil},
		{"trailing-comma-kept-for-refusal", "a:x,", []string{"a:x", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := adminapi.SplitTokens(tc.content); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRunRefusesWithoutGoodTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		tokens []string
		want   string
	}{
		{"no-token", nil, "no admin token"},
		{"unnamed-token", []string{strings.Repeat("k", 40)}, "has no id"},
		{"short-token", []string{"ops:too-short"}, "shorter than 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// An address nothing could bind proves Run stops before serving.
			cfg := adminapi.Config{HTTPAddr: "256.0.0.1:1", AdminTokens: tc.tokens}
			err := adminapi.Run(context.Background(), zap.NewNop(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestRunServesUntilCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := adminapi.Config{
		HTTPAddr:     "127.0.0.1:0",
		ServerConfig: httpx.ServerConfig{ShutdownTimeout: time.Second},
		Settings:     ddb.Settings{Region: ddblocal.Region, Endpoint: shared.Endpoint},
		AdminTokens:  []string{adminToken},
	}
	if err := adminapi.Run(ctx, zap.NewNop(), cfg); err != nil {
		t.Fatalf("run with a canceled context: %v", err)
	}
}

func TestEnsureTables(t *testing.T) {
	t.Parallel()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "ens" + hex.EncodeToString(b[:]) + "_"
	tables := ddb.TableNames(prefix)
	t.Cleanup(func() {
		for _, name := range tables.All() {
			_, _ = shared.Client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name})
		}
	})
	cfg := adminapi.TablesConfig{Settings: ddb.Settings{Region: ddblocal.Region, Endpoint: shared.Endpoint, TablePrefix: prefix}}
	for i := range 2 {
		if err := adminapi.EnsureTables(context.Background(), zap.NewNop(), cfg); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	if err := ddb.Check(context.Background(), shared.Client, tables.All()...); err != nil {
		t.Fatalf("tables missing after ensure-tables: %v", err)
	}
}
