package inboxapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/events"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/services/inbox/inboxapi"
)

type pulled struct {
	Events []struct {
		EventID        string          `json:"event_id"`
		Payload        json.RawMessage `json:"payload"`
		LeaseID        string          `json:"lease_id"`
		LeaseExpiresAt int64           `json:"lease_expires_at"`
		DeliveryCount  int             `json:"delivery_count"`
	} `json:"events"`
}

func call(t *testing.T, h http.Handler, key, method, path, body string) apitest.Response {
	t.Helper()
	return apitest.Do(t, h, apitest.Request{Method: method, Path: path, Key: key, Body: body})
}

func pull(t *testing.T, h http.Handler, key, body string) pulled {
	t.Helper()
	res := call(t, h, key, "POST", "/inbox/pull", body)
	if res.Status != 200 {
		t.Fatalf("pull: %d %s", res.Status, res.Body)
	}
	var p pulled
	res.JSON(t, &p)
	return p
}

type batchAnswer struct {
	Results []struct {
		EventID string `json:"event_id"`
		Status  string `json:"status"`
		Error   *struct {
			Code string `json:"code"`
		} `json:"error"`
	} `json:"results"`
	Succeeded int `json:"succeeded_count"`
	Failed    int `json:"failed_count"`
}

// clockFixture is the inbox on a clock the test moves, so lease expiry needs no waiting.
type clockFixture struct {
	*fixture
	now time.Time
}

func newClockFixture(t *testing.T) *clockFixture {
	tables := shared.Tables(t)
	cf := &clockFixture{fixture: &fixture{tenants: tenantdb.New(shared.Client, tables), events: eventsdb.New(shared.Client, tables)}, now: time.Now()}
	clock := func() time.Time { return cf.now }
	cf.h = inboxapi.NewRouter(inboxapi.Deps{
		Log:   zap.NewNop(),
		Inbox: queue.NewInbox(cf.events, queue.Options{Now: clock}),
		Auth:  tenant.NewAuthenticator(cf.tenants, tenant.AuthConfig{}, nil),
		Ready: func(context.Context) error { return nil },
	})
	return cf
}

func TestPullAckWithLease(t *testing.T) {
	t.Parallel()
	f := newClockFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	seeded := f.seedEvents(t, "acme", "customer.created", 3)
	ids := seeded

	first := pull(t, f.h, key, `{"max_events":2,"visibility_timeout_seconds":30}`)
	if len(first.Events) != 2 || first.Events[0].EventID != ids[0] || first.Events[1].EventID != ids[1] {
		t.Fatalf("first pull %+v", first)
	}
	for _, e := range first.Events {
		if !events.ValidLeaseID(e.LeaseID) || e.DeliveryCount != 1 || e.LeaseExpiresAt != f.now.Add(30*time.Second).UnixMilli() {
			t.Fatalf("leased %+v", e)
		}
	}
	// The leased events are hidden from the next pull and from GET /inbox.
	if second := pull(t, f.h, key, `{}`); len(second.Events) != 1 || second.Events[0].EventID != ids[2] {
		t.Fatalf("second pull %+v", second)
	}
	if _, a := f.inbox(t, key, ""); len(a.Events) != 0 {
		t.Fatalf("inbox lists %d leased events", len(a.Events))
	}

	// The pullers die. After the timeout all three events return with count 2.
	f.now = f.now.Add(31 * time.Second)
	again := pull(t, f.h, key, `{"max_events":5}`)
	live := map[string]string{}
	for _, e := range again.Events {
		if e.DeliveryCount != 2 {
			t.Fatalf("redelivered %+v", e)
		}
		live[e.EventID] = e.LeaseID
	}
	if len(live) != 3 || live[ids[0]] == "" || live[ids[1]] == "" {
		t.Fatalf("redelivery %+v", again)
	}
	stale := first.Events[0]
	call(t, f.h, key, "POST", "/ack", `{"event_id":"`+stale.EventID+`","lease_id":"`+stale.LeaseID+`"}`).ExpectError(t, 409, "lease_lost")
	if res := call(t, f.h, key, "POST", "/ack", `{"event_id":"`+stale.EventID+`","lease_id":"`+live[stale.EventID]+`"}`); res.Status != 200 {
		t.Fatalf("ack with the live lease: %d %s", res.Status, res.Body)
	}

	// A batch ack by leases: one live, one stale, one unknown.
	other := first.Events[1].EventID
	res := call(t, f.h, key, "POST", "/ack", fmt.Sprintf(`{"leases":[{"event_id":%q,"lease_id":%q},{"event_id":%q,"lease_id":%q},{"event_id":%q,"lease_id":%q}]}`,
		other, live[other], stale.EventID, stale.LeaseID, events.NewID(), stale.LeaseID))
	var b batchAnswer
	res.JSON(t, &b)
	if res.Status != 200 || b.Succeeded != 1 || b.Failed != 2 || b.Results[1].Error.Code != "lease_lost" || b.Results[2].Error.Code != "not_found" {
		t.Fatalf("batch ack by lease: %s", res.Body)
	}
}

func TestExtendAndNack(t *testing.T) {
	t.Parallel()
	f := newClockFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	ids := f.seedEvents(t, "acme", "a", 2)
	held := pull(t, f.h, key, `{"max_events":2,"visibility_timeout_seconds":10}`)
	lease0, lease1 := held.Events[0].LeaseID, held.Events[1].LeaseID

	res := call(t, f.h, key, "POST", "/inbox/extend", fmt.Sprintf(`{"leases":[{"event_id":%q,"lease_id":%q}],"visibility_timeout_seconds":600}`, ids[0], lease0))
	var b batchAnswer
	res.JSON(t, &b)
	if res.Status != 200 || b.Succeeded != 1 || b.Results[0].Status != "extended" {
		t.Fatalf("extend: %d %s", res.Status, res.Body)
	}
	res = call(t, f.h, key, "POST", "/nack", fmt.Sprintf(`{"leases":[{"event_id":%q,"lease_id":%q}],"delay_seconds":60}`, ids[1], lease1))
	if res.JSON(t, &b); res.Status != 200 || b.Succeeded != 1 || b.Results[0].Status != "nacked" {
		t.Fatalf("nack: %d %s", res.Status, res.Body)
	}
	f.now = f.now.Add(30 * time.Second) // past the first timeout, before the nack delay
	if p := pull(t, f.h, key, `{}`); len(p.Events) != 0 {
		t.Fatalf("pulled during an extension or a nack delay: %+v", p)
	}
	f.now = f.now.Add(31 * time.Second)
	p := pull(t, f.h, key, `{}`)
	if len(p.Events) != 1 || p.Events[0].EventID != ids[1] || p.Events[0].DeliveryCount != 2 {
		t.Fatalf("after the nack delay: %+v", p)
	}
	// The nacked lease is gone: extending it is refused per item.
	res = call(t, f.h, key, "POST", "/inbox/extend", fmt.Sprintf(`{"leases":[{"event_id":%q,"lease_id":%q}],"visibility_timeout_seconds":5}`, ids[1], lease1))
	if res.JSON(t, &b); b.Failed != 1 || b.Results[0].Error.Code != "lease_lost" {
		t.Fatalf("extend of a dropped lease: %s", res.Body)
	}
}

func TestDeadLettersAndRedrive(t *testing.T) {
	t.Parallel()
	f := newClockFixture(t)
	f.seedTenantWithMaxDeliveries(t, "acme", 2)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	ids := f.seedEvents(t, "acme", "a", 1)
	for range 2 {
		if p := pull(t, f.h, key, `{"visibility_timeout_seconds":1}`); len(p.Events) != 1 {
			t.Fatalf("pull: %+v", p)
		}
		f.now = f.now.Add(2 * time.Second)
	}
	if p := pull(t, f.h, key, `{}`); len(p.Events) != 0 {
		t.Fatalf("a third delivery over max_deliveries 2: %+v", p)
	}
	res := call(t, f.h, key, "GET", "/inbox/dead", "")
	var dead inboxAnswer
	if res.JSON(t, &dead); res.Status != 200 || len(dead.Events) != 1 || dead.Events[0].EventID != ids[0] {
		t.Fatalf("dead list: %d %s", res.Status, res.Body)
	}
	res = call(t, f.h, key, "POST", "/inbox/redrive", `{"all":true}`)
	if res.Status != 200 || !strings.Contains(string(res.Body), `"redriven_count":1`) {
		t.Fatalf("redrive all: %d %s", res.Status, res.Body)
	}
	p := pull(t, f.h, key, `{}`)
	if len(p.Events) != 1 || p.Events[0].DeliveryCount != 1 {
		t.Fatalf("after redrive: %+v", p)
	}
	var b batchAnswer
	res = call(t, f.h, key, "POST", "/inbox/redrive", `{"event_ids":["`+ids[0]+`","`+events.NewID()+`"]}`)
	if res.JSON(t, &b); b.Failed != 2 || b.Results[0].Error.Code != "not_dead" || b.Results[1].Error.Code != "not_found" {
		t.Fatalf("redrive of a live and an unknown event: %s", res.Body)
	}
}

func (f *fixture) seedTenantWithMaxDeliveries(t *testing.T, id string, maxDeliveries int) {
	t.Helper()
	f.seedTenantWithLimits(t, id, maxDeliveries, 0)
}

// seedTenantWithLimits seeds a one-partition tenant with its own max_deliveries and rate_limit
// (0: the service's default).
func (f *fixture) seedTenantWithLimits(t *testing.T, id string, maxDeliveries, rate int) {
	t.Helper()
	now := time.Now()
	err := f.tenants.CreateTenant(context.Background(), tenant.Tenant{ID: id, Name: id, Status: tenant.StatusActive,
		Partitions: 1, MaxDeliveries: maxDeliveries, RetentionDays: 7, RateLimit: rate, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLongPoll: a waiting pull returns the event ingested while it waits as soon as it is
// told of it, long before its wait runs out, and a pull whose client leaves stops waiting.
func TestLongPoll(t *testing.T) {
	t.Parallel()
	tables := shared.Tables(t)
	store := eventsdb.New(shared.Client, tables)
	tenants := tenantdb.New(shared.Client, tables)
	watch := queue.NewInbox(store, queue.Options{})
	h := inboxapi.NewRouter(inboxapi.Deps{Log: zap.NewNop(), Inbox: watch,
		Auth:  tenant.NewAuthenticator(tenants, tenant.AuthConfig{}, nil),
		Ready: func(context.Context) error { return nil }})
	apitest.SeedTenant(t, tenants, "acme", 4)
	key := apitest.SeedKey(t, tenants, "acme", apitest.KeyOptions{})
	srv := httptest.NewServer(h)
	defer srv.Close()

	type answer struct {
		p   pulled
		err error
	}
	done := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", srv.URL+"/inbox/pull", strings.NewReader(`{"wait_seconds":20}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer res.Body.Close()
		var a answer
		a.err = json.NewDecoder(res.Body).Decode(&a.p)
		done <- a
	}()
	waitFor(t, "the condition", func() bool { return watch.Waiting("acme") == 1 })
	e := events.New("acme", "a", []byte(`{"event_type":"a"}`), 4, time.Now())
	if err := store.Put(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	watch.Notify(queue.Notice{TenantID: "acme", Partition: e.Partition, Count: 1, VisibleAt: e.VisibleAt})
	put := time.Now()
	a := <-done
	if a.err != nil || len(a.p.Events) != 1 || a.p.Events[0].EventID != e.ID {
		t.Fatalf("long poll answer %+v %v", a.p, a.err)
	}
	// Not a performance claim (make bench measures that): only that it did not sit out its wait.
	if waited := time.Since(put); waited > 5*time.Second {
		t.Fatalf("long poll returned %v after the event arrived", waited)
	}
	t.Logf("long poll returned %v after the event was stored", time.Since(put))

	// A client that goes away releases its wait.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/inbox/pull", strings.NewReader(`{"wait_seconds":20}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	waitFor(t, "the condition", func() bool { return watch.Waiting("acme") == 1 })
	cancel()
	waitFor(t, "the condition", func() bool { return watch.Waiting("acme") == 0 })
}

// waitFor polls cond until it holds, failing after thirty seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConsumerBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	apitest.SeedTenant(t, f.tenants, "globex", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	readOnly := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{Scopes: []tenant.Scope{tenant.ScopeInboxRead}})
	ackOnly := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{Scopes: []tenant.Scope{tenant.ScopeInboxAck}})
	theirs := f.seedEvents(t, "globex", "a", 1)[0]
	id := events.NewID()
	lease := events.NewLeaseID()
	many := make([]string, 101)
	for i := range many {
		many[i] = `"` + events.NewID() + `"`
	}
	cases := []struct {
		name, key, path, body string
		status                int
		code                  string
	}{
		{"pull-403-scope", readOnly, "/inbox/pull", `{}`, 403, "forbidden"},
		{"pull-400-max-0", key, "/inbox/pull", `{"max_events":0}`, 400, "invalid_request"},
		{"pull-400-max-101", key, "/inbox/pull", `{"max_events":101}`, 400, "invalid_request"},
		{"pull-400-visibility-0", key, "/inbox/pull", `{"visibility_timeout_seconds":0}`, 400, "invalid_request"},
		{"pull-400-visibility-over", key, "/inbox/pull", `{"visibility_timeout_seconds":43201}`, 400, "invalid_request"},
		{"pull-400-wait-21", key, "/inbox/pull", `{"wait_seconds":21}`, 400, "invalid_request"},
		{"pull-400-wait-negative", key, "/inbox/pull", `{"wait_seconds":-1}`, 400, "invalid_request"},
		{"pull-400-unknown-field", key, "/inbox/pull", `{"max":1}`, 400, "invalid_request"},
		{"pull-400-wrong-type", key, "/inbox/pull", `{"max_events":"5"}`, 400, "invalid_request"},
		{"extend-403-scope", readOnly, "/inbox/extend", `{"leases":[{"event_id":"` + id + `","lease_id":"` + lease + `"}],"visibility_timeout_seconds":5}`, 403, "forbidden"},
		{"extend-400-no-visibility", key, "/inbox/extend", `{"leases":[{"event_id":"` + id + `","lease_id":"` + lease + `"}]}`, 400, "invalid_request"},
		{"extend-400-empty", key, "/inbox/extend", `{"leases":[],"visibility_timeout_seconds":5}`, 400, "invalid_request"},
		{"extend-400-bad-lease", key, "/inbox/extend", `{"leases":[{"event_id":"` + id + `","lease_id":"x"}],"visibility_timeout_seconds":5}`, 400, "invalid_request"},
		{"extend-400-duplicate", key, "/inbox/extend", `{"leases":[{"event_id":"` + id + `","lease_id":"` + lease + `"},{"event_id":"` + id + `","lease_id":"` + lease + `"}],"visibility_timeout_seconds":5}`, 400, "invalid_request"},
		{"nack-400-neither", key, "/nack", `{"delay_seconds":5}`, 400, "invalid_request"},
		{"nack-400-bad-traceparent", key, "/nack", `{"leases":[{"event_id":"` + id + `","lease_id":"` + lease + `","trace_context":{"traceparent":"00-nope"}}]}`, 400, "invalid_request"},
		{"ack-400-empty-trace-context", key, "/ack", `{"leases":[{"event_id":"` + id + `","lease_id":"` + lease + `","trace_context":{}}]}`, 400, "invalid_request"},
		{"ack-400-zero-trace-id", key, "/ack", `{"leases":[{"event_id":"` + id + `","lease_id":"` + lease + `","trace_context":{"traceparent":"00-00000000000000000000000000000000-b7ad6b7169203331-01"}}]}`, 400, "invalid_request"},
		{"nack-400-both", key, "/nack", `{"event_ids":["` + id + `"],"leases":[{"event_id":"` + id + `","lease_id":"` + lease + `"}]}`, 400, "invalid_request"},
		{"nack-400-delay", key, "/nack", `{"event_ids":["` + id + `"],"delay_seconds":43201}`, 400, "invalid_request"},
		{"nack-400-over-100", key, "/nack", `{"event_ids":[` + strings.Join(many, ",") + `]}`, 400, "invalid_request"},
		{"nack-400-duplicates", key, "/nack", `{"event_ids":["` + id + `","` + id + `"]}`, 400, "invalid_request"},
		{"ack-400-duplicate-key", key, "/ack", `{"event_id":"` + id + `","event_id":"` + theirs + `"}`, 400, "invalid_json"},
		{"list-400-malformed-query", key, "/inbox?limit=%%5", "", 400, "invalid_request"},
		{"ack-400-bad-lease", key, "/ack", `{"event_id":"` + id + `","lease_id":"lse_nope"}`, 400, "invalid_request"},
		{"ack-400-lease-without-id", key, "/ack", `{"event_ids":["` + id + `"],"lease_id":"` + lease + `"}`, 400, "invalid_request"},
		{"ack-404-lease-other-tenant", key, "/ack", `{"event_id":"` + theirs + `","lease_id":"` + lease + `"}`, 404, "not_found"},
		{"redrive-400-all-false", key, "/inbox/redrive", `{"all":false}`, 400, "invalid_request"},
		{"redrive-400-empty", key, "/inbox/redrive", `{"event_ids":[]}`, 400, "invalid_request"},
		{"redrive-403-scope", readOnly, "/inbox/redrive", `{"all":true}`, 403, "forbidden"},
		{"dead-400-limit", key, "/inbox/dead?limit=0", "", 400, "invalid_request"},
		{"dead-400-inbox-cursor", key, "/inbox/dead?cursor=" + events.EncodeCursor("acme", events.ListInbox, events.Position{VisibleAt: time.Now(), EventID: id}), "", 400, "invalid_cursor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := "POST"
			if tc.body == "" {
				method = "GET"
			}
			call(t, f.h, tc.key, method, tc.path, tc.body).ExpectError(t, tc.status, tc.code)
		})
	}
	// Pulling is consuming: the consume scope alone is enough.
	if res := call(t, f.h, ackOnly, "POST", "/inbox/pull", `{}`); res.Status != 200 {
		t.Fatalf("pull with only inbox:ack: %d %s", res.Status, res.Body)
	}
	// Another tenant's event is untouched by all of it, and per-item calls on it answer not_found.
	var b batchAnswer
	res := call(t, f.h, key, "POST", "/nack", `{"event_ids":["`+theirs+`"]}`)
	if res.JSON(t, &b); b.Failed != 1 || b.Results[0].Error.Code != "not_found" {
		t.Fatalf("nack of another tenant's event: %s", res.Body)
	}
	if e, err := f.events.Get(context.Background(), "globex", theirs, time.Now()); err != nil || e.Status != events.StatusUndelivered || e.DeliveryCount != 0 {
		t.Fatalf("globex's event changed: %+v %v", e, err)
	}
}
