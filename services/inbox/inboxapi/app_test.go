package inboxapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
	"github.com/trigger-api/trigger-api/services/inbox/inboxapi"
)

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

type fixture struct {
	h       http.Handler
	tenants tenant.Store
	events  events.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	tables := shared.Tables(t)
	client, rec := shared.RecordingClient()
	f := &fixture{tenants: tenantdb.New(shared.Client, tables), events: eventsdb.New(shared.Client, tables)}
	f.h = inboxapi.NewRouter(inboxapi.Deps{
		Log:   zap.NewNop(),
		Inbox: queue.NewInbox(eventsdb.New(client, tables), queue.Options{}),
		Auth:  tenant.NewAuthenticator(tenantdb.New(client, tables), tenant.AuthConfig{}, nil),
		Ready: func(context.Context) error { return nil },
	})
	t.Cleanup(func() {
		for _, op := range rec.Outside(ddb.ComponentInbox) {
			t.Errorf("inbox called %s, which its IAM grant does not allow", op)
		}
	})
	return f
}

// seedEvents stores n events for tenantID, one millisecond apart, oldest first.
func (f *fixture) seedEvents(t *testing.T, tenantID, typ string, n int) []string {
	t.Helper()
	start := time.Now().Add(-time.Minute)
	ids := make([]string, n)
	for i := range n {
		body := fmt.Sprintf(`{"event_type":%q,"i":%d}`, typ, i)
		e := events.New(tenantID, typ, []byte(body), 1, start.Add(time.Duration(i)*time.Millisecond))
		if err := f.events.Put(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		ids[i] = e.ID
	}
	return ids
}

type inboxAnswer struct {
	Events []struct {
		EventID   string          `json:"event_id"`
		EventType string          `json:"event_type"`
		Payload   json.RawMessage `json:"payload"`
		Timestamp int64           `json:"timestamp"`
	} `json:"events"`
	NextCursor string `json:"next_cursor"`
}

func (f *fixture) inbox(t *testing.T, key, query string) (apitest.Response, inboxAnswer) {
	t.Helper()
	res := apitest.Do(t, f.h, apitest.Request{Method: "GET", Path: "/inbox" + query, Key: key})
	var a inboxAnswer
	if res.Status == 200 {
		res.JSON(t, &a)
	}
	return res, a
}

func ids(a inboxAnswer) []string {
	out := make([]string, len(a.Events))
	for i, e := range a.Events {
		out[i] = e.EventID
	}
	return out
}

func TestInboxListsOwnEventsOldestFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	apitest.SeedTenant(t, f.tenants, "globex", 1)
	acme := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	globex := apitest.SeedKey(t, f.tenants, "globex", apitest.KeyOptions{})
	want := f.seedEvents(t, "acme", "customer.created", 7)
	other := f.seedEvents(t, "globex", "invoice.paid", 3)

	res, a := f.inbox(t, acme, "")
	if res.Status != 200 || fmt.Sprint(ids(a)) != fmt.Sprint(want) || a.NextCursor != "" {
		t.Fatalf("acme inbox %d: %s", res.Status, res.Body)
	}
	if string(a.Events[0].Payload) != `{"event_type":"customer.created","i":0}` || a.Events[0].Timestamp == 0 {
		t.Fatalf("first event %+v", a.Events[0])
	}
	if _, b := f.inbox(t, globex, ""); fmt.Sprint(ids(b)) != fmt.Sprint(other) {
		t.Fatalf("globex inbox %v, want %v", ids(b), other)
	}

	// Pages of 3 with the cursor walk the same sequence.
	var walked []string
	q := "?limit=3"
	for range 5 {
		res, page := f.inbox(t, acme, q)
		if res.Status != 200 || len(page.Events) > 3 {
			t.Fatalf("page %d: %s", res.Status, res.Body)
		}
		walked = append(walked, ids(page)...)
		if page.NextCursor == "" {
			break
		}
		q = "?limit=3&cursor=" + page.NextCursor
	}
	if fmt.Sprint(walked) != fmt.Sprint(want) {
		t.Fatalf("paged %v, want %v", walked, want)
	}
	// Reading leases nothing: the same events are still there.
	if _, again := f.inbox(t, acme, ""); len(again.Events) != len(want) {
		t.Fatalf("inbox changed after reads: %d events", len(again.Events))
	}
}

func TestInboxEventTypeFilter(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	f.seedEvents(t, "acme", "customer.created", 4)
	paid := f.seedEvents(t, "acme", "invoice.paid", 2)
	_, a := f.inbox(t, key, "?event_type=invoice.paid")
	if fmt.Sprint(ids(a)) != fmt.Sprint(paid) {
		t.Fatalf("filtered %v, want %v", ids(a), paid)
	}
}

func TestInboxBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	apitest.SeedTenant(t, f.tenants, "globex", 1)
	acme := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	globex := apitest.SeedKey(t, f.tenants, "globex", apitest.KeyOptions{})
	ackOnly := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{Scopes: []tenant.Scope{tenant.ScopeInboxAck}})
	f.seedEvents(t, "globex", "a", 3)
	_, g := f.inbox(t, globex, "?limit=1")
	if g.NextCursor == "" {
		t.Fatal("globex's first page has no cursor")
	}
	cases := []struct {
		name, key, query string
		status           int
		code             string
	}{
		{"inbox-401-missing-key", "", "", 401, "unauthenticated"},
		{"inbox-401-malformed-key", "tenant_acme_live_8fc12bfe-29a8", "", 401, "unauthenticated"},
		{"inbox-403-scope", ackOnly, "", 403, "forbidden"},
		{"inbox-400-limit-0", acme, "?limit=0", 400, "invalid_request"},
		{"inbox-400-limit-101", acme, "?limit=101", 400, "invalid_request"},
		{"inbox-400-limit-text", acme, "?limit=ten", 400, "invalid_request"},
		{"inbox-400-limit-empty", acme, "?limit=", 400, "invalid_request"},
		{"inbox-400-cursor-malformed", acme, "?cursor=not-a-cursor", 400, "invalid_cursor"},
		{"inbox-400-cursor-other-tenant", acme, "?cursor=" + g.NextCursor, 400, "invalid_cursor"},
		{"inbox-400-event-type", acme, "?event_type=a%20b", 400, "invalid_event"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := f.inbox(t, tc.key, tc.query)
			res.ExpectError(t, tc.status, tc.code)
		})
	}
}

func ack(t *testing.T, f *fixture, key, body string) apitest.Response {
	t.Helper()
	return apitest.Do(t, f.h, apitest.Request{Method: "POST", Path: "/ack", Key: key, Body: body})
}

func TestAckSingle(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	id := f.seedEvents(t, "acme", "a", 2)
	for range 2 { // the second ack is a no-op that still answers 200
		res := ack(t, f, key, `{"event_id":"`+id[0]+`"}`)
		if res.Status != 200 || strings.TrimSpace(string(res.Body)) != `{"status":"acknowledged"}` {
			t.Fatalf("ack: %d %s", res.Status, res.Body)
		}
	}
	e, err := f.events.Get(context.Background(), "acme", id[0], time.Now())
	if err != nil || e.Status != events.StatusDelivered {
		t.Fatalf("after ack: %+v %v", e, err)
	}
	if _, a := f.inbox(t, key, ""); fmt.Sprint(ids(a)) != fmt.Sprint(id[1:]) {
		t.Fatalf("inbox after ack %v", ids(a))
	}
}

func TestAckBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	apitest.SeedTenant(t, f.tenants, "globex", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	mine := f.seedEvents(t, "acme", "a", 3)
	theirs := f.seedEvents(t, "globex", "a", 1)
	if res := ack(t, f, key, `{"event_id":"`+mine[2]+`"}`); res.Status != 200 {
		t.Fatal(res.Status)
	}
	unknown := events.NewID()
	list := []string{mine[0], theirs[0], mine[1], unknown, mine[2], "evt_bad"}
	body, _ := json.Marshal(map[string]any{"event_ids": list})
	res := ack(t, f, key, string(body))
	var got struct {
		Results []struct {
			EventID string `json:"event_id"`
			Status  string `json:"status"`
			Error   *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
		Acked  int `json:"succeeded_count"`
		Failed int `json:"failed_count"`
	}
	res.JSON(t, &got)
	if res.Status != 200 || len(got.Results) != len(list) || got.Acked != 3 || got.Failed != 3 {
		t.Fatalf("batch: %d %s", res.Status, res.Body)
	}
	for i, r := range got.Results {
		wantOK := list[i] == mine[0] || list[i] == mine[1] || list[i] == mine[2]
		if r.EventID != list[i] || wantOK != (r.Status == "acknowledged") || !wantOK && (r.Error == nil || r.Error.Code != "not_found") {
			t.Fatalf("result %d for %s: %+v", i, list[i], r)
		}
	}
	if e, _ := f.events.Get(context.Background(), "globex", theirs[0], time.Now()); e.Status != events.StatusUndelivered {
		t.Fatalf("another tenant's event changed: %+v", e)
	}
}

func TestAckBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	apitest.SeedTenant(t, f.tenants, "globex", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	readOnly := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{Scopes: []tenant.Scope{tenant.ScopeInboxRead}})
	theirs := f.seedEvents(t, "globex", "a", 1)
	mine := f.seedEvents(t, "acme", "a", 1)
	many := make([]string, 101)
	for i := range many {
		many[i] = events.NewID()
	}
	manyBody, _ := json.Marshal(map[string]any{"event_ids": many})
	cases := []struct {
		name, key, body, contentType string
		status                       int
		code                         string
	}{
		{"ack-401-missing-key", "", `{"event_id":"` + mine[0] + `"}`, "", 401, "unauthenticated"},
		{"ack-403-scope", readOnly, `{"event_id":"` + mine[0] + `"}`, "", 403, "forbidden"},
		{"ack-404-unknown", key, `{"event_id":"` + events.NewID() + `"}`, "", 404, "not_found"},
		{"ack-404-other-tenant", key, `{"event_id":"` + theirs[0] + `"}`, "", 404, "not_found"},
		{"ack-404-malformed-id", key, `{"event_id":"evt_b1cb3"}`, "", 404, "not_found"},
		{"ack-400-not-json", key, `event_id=1`, "", 400, "invalid_json"},
		{"ack-400-trailing", key, `{"event_id":"` + mine[0] + `"} {}`, "", 400, "invalid_json"},
		{"ack-400-empty-object", key, `{}`, "", 400, "invalid_request"},
		{"ack-400-both", key, `{"event_id":"` + mine[0] + `","event_ids":["` + mine[0] + `"]}`, "", 400, "invalid_request"},
		{"ack-400-unknown-field", key, `{"event_id":"` + mine[0] + `","extra":1}`, "", 400, "invalid_request"},
		{"ack-400-id-not-string", key, `{"event_id":42}`, "", 400, "invalid_request"},
		{"ack-400-empty-list", key, `{"event_ids":[]}`, "", 400, "invalid_request"},
		{"ack-400-over-100", key, string(manyBody), "", 400, "invalid_request"},
		{"ack-400-duplicates", key, `{"event_ids":["` + mine[0] + `","` + mine[0] + `"]}`, "", 400, "invalid_request"},
		{"ack-415", key, `{"event_id":"` + mine[0] + `"}`, "text/plain", 415, "unsupported_media_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := apitest.Do(t, f.h, apitest.Request{Method: "POST", Path: "/ack", Key: tc.key, Body: tc.body, ContentType: tc.contentType})
			res.ExpectError(t, tc.status, tc.code)
		})
	}
	// Nothing above acknowledged anything.
	for tenantID, id := range map[string]string{"acme": mine[0], "globex": theirs[0]} {
		if e, err := f.events.Get(context.Background(), tenantID, id, time.Now()); err != nil || e.Status != events.StatusUndelivered {
			t.Fatalf("%s's event changed: %+v %v", tenantID, e, err)
		}
	}
}
