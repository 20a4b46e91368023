package ingestapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/events"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/services/ingest/ingestapi"
)

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

type fixture struct {
	h       http.Handler
	tenants tenant.Store // unrecorded, for seeding
	events  events.Store // unrecorded, for checking
	rec     *ddb.Recorder
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	tables := shared.Tables(t)
	client, rec := shared.RecordingClient()
	f := &fixture{
		tenants: tenantdb.New(shared.Client, tables),
		events:  eventsdb.New(shared.Client, tables),
		rec:     rec,
	}
	f.h = ingestapi.NewRouter(ingestapi.Deps{
		Log:       zap.NewNop(),
		Publisher: queue.NewPublisher(eventsdb.New(client, tables), queue.Options{}),
		Auth:      tenant.NewAuthenticator(tenantdb.New(client, tables), tenant.AuthConfig{}, nil),
		Ready:     func(context.Context) error { return nil },
	})
	t.Cleanup(func() {
		for _, op := range rec.Outside(ddb.ComponentIngest) {
			t.Errorf("ingest called %s, which its IAM grant does not allow", op)
		}
	})
	return f
}

const seedBody = `{"event_type":"customer.created","customer_id":"123","email":"alice@example.com"}`

func post(t *testing.T, f *fixture, key, body string) apitest.Response {
	t.Helper()
	return apitest.Do(t, f.h, apitest.Request{Method: "POST", Path: "/events", Key: key, Body: body})
}

func TestIngestAccepted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	before := time.Now().UnixMilli()
	// Unusual spacing and key order: stored and returned byte for byte.
	body := "{\"amount\": 3200 ,\n \"event_type\":\"invoice.paid\",\"note\":\"caf\u00e9\"}"
	res := post(t, f, key, body)
	if res.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	var got struct {
		EventID    string `json:"event_id"`
		ReceivedAt int64  `json:"received_at"`
		Status     string `json:"status"`
	}
	res.JSON(t, &got)
	if !regexp.MustCompile(`^evt_[0-9a-f]{32}$`).MatchString(got.EventID) || got.Status != "accepted" ||
		got.ReceivedAt < before || got.ReceivedAt > time.Now().UnixMilli() {
		t.Fatalf("answer %+v", got)
	}
	if res.Header.Get("Location") != "/events/"+got.EventID {
		t.Fatalf("Location %q", res.Header.Get("Location"))
	}
	// The 202 came after the write: the event is there, read back consistently.
	e, err := f.events.Get(context.Background(), "acme", got.EventID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Payload) != body || e.Type != "invoice.paid" || e.Status != events.StatusUndelivered {
		t.Fatalf("stored %+v", e)
	}
	res = apitest.Do(t, f.h, apitest.Request{Method: "GET", Path: "/events/" + got.EventID, Key: key})
	var dto struct {
		EventID string          `json:"event_id"`
		Payload json.RawMessage `json:"payload"`
		Status  string          `json:"status"`
	}
	res.JSON(t, &dto)
	if res.Status != 200 || dto.EventID != got.EventID || !bytes.Equal(dto.Payload, []byte(body)) || dto.Status != "undelivered" {
		t.Fatalf("GET /events/{id}: %d %s", res.Status, res.Body)
	}
}

// TestHotPathOneCall checks that a known key costs no read: the write is the only call.
func TestHotPathOneCall(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	if res := post(t, f, key, seedBody); res.Status != 202 {
		t.Fatalf("warm-up: %d", res.Status)
	}
	f.rec.Reset()
	for range 5 {
		if res := post(t, f, key, seedBody); res.Status != 202 {
			t.Fatalf("status %d", res.Status)
		}
	}
	if got := f.rec.Counts(); len(got) != 1 || got["PutItem"] != 5 {
		t.Fatalf("5 ingests with a cached key made calls %v, want only 5 PutItem", got)
	}
}

func TestIngestRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	apitest.SeedTenant(t, f.tenants, "suspended", 1)
	if _, err := f.tenants.UpdateTenant(context.Background(), "suspended", tenant.StatusPatch(tenant.StatusSuspended), time.Now()); err != nil {
		t.Fatal(err)
	}
	good := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	revoked := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{Status: tenant.KeyRevoked})
	expired := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{ExpiresAt: time.Now().Add(-time.Second)})
	readOnly := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{Scopes: []tenant.Scope{tenant.ScopeInboxRead}})
	suspended := apitest.SeedKey(t, f.tenants, "suspended", apitest.KeyOptions{})
	deep := `{"event_type":"x","d":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`
	big := `{"event_type":"x","pad":"` + strings.Repeat("a", events.MaxEventBytes) + `"}`
	cases := []struct {
		name        string
		key, body   string
		contentType string
		header      http.Header
		status      int
		code        string
	}{
		{name: "ingest-401-missing-key", body: seedBody, status: 401, code: "unauthenticated"},
		{name: "ingest-401-basic-scheme", body: seedBody, header: http.Header{"Authorization": {"Basic " + good}}, status: 401, code: "unauthenticated"},
		{name: "ingest-401-malformed", key: "tenant_acme_live_8fc12bfe-29a8", body: seedBody, status: 401, code: "unauthenticated"},
		{name: "ingest-401-bad-checksum", key: good[:len(good)-1] + flip(good[len(good)-1]), body: seedBody, status: 401, code: "unauthenticated"},
		{name: "ingest-401-unknown", key: neverIssued(t), body: seedBody, status: 401, code: "unauthenticated"},
		{name: "ingest-401-revoked", key: revoked, body: seedBody, status: 401, code: "unauthenticated"},
		{name: "ingest-401-expired", key: expired, body: seedBody, status: 401, code: "unauthenticated"},
		{name: "ingest-401-suspended-tenant", key: suspended, body: seedBody, status: 401, code: "unauthenticated"},
		{name: "ingest-403-scope", key: readOnly, body: seedBody, status: 403, code: "forbidden"},
		{name: "ingest-400-not-json", key: good, body: `event_type=x`, status: 400, code: "invalid_json"},
		{name: "ingest-400-trailing", key: good, body: seedBody + `{}`, status: 400, code: "invalid_json"},
		{name: "ingest-400-invalid-utf8", key: good, body: "{\"event_type\":\"x\",\"s\":\"\xc3\x28\"}", status: 400, code: "invalid_json"},
		{name: "ingest-400-too-deep", key: good, body: deep, status: 400, code: "invalid_json"},
		{name: "ingest-400-duplicate-key", key: good, body: `{"event_type":"a","event_type":"b"}`, status: 400, code: "invalid_json"},
		{name: "ingest-400-array", key: good, body: `[` + seedBody + `]`, status: 400, code: "invalid_event"},
		{name: "ingest-400-type-missing", key: good, body: `{"customer_id":"123"}`, status: 400, code: "invalid_event"},
		{name: "ingest-400-type-not-string", key: good, body: `{"event_type":42}`, status: 400, code: "invalid_event"},
		{name: "ingest-400-type-empty", key: good, body: `{"event_type":""}`, status: 400, code: "invalid_event"},
		{name: "ingest-400-type-too-long", key: good, body: `{"event_type":"` + strings.Repeat("a", 129) + `"}`, status: 400, code: "invalid_event"},
		{name: "ingest-400-type-charset", key: good, body: `{"event_type":"customer created"}`, status: 400, code: "invalid_event"},
		{name: "ingest-413", key: good, body: big, status: 413, code: "payload_too_large"},
		{name: "ingest-415-text", key: good, body: seedBody, contentType: "text/plain", status: 415, code: "unsupported_media_type"},
		{name: "ingest-415-form", key: good, body: seedBody, contentType: "application/x-www-form-urlencoded", status: 415, code: "unsupported_media_type"},
	}
	var unauthorized []byte
	for _, tc := range cases {
		res := apitest.Do(t, f.h, apitest.Request{Method: "POST", Path: "/events", Key: tc.key, Body: tc.body, ContentType: tc.contentType, Header: tc.header})
		env := res.ExpectError(t, tc.status, tc.code)
		if tc.status == 401 {
			// Every refusal answers alike, whatever the reason.
			env.Error.RequestID = ""
			b, _ := json.Marshal(env)
			if unauthorized != nil && !bytes.Equal(b, unauthorized) {
				t.Errorf("%s: 401 body %s differs from %s", tc.name, b, unauthorized)
			}
			unauthorized = b
		}
	}
	// None of it stored anything.
	page, err := f.events.Inbox(context.Background(), events.InboxQuery{TenantID: "acme", Partitions: 1, Limit: 100, Now: time.Now()})
	if err != nil || len(page.Events) != 0 {
		t.Fatalf("refused requests stored %d events (err %v)", len(page.Events), err)
	}
}

// TestIngest413Streaming sends an oversized body without Content-Length through a real server:
// it is refused after the server read little more than the limit.
func TestIngest413Streaming(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	var counted *countingBody
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		counted = &countingBody{ReadCloser: r.Body}
		r.Body = counted
		f.h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	body := io.MultiReader(strings.NewReader(`{"event_type":"x","pad":"`), strings.NewReader(strings.Repeat("a", 8<<20)))
	req, _ := http.NewRequest("POST", srv.URL+"/events", body)
	req.ContentLength = -1 // chunked: the server cannot refuse on the header alone
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if counted.n > events.MaxEventBytes+64<<10 {
		t.Fatalf("handler read %d bytes of an oversized body", counted.n)
	}
}

type countingBody struct {
	io.ReadCloser
	n int
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += n
	return n, err
}

func TestGetEventCrossTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	apitest.SeedTenant(t, f.tenants, "globex", 1)
	acme := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	globex := apitest.SeedKey(t, f.tenants, "globex", apitest.KeyOptions{})
	var accepted struct {
		EventID string `json:"event_id"`
	}
	post(t, f, acme, seedBody).JSON(t, &accepted)
	cases := []struct{ name, key, path string }{
		{"get-404-other-tenant", globex, "/events/" + accepted.EventID},
		{"get-404-unknown", acme, "/events/" + events.NewID()},
		{"get-404-malformed-id", acme, "/events/evt_nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitest.Do(t, f.h, apitest.Request{Method: "GET", Path: tc.path, Key: tc.key}).ExpectError(t, 404, "not_found")
		})
	}
	if res := apitest.Do(t, f.h, apitest.Request{Method: "GET", Path: "/events/" + accepted.EventID, Key: acme}); res.Status != 200 {
		t.Fatalf("owner: %d", res.Status)
	}
}

func TestProbes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, p := range []string{"/livez", "/readyz"} {
		if res := apitest.Do(t, f.h, apitest.Request{Method: "GET", Path: p}); res.Status != 200 {
			t.Fatalf("%s: %d %s", p, res.Status, res.Body)
		}
	}
	apitest.Do(t, f.h, apitest.Request{Method: "GET", Path: "/nope"}).ExpectError(t, 404, "not_found")
	apitest.Do(t, f.h, apitest.Request{Method: "DELETE", Path: "/events"}).ExpectError(t, 405, "method_not_allowed")
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

// neverIssued is a well-formed key, checksum and all, that no store knows.
func neverIssued(t *testing.T) string {
	k, err := apikeyNew("acme")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
