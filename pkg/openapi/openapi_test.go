package openapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/trigger-api/trigger-api/pkg/openapi"
)

// The full validation of the document (OpenAPI 3.1 and JSON Schema 2020-12), the drift checks
// against the real routers and the contract run against the real services live in
// deploy/tests/contract, which may depend on a validator and on the services. These tests hold the
// rules the document must keep whatever validator reads it.

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	return doc
}

func object(t *testing.T, v any, where string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s is %T, want an object", where, v)
	}
	return m
}

// resolve follows a local JSON pointer such as #/components/responses/NotFound.
func resolve(t *testing.T, doc map[string]any, ref string) any {
	t.Helper()
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		t.Fatalf("$ref %q is not local", ref)
	}
	var cur any = doc
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("$ref %q: %q is not inside an object", ref, tok)
		}
		if cur, ok = m[tok]; !ok {
			t.Fatalf("$ref %q points nowhere", ref)
		}
	}
	return cur
}

// deref returns v, or what its $ref points to.
func deref(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m := object(t, v, "a reference")
	if ref, ok := m["$ref"].(string); ok {
		return object(t, resolve(t, doc, ref), ref)
	}
	return m
}

func walkRefs(v any, visit func(string)) {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			visit(ref)
		}
		for _, e := range v {
			walkRefs(e, visit)
		}
	case []any:
		for _, e := range v {
			walkRefs(e, visit)
		}
	}
}

func TestDocumentKeepsItsRules(t *testing.T) {
	doc := decode(t, openapi.Document())
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi %v, want 3.1.0", doc["openapi"])
	}
	walkRefs(doc, func(ref string) { resolve(t, doc, ref) })

	ops, err := openapi.Operations("")
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) == 0 {
		t.Fatal("no operations")
	}
	ids := map[string]bool{}
	tags := map[string]bool{}
	for _, tag := range doc["tags"].([]any) {
		tags[tag.(map[string]any)["name"].(string)] = true
	}
	paths := object(t, doc["paths"], "paths")
	for _, o := range ops {
		where := o.Method + " " + o.Path
		op := object(t, object(t, paths[o.Path], o.Path)[strings.ToLower(o.Method)], where)
		if o.ID == "" || ids[o.ID] {
			t.Errorf("%s: operationId %q missing or repeated", where, o.ID)
		}
		ids[o.ID] = true
		opTags, _ := op["tags"].([]any)
		if len(opTags) != 1 || !tags[opTags[0].(string)] {
			t.Errorf("%s: tags %v, want one declared tag", where, opTags)
		}
		if s, _ := op["summary"].(string); s == "" {
			t.Errorf("%s: no summary", where)
		}
		security, ok := op["security"].([]any)
		if !ok {
			t.Errorf("%s: no security requirement (use [] for none)", where)
		}
		responses := object(t, op["responses"], where+" responses")
		public := o.Service != openapi.Every
		if public != (len(security) > 0) {
			t.Errorf("%s: security %v, want a requirement exactly on the API's own operations", where, security)
		}
		if public {
			// Every API operation can be refused, can fail, and can find DynamoDB unavailable.
			for _, status := range []string{"401", "500", "503"} {
				if _, ok := responses[status]; !ok {
					t.Errorf("%s: no %s response", where, status)
				}
			}
		}
		if _, hasBody := op["requestBody"]; hasBody {
			for _, status := range []string{"400", "413", "415"} {
				if _, ok := responses[status]; !ok {
					t.Errorf("%s takes a body but documents no %s", where, status)
				}
			}
		}
		for status, r := range responses {
			resp := deref(t, doc, r)
			code, err := strconv.Atoi(status)
			if err != nil {
				t.Errorf("%s: response %q is not a status code", where, status)
				continue
			}
			headers, _ := resp["headers"].(map[string]any)
			_, hasRequestID := headers["X-Request-Id"]
			if public && !hasRequestID {
				t.Errorf("%s %s: no X-Request-Id header", where, status)
			}
			if code >= 400 && public {
				schema := resp["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
				allOf, _ := schema["allOf"].([]any)
				if len(allOf) == 0 || allOf[0].(map[string]any)["$ref"] != "#/components/schemas/Error" {
					t.Errorf("%s %s: the body is not the error envelope", where, status)
				}
			}
			if code == http.StatusServiceUnavailable && public {
				if _, ok := headers["Retry-After"]; !ok {
					t.Errorf("%s 503: no Retry-After header", where)
				}
			}
			if code == http.StatusUnauthorized {
				if _, ok := headers["WWW-Authenticate"]; !ok {
					t.Errorf("%s 401: no WWW-Authenticate header", where)
				}
			}
		}
	}
}

func TestAdminAPIIsTaggedApart(t *testing.T) {
	doc := decode(t, openapi.Document())
	paths := doc["paths"].(map[string]any)
	ops, err := openapi.Operations("")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		op := paths[o.Path].(map[string]any)[strings.ToLower(o.Method)].(map[string]any)
		tag := op["tags"].([]any)[0].(string)
		admin := strings.HasPrefix(o.Path, "/admin/")
		if admin != strings.HasPrefix(tag, "Admin: ") || admin != (o.Service == openapi.KeysAdmin) {
			t.Errorf("%s %s: tag %q, service %q: the admin API and only it is keys-admin's, tagged Admin", o.Method, o.Path, tag, o.Service)
		}
		schemes := map[string]bool{}
		for _, r := range op["security"].([]any) {
			for s := range r.(map[string]any) {
				schemes[s] = true
			}
		}
		if admin && (len(schemes) != 1 || !schemes["adminToken"]) || !admin && o.Service != openapi.Every && (len(schemes) != 1 || !schemes["tenantKey"]) {
			t.Errorf("%s %s: security schemes %v, want adminToken for admin calls and tenantKey for the public API", o.Method, o.Path, schemes)
		}
	}
}

// The seed's two example events are the document's examples, byte for byte in meaning.
func TestExamplesComeFromTheSeed(t *testing.T) {
	doc := decode(t, openapi.Document())
	examples := doc["paths"].(map[string]any)["/events"].(map[string]any)["post"].(map[string]any)["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["examples"].(map[string]any)
	want := map[string]string{
		"customerCreated": `{"event_type":"customer.created","customer_id":"123","email":"alice@example.com"}`,
		"invoicePaid":     `{"event_type":"invoice.paid","invoice_id":"inv_8912","amount":3200}`,
	}
	for name, body := range want {
		var w any
		if err := json.Unmarshal([]byte(body), &w); err != nil {
			t.Fatal(err)
		}
		ex, ok := examples[name].(map[string]any)
		if !ok {
			t.Fatalf("POST /events has no example %q", name)
		}
		got, _ := json.Marshal(ex["value"])
		wantJSON, _ := json.Marshal(w)
		if !bytes.Equal(got, wantJSON) {
			t.Errorf("example %s is %s, want the seed's %s", name, got, wantJSON)
		}
	}
}

func TestForServiceHoldsOnlyWhatTheServiceServes(t *testing.T) {
	all, err := openapi.Operations("")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, service := range openapi.Services {
		t.Run(service, func(t *testing.T) {
			b, err := openapi.ForService(service)
			if err != nil {
				t.Fatal(err)
			}
			doc := decode(t, b)
			if doc["openapi"] != "3.1.0" || !strings.HasSuffix(doc["info"].(map[string]any)["title"].(string), ": "+service) {
				t.Fatalf("header of %s's part: openapi %v, info %v", service, doc["openapi"], doc["info"])
			}
			want, err := openapi.Operations(service)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for p, item := range doc["paths"].(map[string]any) {
				for _, m := range openapi.Methods {
					op, ok := item.(map[string]any)[strings.ToLower(m)].(map[string]any)
					if !ok {
						continue
					}
					got = append(got, m+" "+p)
					if s := op["x-service"]; s != service && s != openapi.Every {
						t.Errorf("%s %s of service %v in %s's part", m, p, s, service)
					}
				}
			}
			var wantKeys []string
			for _, o := range want {
				wantKeys = append(wantKeys, o.Method+" "+o.Path)
				if o.Service == service {
					covered[o.Method+" "+o.Path] = true
				}
			}
			slices.Sort(got)
			slices.Sort(wantKeys)
			if !slices.Equal(got, wantKeys) {
				t.Fatalf("%s's part holds %v, want %v", service, got, wantKeys)
			}
			for _, probe := range []string{"GET /livez", "GET /readyz", "GET /openapi.json"} {
				if !slices.Contains(got, probe) {
					t.Errorf("%s's part lacks %s", service, probe)
				}
			}

			// Every reference resolves, and every component left is referenced: nothing of
			// another service's leaks in.
			referenced := map[string]bool{}
			walkRefs(doc, func(ref string) {
				resolve(t, doc, ref)
				referenced[ref] = true
			})
			for kind, group := range doc["components"].(map[string]any) {
				if kind == "securitySchemes" {
					continue
				}
				for name := range group.(map[string]any) {
					if ref := "#/components/" + kind + "/" + name; !referenced[ref] {
						t.Errorf("%s's part keeps %s, which nothing references", service, ref)
					}
				}
			}
			schemes := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
			wantScheme := "tenantKey"
			if service == openapi.KeysAdmin {
				wantScheme = "adminToken"
			}
			if _, ok := schemes[wantScheme]; len(schemes) != 1 || !ok {
				t.Errorf("%s's part has security schemes %v, want only %s", service, schemes, wantScheme)
			}
			for _, tag := range doc["tags"].([]any) {
				name := tag.(map[string]any)["name"].(string)
				if service != openapi.KeysAdmin && strings.HasPrefix(name, "Admin") {
					t.Errorf("%s's part carries the admin tag %q", service, name)
				}
			}
		})
	}
	for _, o := range all {
		if o.Service != openapi.Every && !covered[o.Method+" "+o.Path] {
			t.Errorf("%s %s is in no service's part", o.Method, o.Path)
		}
	}
}

func TestForServiceRefusesUnknownService(t *testing.T) {
	if _, err := openapi.ForService("billing"); err == nil {
		t.Fatal("ForService(billing) succeeded")
	}
	if _, err := openapi.Operations("billing"); err == nil {
		t.Fatal("Operations(billing) succeeded")
	}
}

func TestHandlerServesTheServicePart(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	for _, service := range openapi.Services {
		r := gin.New()
		r.GET("/openapi.json", openapi.Handler(service))
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
		want, err := openapi.ForService(service)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") || !bytes.Equal(rec.Body.Bytes(), want) {
			t.Errorf("%s: GET /openapi.json answered %d %q, %d bytes; want 200 application/json, its part (%d bytes)",
				service, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len(), len(want))
		}
	}
}

func TestHandlerPanicsOnUnknownService(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Handler(billing) did not panic")
		}
	}()
	openapi.Handler("billing")
}

func TestPathSpellings(t *testing.T) {
	cases := map[string]string{
		"/events":            "/events",
		"/events/{event_id}": "/events/:event_id",
		"/admin/tenants/{tenant_id}/keys/{key_id}/roll": "/admin/tenants/:tenant_id/keys/:key_id/roll",
	}
	for doc, gin := range cases {
		if got := openapi.GinPath(doc); got != gin {
			t.Errorf("GinPath(%q) = %q, want %q", doc, got, gin)
		}
		if got := openapi.DocumentPath(gin); got != doc {
			t.Errorf("DocumentPath(%q) = %q, want %q", gin, got, doc)
		}
	}
}

// Document hands out a copy: a caller that edits it cannot change what the services serve.
func TestDocumentIsACopy(t *testing.T) {
	a := openapi.Document()
	a[0] = 'x'
	if b := openapi.Document(); b[0] == 'x' {
		t.Fatal("Document returned the embedded bytes themselves")
	}
}
