// Package apitest helps the services' handler tests: tenants and keys seeded straight into the
// store, requests through the real router, and checks of the error envelope.
package apitest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// SeedTenant creates an active tenant with the given partitions.
func SeedTenant(t testing.TB, s tenant.Store, id string, partitions int) {
	t.Helper()
	now := time.Now().UTC()
	err := s.CreateTenant(t.Context(), tenant.Tenant{
		ID: id, Name: id, Status: tenant.StatusActive, Partitions: partitions,
		MaxDeliveries: tenant.DefaultMaxDeliveries, RetentionDays: tenant.DefaultRetentionDays,
		CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		t.Fatalf("seed tenant %s: %v", id, err)
	}
}

// KeyOptions shape a seeded key.
type KeyOptions struct {
	Scopes    []tenant.Scope // nil: all
	Status    tenant.KeyStatus
	ExpiresAt time.Time
}

// SeedKey issues a key for tenantID straight into the store and returns the secret.
func SeedKey(t testing.TB, s tenant.Store, tenantID string, o KeyOptions) string {
	t.Helper()
	k, err := apikey.New(tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if o.Scopes == nil {
		o.Scopes = tenant.AllScopes
	}
	if o.Status == "" {
		o.Status = tenant.KeyActive
	}
	err = s.CreateKey(t.Context(), tenant.APIKey{
		ID: "key_" + k.Hash()[:24], TenantID: tenantID, Hash: k.Hash(), Prefix: k.Prefix(),
		Scopes: o.Scopes, Status: o.Status, CreatedAt: time.Now().UTC(), ExpiresAt: o.ExpiresAt,
	})
	if err != nil {
		t.Fatalf("seed key: %v", err)
	}
	return k.String()
}

// Request describes one call.
type Request struct {
	Method, Path, Key string
	Body              string
	ContentType       string // empty: application/json when Body is set
	Header            http.Header
}

// Response is a recorded answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends r through h.
func Do(t testing.TB, h http.Handler, r Request) Response {
	t.Helper()
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req := httptest.NewRequest(r.Method, r.Path, body)
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	if r.Key != "" {
		req.Header.Set("Authorization", "Bearer "+r.Key)
	}
	if r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	} else if r.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return Response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// JSON decodes the body into v.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
}

// Envelope is the error answer of every service.
type Envelope struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// ExpectError checks status, the envelope's code and that the request id matches the header.
func (r Response) ExpectError(t testing.TB, status int, code string) Envelope {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	var env Envelope
	r.JSON(t, &env)
	if env.Error.Code != code || env.Error.Message == "" {
		t.Fatalf("envelope %+v, want code %q", env.Error, code)
	}
	if env.Error.RequestID == "" || env.Error.RequestID != r.Header.Get("X-Request-Id") {
		t.Fatalf("request id %q vs header %q", env.Error.RequestID, r.Header.Get("X-Request-Id"))
	}
	return env
}
