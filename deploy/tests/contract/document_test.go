package contract_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/trigger-api/trigger-api/deploy/tests/contract"
	"github.com/trigger-api/trigger-api/pkg/openapi"
)

// TestDocumentValidates loads the whole document and each service's part with kin-openapi:
// OpenAPI 3.1 structure, every $ref, every schema, and every example and default against its
// schema.
func TestDocumentValidates(t *testing.T) {
	if _, err := contract.Load(context.Background(), openapi.Document()); err != nil {
		t.Fatalf("the document: %v", err)
	}
	for _, service := range openapi.Services {
		part, err := openapi.ForService(service)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := contract.Load(context.Background(), part); err != nil {
			t.Errorf("%s's part: %v", service, err)
		}
	}
}

// TestBrokenDocumentsAreRefused shows the validation above can fail: each edit breaks the
// document in one way it must catch.
func TestBrokenDocumentsAreRefused(t *testing.T) {
	cases := []struct{ name, from, to string }{
		{"example-breaks-pattern",
			`"example": { "event_id": "evt_0f8fad5bd9cb469fa16570867728950e", "received_at": 1732140249123, "status": "accepted" }`,
			`"example": { "event_id": "evt_0f8f", "received_at": 1732140249123, "status": "accepted" }`},
		{"example-has-unknown-field",
			`"example": { "event_id": "evt_0f8fad5bd9cb469fa16570867728950e", "received_at": 1732140249123, "status": "accepted" }`,
			`"example": { "event_id": "evt_0f8fad5bd9cb469fa16570867728950e", "received_at": 1732140249123, "status": "accepted", "x": 1 }`},
		{"dangling-ref", `"$ref": "#/components/responses/Forbidden"`, `"$ref": "#/components/responses/Forbiden"`},
		{"default-out-of-range", `"default": 50`, `"default": 500`},
		{"unknown-top-level-field", `"openapi": "3.1.0",`, `"openapi": "3.1.0", "servers2": [],`},
		{"malformed-required", `"required": ["event_type"],`, `"required": "event_type",`},
		{"openapi-3.0", `"openapi": "3.1.0"`, `"openapi": "3.0.3"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			broken := bytes.Replace(openapi.Document(), []byte(tc.from), []byte(tc.to), 1)
			if bytes.Equal(broken, openapi.Document()) {
				t.Fatalf("the document no longer holds %s", tc.from)
			}
			if _, err := contract.Load(context.Background(), broken); err == nil {
				t.Fatal("the broken document loads")
			}
		})
	}
}

// TestValidatorCatchesNonconformingTraffic shows the exchange checks can fail: each exchange
// breaks the contract in one way.
func TestValidatorCatchesNonconformingTraffic(t *testing.T) {
	v := loadDocument(t)
	const (
		key   = "tenant_acme_live_Xb3kQ9vT2mL8pR4sN7wZ1cF6hJ0dG5yAk2Lm9Q"
		id    = "evt_0f8fad5bd9cb469fa16570867728950e"
		reqID = "req_3f2a9c1d7e5b4a6f8c0d2e1b"
	)
	accepted := `{"event_id":"` + id + `","received_at":1732140249123,"status":"accepted"}`
	headers := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "X-Request-Id": {reqID}, "Location": {"/events/" + id}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				h.Del(kv[i])
			} else {
				h.Set(kv[i], kv[i+1])
			}
		}
		return h
	}
	post := func(body string, kv ...string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+key)
		for i := 0; i+1 < len(kv); i += 2 {
			r.Header.Set(kv[i], kv[i+1])
		}
		return r
	}
	seed := `{"event_type":"customer.created","customer_id":"123"}`
	cases := []struct {
		name                string
		req                 *http.Request
		reqBody             string
		status              int
		header              http.Header
		body                string
		badRequest, badResp bool
	}{
		{name: "conforms", req: post(seed), reqBody: seed, status: 202, header: headers(), body: accepted},
		{name: "answer-has-unknown-field", req: post(seed), reqBody: seed, status: 202, header: headers(),
			body: strings.TrimSuffix(accepted, "}") + `,"extra":true}`, badResp: true},
		{name: "answer-lacks-a-field", req: post(seed), reqBody: seed, status: 202, header: headers(),
			body: `{"event_id":"` + id + `","status":"accepted"}`, badResp: true},
		{name: "undocumented-status", req: post(seed), reqBody: seed, status: 418, header: headers(), body: `{}`, badResp: true},
		{name: "missing-location", req: post(seed), reqBody: seed, status: 202, header: headers("Location", ""), body: accepted, badResp: true},
		{name: "missing-request-id", req: post(seed), reqBody: seed, status: 202, header: headers("X-Request-Id", ""), body: accepted, badResp: true},
		{name: "replay-without-marker", req: post(seed), reqBody: seed, status: 200, header: headers(), body: accepted, badResp: true},
		{name: "request-id-not-echoed", req: post(seed, "X-Request-Id", "mine-1"), reqBody: seed, status: 202, header: headers(), body: accepted, badResp: true},
		{name: "envelope-request-id-differs", req: post(seed), reqBody: seed, status: 403, header: headers(),
			body: `{"error":{"code":"forbidden","message":"no","request_id":"req_other"}}`, badResp: true},
		{name: "wrong-code-for-status", req: post(seed), reqBody: seed, status: 403, header: headers(),
			body: `{"error":{"code":"not_found","message":"no","request_id":"` + reqID + `"}}`, badResp: true},
		{name: "503-without-retry-after", req: post(seed), reqBody: seed, status: 503, header: headers(),
			body: `{"error":{"code":"unavailable","message":"later","request_id":"` + reqID + `"}}`, badResp: true},
		{name: "401-without-www-authenticate", req: post(seed), reqBody: seed, status: 401, header: headers(),
			body: `{"error":{"code":"unauthenticated","message":"no","request_id":"` + reqID + `"}}`, badResp: true},
		{name: "request-without-event-type", req: post(`{"customer_id":"123"}`), reqBody: `{"customer_id":"123"}`, status: 202, header: headers(), body: accepted, badRequest: true},
		{name: "request-with-a-malformed-key", req: post(seed, "Authorization", "Bearer tenant_acme_live_8fc12bfe-29a8"), reqBody: seed, status: 202, header: headers(), body: accepted, badRequest: true},
		{name: "request-without-credentials", req: post(seed, "Authorization", ""), reqBody: seed, status: 202, header: headers(), body: accepted, badRequest: true},
		{name: "request-not-json", req: post(seed, "Content-Type", "text/plain"), reqBody: seed, status: 202, header: headers(), body: accepted, badRequest: true},
		{name: "request-with-trailing-data", req: post(seed + ` {}`), reqBody: seed + ` {}`, status: 202, header: headers(), body: accepted, badRequest: true},
		{name: "answer-with-trailing-data", req: post(seed), reqBody: seed, status: 202, header: headers(), body: accepted + ` {}`, badResp: true},
		{name: "no-route-answers-200", req: httptest.NewRequest(http.MethodGet, "/nope", nil), status: 200, header: headers(), body: `{}`, badResp: true},
		{name: "no-method-answers-404", req: httptest.NewRequest(http.MethodDelete, "/events", nil), status: 404, header: headers(),
			body: `{"error":{"code":"not_found","message":"no","request_id":"` + reqID + `"}}`, badResp: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := v.Check(context.Background(), contract.Exchange{
				Request: tc.req, RequestBody: []byte(tc.reqBody), Status: tc.status, Header: tc.header, Body: []byte(tc.body),
			})
			if (res.Request != nil) != tc.badRequest {
				t.Errorf("request verdict %v, want bad=%v", res.Request, tc.badRequest)
			}
			if (res.Response != nil) != tc.badResp {
				t.Errorf("answer verdict %v, want bad=%v", res.Response, tc.badResp)
			}
		})
	}
}

// TestCoverageNamesWhatWasNotSeen shows the contract run's final check can fail: a documented
// answer nothing produced, and an answer nothing documents, are both named.
func TestCoverageNamesWhatWasNotSeen(t *testing.T) {
	v := loadDocument(t)
	documented := v.Documented()
	if len(documented) == 0 || !slices.Equal(v.Unseen(), documented) {
		t.Fatalf("before any exchange: unseen %d of %d documented answers", len(v.Unseen()), len(documented))
	}
	ok := httptest.NewRequest(http.MethodGet, "/livez", nil)
	v.Check(context.Background(), contract.Exchange{Request: ok, Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"status":"ok"}`)})
	v.Check(context.Background(), contract.Exchange{Request: ok, Status: 418, Header: http.Header{}, Body: []byte(`{}`)})
	if slices.Contains(v.Unseen(), "GET /livez 200") || len(v.Unseen()) != len(documented)-1 {
		t.Errorf("after GET /livez 200, unseen still %d of %d", len(v.Unseen()), len(documented))
	}
	if got := v.Undocumented(); !slices.Equal(got, []string{"GET /livez 418"}) {
		t.Errorf("undocumented %v, want [GET /livez 418]", got)
	}
}
