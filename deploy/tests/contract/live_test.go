package contract_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/events"
)

// Shapes the run reads back; the document checks the rest of every answer.
type (
	issuedKey struct {
		KeyID  string `json:"key_id"`
		APIKey string `json:"api_key"`
	}
	acceptedEvent struct {
		EventID  string `json:"event_id"`
		Replayed bool   `json:"replayed"`
		Error    *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	listedEvent struct {
		EventID       string `json:"event_id"`
		EventType     string `json:"event_type"`
		Timestamp     int64  `json:"timestamp"`
		Status        string `json:"status"`
		DeliveryCount int    `json:"delivery_count"`
		LeaseID       string `json:"lease_id"`
	}
	eventPage struct {
		Events     []listedEvent `json:"events"`
		NextCursor string        `json:"next_cursor"`
	}
	itemResults struct {
		Results []struct {
			EventID  string `json:"event_id"`
			Status   string `json:"status"`
			Replayed bool   `json:"replayed"`
			Error    *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
		Succeeded int `json:"succeeded_count"`
		Failed    int `json:"failed_count"`
	}
	leaseRef struct {
		EventID string `json:"event_id"`
		LeaseID string `json:"lease_id"`
	}
)

func (r itemResults) outcomes() []string {
	var out []string
	for _, x := range r.Results {
		switch {
		case x.Error != nil:
			out = append(out, x.Error.Code)
		case x.Replayed:
			out = append(out, x.Status+"+replayed")
		default:
			out = append(out, x.Status)
		}
	}
	return out
}

func ids(p eventPage) []string {
	out := make([]string, len(p.Events))
	for i, e := range p.Events {
		out[i] = e.EventID
	}
	return out
}

// sameEvents reports whether got and want hold the same ids, whatever their order.
func sameEvents(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

// oldestFirst checks a listing of fresh events is in inbox order: by time, then by id for
// events of the same millisecond.
func oldestFirst(t *testing.T, name string, p eventPage) {
	t.Helper()
	for i := 1; i < len(p.Events); i++ {
		a, b := p.Events[i-1], p.Events[i]
		if a.Timestamp > b.Timestamp || a.Timestamp == b.Timestamp && a.EventID > b.EventID {
			t.Errorf("%s: %s (%d) listed before %s (%d): not oldest first", name, a.EventID, a.Timestamp, b.EventID, b.Timestamp)
		}
	}
}

func leases(p eventPage) []leaseRef {
	out := make([]leaseRef, len(p.Events))
	for i, e := range p.Events {
		out[i] = leaseRef{EventID: e.EventID, LeaseID: e.LeaseID}
	}
	return out
}

// Deadlines for what DynamoDB may do a moment after the write that caused it: index entries
// of a global secondary index are eventually consistent.
const (
	indexDeadline = 30 * time.Second
	indexPoll     = 100 * time.Millisecond
)

// until repeats a read until done accepts its answer or the deadline passes; every read is
// checked against the document like any other call.
func (c *client) until(t *testing.T, tc call, done func(answer) bool) answer {
	t.Helper()
	deadline := time.Now().Add(indexDeadline)
	for {
		a := c.do(t, tc)
		if a.Status != tc.status || done(a) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not the answer wanted after %v: %s", tc.name, indexDeadline, clip(a.Body))
		}
		timer := time.NewTimer(indexPoll)
		select {
		case <-t.Context().Done():
			timer.Stop()
			t.Fatal(t.Context().Err())
		case <-timer.C:
		}
	}
}

func decodeAs[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	a.decode(t, &v)
	return v
}

// The admin API's tenants, and the keys of one of them.
const tenants = "/admin/tenants"

func keysOf(tenantID string) string { return tenants + "/" + tenantID + "/keys" }

// The seed's two events.
const (
	seedA = `{"event_type":"customer.created","customer_id":"123","email":"alice@example.com"}`
	seedB = `{"event_type":"invoice.paid","invoice_id":"inv_8912","amount":3200}`
)

// liveRun drives the running stack through every operation, every answer it documents that a
// healthy stack gives, and the bad-input tables of the lifecycle and delivery issues. Each step
// is a subtest that builds on what the steps before it made: tenants, their keys, events,
// leases, dead letters.
func liveRun(t *testing.T, c *client, st *stack.Stack) {
	sfx := randomHex(3)
	ls := &liveScript{
		c:       c,
		st:      st,
		admin:   st.AdminToken,
		sfx:     sfx,
		mainT:   "ct-main-" + sfx,
		otherT:  "ct-other-" + sfx,
		deadT:   "ct-dead-" + sfx,
		partsT:  "ct-parts-" + sfx,
		suspT:   "ct-susp-" + sfx,
		ghost:   "ct-ghost-" + sfx,
		unknown: events.NewID(),
		lease0:  events.NewLeaseID(),
	}
	apitest.RunSteps(t,
		apitest.Step{Name: "admin-tenants", Run: ls.adminTenants},
		apitest.Step{Name: "admin-tenant-list", Run: ls.tenantList},
		apitest.Step{Name: "admin-keys", Run: ls.adminKeys},
		apitest.Step{Name: "ingest", Run: ls.ingest},
		apitest.Step{Name: "batch-ingest", Run: ls.batchIngest},
		apitest.Step{Name: "inbox-reads", Run: ls.inboxReads},
		apitest.Step{Name: "leases", Run: ls.leases},
		apitest.Step{Name: "lease-and-settle-bad-input", Run: ls.leaseBadInput},
		apitest.Step{Name: "dead-letters", Run: ls.deadLetters},
		apitest.Step{Name: "redrive", Run: ls.redrive},
		apitest.Step{Name: "partitioned-tenant", Run: ls.partitionedTenant},
		apitest.Step{Name: "other-tenant-untouched", Run: ls.otherTenantUntouched},
	)
}

// liveScript is what the live run's steps hand on to each other.
type liveScript struct {
	c     *client
	st    *stack.Stack
	admin string // the admin token
	sfx   string // makes this run's tenant ids and idempotency keys its own
	// Tenants: main gets most calls, other's event must stay untouched, dead has
	// max_deliveries 2, parts has partitions, susp is suspended; ghost never exists.
	mainT, otherT, deadT, partsT, suspT, ghost string
	unknown                                    string // an event id nobody holds
	lease0                                     string // a lease id that never held anything

	// Keys, by what they may do or what happens to them.
	mainKey, readOnly, ackOnly, writeOnly, otherKey, deadKey, partsKey, suspKey issuedKey
	toRevoke, toExpire, toRoll                                                  issuedKey

	mainEvents []string      // main's events, in ingest order
	evB        acceptedEvent // other's event, which nothing main does may touch
	listing    eventPage     // main's inbox before any lease
	l1         leaseRef      // the first lease of main's first pull, acknowledged
	dead       []string      // the dead tenant's events
}

// issue issues a key for tenantID and checks it is one.
func (ls *liveScript) issue(t *testing.T, name, tenantID, body string) issuedKey {
	t.Helper()
	a := ls.c.do(t, call{name: name, method: "POST", path: keysOf(tenantID), key: ls.admin, body: body, status: 201})
	k := decodeAs[issuedKey](t, a)
	if _, err := apikey.Parse(k.APIKey); err != nil || k.KeyID == "" {
		t.Fatalf("%s: no usable key in %s", name, a.Body)
	}
	return k
}

// post publishes one event and checks the answer's Location names it.
func (ls *liveScript) post(t *testing.T, name, key, body string, header http.Header, status int) acceptedEvent {
	t.Helper()
	a := ls.c.do(t, call{name: name, method: "POST", path: "/events", key: key, body: body, header: header, status: status})
	ev := decodeAs[acceptedEvent](t, a)
	if a.Header.Get("Location") != "/events/"+ev.EventID {
		t.Errorf("%s: Location %q for %s", name, a.Header.Get("Location"), ev.EventID)
	}
	return ev
}

func (ls *liveScript) pull(t *testing.T, name, key, body string) eventPage {
	t.Helper()
	return decodeAs[eventPage](t, ls.c.do(t, call{name: name, method: "POST", path: "/inbox/pull", key: key, body: body, status: 200}))
}

func (ls *liveScript) adminTenants(t *testing.T) {
	c, st, admin, sfx := ls.c, ls.st, ls.admin, ls.sfx
	mainT, otherT, deadT, partsT, suspT, ghost := ls.mainT, ls.otherT, ls.deadT, ls.partsT, ls.suspT, ls.ghost
	c.run(t, []call{
		{name: "create-201", method: "POST", path: tenants, key: admin, body: `{"tenant_id":"` + mainT + `","name":"Contract main"}`, status: 201},
		{name: "create-201-other", method: "POST", path: tenants, key: admin, body: `{"tenant_id":"` + otherT + `","name":"Contract other"}`, status: 201},
		{name: "create-201-max-deliveries", method: "POST", path: tenants, key: admin, body: `{"tenant_id":"` + deadT + `","name":"Contract dead letters","max_deliveries":2,"retention_days":1}`, status: 201},
		{name: "create-201-partitions", method: "POST", path: tenants, key: admin, body: `{"tenant_id":"` + partsT + `","name":"Contract partitions","partitions":4}`, status: 201},
		{name: "create-201-to-suspend", method: "POST", path: tenants, key: admin, body: `{"tenant_id":"` + suspT + `","name":"Contract suspended"}`, status: 201},
		{name: "create-409-duplicate", method: "POST", path: tenants, key: admin, body: `{"tenant_id":"` + mainT + `","name":"Again"}`, status: 409, code: "tenant_exists"},
		{name: "create-400-bad-id", method: "POST", path: tenants, key: admin, body: `{"tenant_id":"Bad_Id","name":"x"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "create-400-missing-name", method: "POST", path: tenants, key: admin, body: `{"tenant_id":"nameless-` + sfx + `"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "create-400-partitions-0", method: "POST", path: tenants, key: admin, body: `{"tenant_id":"p0-` + sfx + `","name":"x","partitions":0}`, status: 400, code: "invalid_request", invalid: true},
		{name: "create-400-partitions-65", method: "POST", path: tenants, key: admin, body: `{"tenant_id":"p65-` + sfx + `","name":"x","partitions":65}`, status: 400, code: "invalid_request", invalid: true},
		{name: "create-400-unknown-field", method: "POST", path: tenants, key: admin, body: `{"tenant_id":"plan-` + sfx + `","name":"x","plan":"gold"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "create-400-wrong-type", method: "POST", path: tenants, key: admin, body: `{"tenant_id":7,"name":"x"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "create-400-invalid-json", method: "POST", path: tenants, key: admin, body: `{"tenant_id":`, status: 400, code: "invalid_json", invalid: true},
		{name: "create-400-trailing-data", method: "POST", path: tenants, key: admin, body: `{"tenant_id":"t2-` + sfx + `","name":"x"} {}`, status: 400, code: "invalid_json", invalid: true},
		{name: "create-413", method: "POST", path: tenants, key: admin, body: padded(`{"tenant_id":"big-`+sfx+`","name":"x"}`, 70<<10), status: 413, code: "payload_too_large"},
		{name: "create-415", method: "POST", path: tenants, key: admin, contentType: "application/x-www-form-urlencoded", body: `tenant_id=x`, status: 415, code: "unsupported_media_type", invalid: true},
		{name: "create-401-no-token", method: "POST", path: tenants, body: `{"tenant_id":"nt-` + sfx + `","name":"x"}`, status: 401, code: "unauthenticated", invalid: true},
		{name: "create-401-wrong-token", method: "POST", path: tenants, key: "not-the-admin-token-0123456789abcdef", body: `{"tenant_id":"wt-` + sfx + `","name":"x"}`, status: 401, code: "unauthenticated"},
		{name: "create-401-tenant-key", method: "POST", path: tenants, key: st.Keys["acme"], body: `{"tenant_id":"tk-` + sfx + `","name":"x"}`, status: 401, code: "unauthenticated"},

		{name: "get-200", method: "GET", path: tenants + "/" + mainT, key: admin, status: 200},
		{name: "get-404-unknown", method: "GET", path: tenants + "/" + ghost, key: admin, status: 404, code: "not_found"},
		{name: "get-400-bad-id", method: "GET", path: tenants + "/Bad_Id", key: admin, status: 400, code: "invalid_request", invalid: true},
		{name: "get-401", method: "GET", path: tenants + "/" + mainT, status: 401, code: "unauthenticated", invalid: true},

		{name: "patch-200-suspend", method: "PATCH", path: tenants + "/" + suspT, key: admin, body: `{"status":"suspended"}`, status: 200},
		{name: "patch-200-grow-partitions", method: "PATCH", path: tenants + "/" + partsT, key: admin, body: `{"partitions":8}`, status: 200},
		{name: "patch-409-shrink-partitions", method: "PATCH", path: tenants + "/" + partsT, key: admin, body: `{"partitions":2}`, status: 409, code: "partitions_shrink"},
		{name: "patch-200-limits", method: "PATCH", path: tenants + "/" + otherT, key: admin, body: `{"max_deliveries":20,"retention_days":14,"status":"active"}`, status: 200},
		{name: "patch-400-bad-status", method: "PATCH", path: tenants + "/" + mainT, key: admin, body: `{"status":"deleted"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "patch-400-empty-object", method: "PATCH", path: tenants + "/" + mainT, key: admin, body: `{}`, status: 400, code: "invalid_request", invalid: true},
		{name: "patch-400-null-status", method: "PATCH", path: tenants + "/" + mainT, key: admin, body: `{"status":null}`, status: 400, code: "invalid_request", invalid: true},
		{name: "patch-400-unknown-field", method: "PATCH", path: tenants + "/" + mainT, key: admin, body: `{"name":"x"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "patch-400-max-deliveries-0", method: "PATCH", path: tenants + "/" + mainT, key: admin, body: `{"max_deliveries":0}`, status: 400, code: "invalid_request", invalid: true},
		{name: "patch-400-no-body", method: "PATCH", path: tenants + "/" + mainT, key: admin, body: ` `, status: 400, code: "invalid_json", invalid: true},
		{name: "patch-400-bad-id", method: "PATCH", path: tenants + "/Bad_Id", key: admin, body: `{"status":"active"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "patch-404-unknown", method: "PATCH", path: tenants + "/" + ghost, key: admin, body: `{"status":"active"}`, status: 404, code: "not_found"},
		{name: "patch-413", method: "PATCH", path: tenants + "/" + mainT, key: admin, body: padded(`{"status":"active"}`, 70<<10), status: 413, code: "payload_too_large"},
		{name: "patch-415", method: "PATCH", path: tenants + "/" + mainT, key: admin, contentType: "text/plain", body: `{"status":"active"}`, status: 415, code: "unsupported_media_type", invalid: true},
		{name: "patch-401", method: "PATCH", path: tenants + "/" + mainT, body: `{"status":"active"}`, status: 401, code: "unauthenticated", invalid: true},
	})
}

func (ls *liveScript) tenantList(t *testing.T) {
	c, admin := ls.c, ls.admin
	mainT, otherT, deadT, partsT, suspT := ls.mainT, ls.otherT, ls.deadT, ls.partsT, ls.suspT
	// Pages of two walk every tenant once.
	seen := map[string]bool{}
	path := tenants + "?limit=2"
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatal("the tenant list does not end")
		}
		a := c.do(t, call{name: "list-200-page", method: "GET", path: path, key: admin, status: 200})
		var p struct {
			Tenants []struct {
				TenantID string `json:"tenant_id"`
			} `json:"tenants"`
			NextCursor string `json:"next_cursor"`
		}
		a.decode(t, &p)
		for _, tn := range p.Tenants {
			if seen[tn.TenantID] {
				t.Fatalf("tenant %s listed twice", tn.TenantID)
			}
			seen[tn.TenantID] = true
		}
		if p.NextCursor == "" {
			break
		}
		path = tenants + "?limit=2&cursor=" + p.NextCursor
	}
	for _, id := range []string{mainT, otherT, deadT, partsT, suspT} {
		if !seen[id] {
			t.Errorf("the tenant list lacks %s", id)
		}
	}
	c.run(t, []call{
		{name: "list-200-default", method: "GET", path: tenants, key: admin, status: 200},
		{name: "list-400-limit-0", method: "GET", path: tenants + "?limit=0", key: admin, status: 400, code: "invalid_request", invalid: true},
		{name: "list-400-limit-101", method: "GET", path: tenants + "?limit=101", key: admin, status: 400, code: "invalid_request", invalid: true},
		{name: "list-400-limit-text", method: "GET", path: tenants + "?limit=ten", key: admin, status: 400, code: "invalid_request", invalid: true},
		{name: "list-400-cursor-not-base64", method: "GET", path: tenants + "?cursor=%21%21%21", key: admin, status: 400, code: "invalid_cursor", invalid: true},
		{name: "list-400-cursor-not-a-tenant", method: "GET", path: tenants + "?cursor=QmFkX0lk", key: admin, status: 400, code: "invalid_cursor"},
		{name: "list-401", method: "GET", path: tenants, status: 401, code: "unauthenticated", invalid: true},
	})
}

func (ls *liveScript) adminKeys(t *testing.T) {
	c, admin := ls.c, ls.admin
	mainT, otherT, deadT, partsT, suspT, ghost := ls.mainT, ls.otherT, ls.deadT, ls.partsT, ls.suspT, ls.ghost
	ls.mainKey = ls.issue(t, "issue-201", mainT, `{"label":"contract"}`)
	ls.readOnly = ls.issue(t, "issue-201-read-only", mainT, `{"scopes":["inbox:read"],"label":"reader"}`)
	ls.ackOnly = ls.issue(t, "issue-201-ack-only", mainT, `{"scopes":["inbox:ack"]}`)
	ls.writeOnly = ls.issue(t, "issue-201-write-only", mainT, `{"scopes":["events:write","events:write"],"expires_at":"`+time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339)+`"}`)
	ls.otherKey = ls.issue(t, "issue-201-no-body", otherT, ``)
	ls.deadKey = ls.issue(t, "issue-201-dead-tenant", deadT, `{}`)
	ls.partsKey = ls.issue(t, "issue-201-partitioned-tenant", partsT, `{}`)
	ls.suspKey = ls.issue(t, "issue-201-suspended-tenant", suspT, `{}`)
	ls.toRevoke = ls.issue(t, "issue-201-to-revoke", mainT, `{}`)
	ls.toExpire = ls.issue(t, "issue-201-to-expire", mainT, `{}`)
	ls.toRoll = ls.issue(t, "issue-201-to-roll", mainT, `{"label":"rolled"}`)
	toRevoke, toExpire, toRoll := ls.toRevoke, ls.toExpire, ls.toRoll
	c.run(t, []call{
		{name: "issue-400-unknown-scope", method: "POST", path: keysOf(mainT), key: admin, body: `{"scopes":["admin"]}`, status: 400, code: "invalid_request", invalid: true},
		{name: "issue-400-empty-scopes", method: "POST", path: keysOf(mainT), key: admin, body: `{"scopes":[]}`, status: 400, code: "invalid_request", invalid: true},
		{name: "issue-400-label-101", method: "POST", path: keysOf(mainT), key: admin, body: `{"label":"` + strings.Repeat("a", 101) + `"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "issue-400-expires-in-past", method: "POST", path: keysOf(mainT), key: admin, body: `{"expires_at":"2001-02-03T04:05:06Z"}`, status: 400, code: "invalid_request"},
		{name: "issue-400-expires-not-rfc3339", method: "POST", path: keysOf(mainT), key: admin, body: `{"expires_at":"tomorrow"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "issue-400-expires-empty", method: "POST", path: keysOf(mainT), key: admin, body: `{"expires_at":""}`, status: 400, code: "invalid_request", invalid: true},
		{name: "issue-400-unknown-field", method: "POST", path: keysOf(mainT), key: admin, body: `{"secret":"mine"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "issue-400-invalid-json", method: "POST", path: keysOf(mainT), key: admin, body: `[`, status: 400, code: "invalid_json", invalid: true},
		{name: "issue-400-bad-tenant-id", method: "POST", path: keysOf("Bad_Id"), key: admin, body: `{}`, status: 400, code: "invalid_request", invalid: true},
		{name: "issue-404-unknown-tenant", method: "POST", path: keysOf(ghost), key: admin, body: `{}`, status: 404, code: "not_found"},
		{name: "issue-413", method: "POST", path: keysOf(mainT), key: admin, body: padded(`{"label":"x"}`, 70<<10), status: 413, code: "payload_too_large"},
		{name: "issue-415", method: "POST", path: keysOf(mainT), key: admin, contentType: "text/plain", body: `label=x`, status: 415, code: "unsupported_media_type", invalid: true},
		{name: "issue-401", method: "POST", path: keysOf(mainT), body: `{}`, status: 401, code: "unauthenticated", invalid: true},

		{name: "list-keys-200", method: "GET", path: keysOf(mainT), key: admin, status: 200},
		{name: "list-keys-404", method: "GET", path: keysOf(ghost), key: admin, status: 404, code: "not_found"},
		{name: "list-keys-400", method: "GET", path: keysOf("Bad_Id"), key: admin, status: 400, code: "invalid_request", invalid: true},
		{name: "list-keys-401", method: "GET", path: keysOf(mainT), status: 401, code: "unauthenticated", invalid: true},

		{name: "revoke-200", method: "DELETE", path: keysOf(mainT) + "/" + toRevoke.KeyID, key: admin, status: 200},
		{name: "revoke-200-again", method: "DELETE", path: keysOf(mainT) + "/" + toRevoke.KeyID, key: admin, status: 200},
		{name: "revoke-404-unknown-key", method: "DELETE", path: keysOf(mainT) + "/key_000000000000000000000000", key: admin, status: 404, code: "not_found"},
		{name: "revoke-404-other-tenant", method: "DELETE", path: keysOf(otherT) + "/" + toRevoke.KeyID, key: admin, status: 404, code: "not_found"},
		{name: "revoke-404-malformed-key-id", method: "DELETE", path: keysOf(mainT) + "/not-a-key", key: admin, status: 404, code: "not_found", invalid: true},
		{name: "revoke-400-bad-tenant-id", method: "DELETE", path: keysOf("Bad_Id") + "/" + toRevoke.KeyID, key: admin, status: 400, code: "invalid_request", invalid: true},
		{name: "revoke-401", method: "DELETE", path: keysOf(mainT) + "/" + toRevoke.KeyID, status: 401, code: "unauthenticated", invalid: true},

		{name: "roll-201", method: "POST", path: keysOf(mainT) + "/" + toRoll.KeyID + "/roll", key: admin, body: `{"expires_in_seconds":3600}`, status: 201},
		{name: "roll-201-no-body", method: "POST", path: keysOf(mainT) + "/" + toRoll.KeyID + "/roll", key: admin, status: 201},
		// A zero overlap expires the old key now: it is the expired key of the 401 table below.
		{name: "roll-201-zero-overlap", method: "POST", path: keysOf(mainT) + "/" + toExpire.KeyID + "/roll", key: admin, body: `{"expires_in_seconds":0}`, status: 201},
		{name: "roll-409-expired", method: "POST", path: keysOf(mainT) + "/" + toExpire.KeyID + "/roll", key: admin, body: `{}`, status: 409, code: "key_expired"},
		{name: "roll-409-revoked", method: "POST", path: keysOf(mainT) + "/" + toRevoke.KeyID + "/roll", key: admin, body: `{}`, status: 409, code: "key_revoked"},
		{name: "roll-404-unknown-key", method: "POST", path: keysOf(mainT) + "/key_000000000000000000000000/roll", key: admin, body: `{}`, status: 404, code: "not_found"},
		{name: "roll-404-unknown-tenant", method: "POST", path: keysOf(ghost) + "/" + toRoll.KeyID + "/roll", key: admin, body: `{}`, status: 404, code: "not_found"},
		{name: "roll-400-negative", method: "POST", path: keysOf(mainT) + "/" + toRoll.KeyID + "/roll", key: admin, body: `{"expires_in_seconds":-1}`, status: 400, code: "invalid_request", invalid: true},
		{name: "roll-400-above-30-days", method: "POST", path: keysOf(mainT) + "/" + toRoll.KeyID + "/roll", key: admin, body: `{"expires_in_seconds":2592001}`, status: 400, code: "invalid_request", invalid: true},
		{name: "roll-400-wrong-type", method: "POST", path: keysOf(mainT) + "/" + toRoll.KeyID + "/roll", key: admin, body: `{"expires_in_seconds":"60"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "roll-400-bad-tenant-id", method: "POST", path: keysOf("Bad_Id") + "/" + toRoll.KeyID + "/roll", key: admin, body: `{}`, status: 400, code: "invalid_request", invalid: true},
		{name: "roll-413", method: "POST", path: keysOf(mainT) + "/" + toRoll.KeyID + "/roll", key: admin, body: padded(`{"expires_in_seconds":60}`, 70<<10), status: 413, code: "payload_too_large"},
		{name: "roll-415", method: "POST", path: keysOf(mainT) + "/" + toRoll.KeyID + "/roll", key: admin, contentType: "text/plain", body: `{}`, status: 415, code: "unsupported_media_type", invalid: true},
		{name: "roll-401", method: "POST", path: keysOf(mainT) + "/" + toRoll.KeyID + "/roll", body: `{}`, status: 401, code: "unauthenticated", invalid: true},

		{name: "admin-405", method: "PUT", path: tenants + "/" + mainT, key: admin, body: `{}`, status: 405, code: "method_not_allowed"},
		{name: "admin-404-no-route", method: "GET", path: "/admin/nothing", key: admin, status: 404, code: "not_found"},
	})
}

func (ls *liveScript) ingest(t *testing.T) {
	c, sfx, mainT, unknown := ls.c, ls.sfx, ls.mainT, ls.unknown
	mainKey, readOnly, ackOnly, writeOnly, otherKey, suspKey := ls.mainKey, ls.readOnly, ls.ackOnly, ls.writeOnly, ls.otherKey, ls.suspKey
	toRevoke, toExpire := ls.toRevoke, ls.toExpire
	evA := ls.post(t, "ingest-202", mainKey.APIKey, seedA, http.Header{"X-Request-Id": {"contract-" + sfx}}, 202)
	ls.mainEvents = append(ls.mainEvents, evA.EventID)
	evB := ls.post(t, "ingest-202-other-tenant", otherKey.APIKey, seedB, nil, 202)
	ls.evB = evB
	idem := http.Header{"Idempotency-Key": {"contract-" + sfx}}
	first := ls.post(t, "ingest-202-idempotent", writeOnly.APIKey, seedB, idem, 202)
	ls.mainEvents = append(ls.mainEvents, first.EventID)
	replay := c.do(t, call{name: "ingest-200-replay", method: "POST", path: "/events", key: mainKey.APIKey, body: seedB, header: idem, status: 200})
	if got := decodeAs[acceptedEvent](t, replay); got.EventID != first.EventID || replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay answered %s with Idempotent-Replayed %q; want %s and true", replay.Body, replay.Header.Get("Idempotent-Replayed"), first.EventID)
	}
	neverIssued, err := apikey.New(mainT)
	if err != nil {
		t.Fatal(err)
	}
	badChecksum := mainKey.APIKey[:len(mainKey.APIKey)-1] + map[bool]string{true: "b", false: "a"}[strings.HasSuffix(mainKey.APIKey, "a")]
	deep := `{"event_type":"x","d":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`
	c.run(t, []call{
		{name: "ingest-409-idempotency-conflict", method: "POST", path: "/events", key: mainKey.APIKey, header: idem, body: seedA, status: 409, code: "idempotency_conflict"},
		{name: "ingest-401-missing-key", method: "POST", path: "/events", body: seedA, status: 401, code: "unauthenticated", invalid: true},
		{name: "ingest-401-basic-scheme", method: "POST", path: "/events", header: http.Header{"Authorization": {"Basic " + mainKey.APIKey}}, body: seedA, status: 401, code: "unauthenticated", invalid: true},
		{name: "ingest-401-malformed-key", method: "POST", path: "/events", key: "tenant_acme_live_8fc12bfe-29a8", body: seedA, status: 401, code: "unauthenticated", invalid: true},
		{name: "ingest-401-bad-checksum", method: "POST", path: "/events", key: badChecksum, body: seedA, status: 401, code: "unauthenticated"},
		{name: "ingest-401-unknown-key", method: "POST", path: "/events", key: neverIssued.String(), body: seedA, status: 401, code: "unauthenticated"},
		{name: "ingest-401-revoked-key", method: "POST", path: "/events", key: toRevoke.APIKey, body: seedA, status: 401, code: "unauthenticated"},
		{name: "ingest-401-expired-key", method: "POST", path: "/events", key: toExpire.APIKey, body: seedA, status: 401, code: "unauthenticated"},
		{name: "ingest-401-suspended-tenant", method: "POST", path: "/events", key: suspKey.APIKey, body: seedA, status: 401, code: "unauthenticated"},
		{name: "ingest-403-scope", method: "POST", path: "/events", key: readOnly.APIKey, body: seedA, status: 403, code: "forbidden"},
		{name: "ingest-400-not-json", method: "POST", path: "/events", key: mainKey.APIKey, body: `event_type=x`, status: 400, code: "invalid_json", invalid: true},
		{name: "ingest-400-trailing-data", method: "POST", path: "/events", key: mainKey.APIKey, body: seedA + `{}`, status: 400, code: "invalid_json", invalid: true},
		// Invalid UTF-8 and deep nesting are limits of the service that JSON Schema cannot
		// state: the document describes them in words and accepts the request.
		{name: "ingest-400-invalid-utf8", method: "POST", path: "/events", key: mainKey.APIKey, body: "{\"event_type\":\"x\",\"s\":\"\xc3\x28\"}", status: 400, code: "invalid_json"},
		{name: "ingest-400-too-deep", method: "POST", path: "/events", key: mainKey.APIKey, body: deep, status: 400, code: "invalid_json"},
		{name: "ingest-400-array", method: "POST", path: "/events", key: mainKey.APIKey, body: `[` + seedA + `]`, status: 400, code: "invalid_event", invalid: true},
		{name: "ingest-400-type-missing", method: "POST", path: "/events", key: mainKey.APIKey, body: `{"customer_id":"123"}`, status: 400, code: "invalid_event", invalid: true},
		{name: "ingest-400-type-not-string", method: "POST", path: "/events", key: mainKey.APIKey, body: `{"event_type":42}`, status: 400, code: "invalid_event", invalid: true},
		{name: "ingest-400-type-empty", method: "POST", path: "/events", key: mainKey.APIKey, body: `{"event_type":""}`, status: 400, code: "invalid_event", invalid: true},
		{name: "ingest-400-type-too-long", method: "POST", path: "/events", key: mainKey.APIKey, body: `{"event_type":"` + strings.Repeat("a", 129) + `"}`, status: 400, code: "invalid_event", invalid: true},
		{name: "ingest-400-type-charset", method: "POST", path: "/events", key: mainKey.APIKey, body: `{"event_type":"customer created"}`, status: 400, code: "invalid_event", invalid: true},
		{name: "ingest-400-idempotency-key-too-long", method: "POST", path: "/events", key: mainKey.APIKey, header: http.Header{"Idempotency-Key": {strings.Repeat("k", 256)}}, body: seedA, status: 400, code: "invalid_request", invalid: true},
		{name: "ingest-400-idempotency-key-control", method: "POST", path: "/events", key: mainKey.APIKey, header: http.Header{"Idempotency-Key": {"a\tb"}}, body: seedA, status: 400, code: "invalid_request", invalid: true},
		// OpenAPI cannot say a header comes once; the parameter's description does.
		{name: "ingest-400-idempotency-key-twice", method: "POST", path: "/events", key: mainKey.APIKey, header: http.Header{"Idempotency-Key": {"a", "b"}}, body: seedA, status: 400, code: "invalid_request"},
		{name: "ingest-413", method: "POST", path: "/events", key: mainKey.APIKey, body: `{"event_type":"x","pad":"` + strings.Repeat("a", events.MaxEventBytes) + `"}`, status: 413, code: "payload_too_large"},
		{name: "ingest-415-text", method: "POST", path: "/events", key: mainKey.APIKey, contentType: "text/plain", body: seedA, status: 415, code: "unsupported_media_type", invalid: true},
		{name: "ingest-415-form", method: "POST", path: "/events", key: mainKey.APIKey, contentType: "application/x-www-form-urlencoded", body: seedA, status: 415, code: "unsupported_media_type", invalid: true},
		{name: "ingest-405", method: "DELETE", path: "/events", key: mainKey.APIKey, status: 405, code: "method_not_allowed"},

		{name: "get-event-200", method: "GET", path: "/events/" + evA.EventID, key: mainKey.APIKey, status: 200},
		{name: "get-event-200-read-scope", method: "GET", path: "/events/" + evA.EventID, key: readOnly.APIKey, status: 200},
		{name: "get-event-404-other-tenant", method: "GET", path: "/events/" + evA.EventID, key: otherKey.APIKey, status: 404, code: "not_found"},
		{name: "get-event-404-unknown", method: "GET", path: "/events/" + unknown, key: mainKey.APIKey, status: 404, code: "not_found"},
		{name: "get-event-404-malformed-id", method: "GET", path: "/events/evt_nope", key: mainKey.APIKey, status: 404, code: "not_found", invalid: true},
		{name: "get-event-403-scope", method: "GET", path: "/events/" + evA.EventID, key: ackOnly.APIKey, status: 403, code: "forbidden"},
		{name: "get-event-401", method: "GET", path: "/events/" + evA.EventID, status: 401, code: "unauthenticated", invalid: true},
	})
}

func (ls *liveScript) batchIngest(t *testing.T) {
	c, sfx, mainKey, readOnly := ls.c, ls.sfx, ls.mainKey, ls.readOnly
	itemKey := "batch-" + sfx
	idemItem := `{"event_type":"invoice.paid","idempotency_key":"` + itemKey + `","amount":3200}`
	mixed := `{"events":[` + seedA + `,{"customer_id":"no type"},[1,2],` + idemItem + `,{"event_type":"x","idempotency_key":""}]}`
	a := c.do(t, call{name: "batch-200-mixed", method: "POST", path: "/events/batch", key: mainKey.APIKey, body: mixed, status: 200, invalid: true})
	mixedRes := decodeAs[itemResults](t, a)
	if got := mixedRes.outcomes(); !slices.Equal(got, []string{"accepted", "invalid_event", "invalid_event", "accepted", "invalid_request"}) {
		t.Errorf("mixed batch outcomes %v", got)
	} else {
		ls.mainEvents = append(ls.mainEvents, mixedRes.Results[0].EventID, mixedRes.Results[3].EventID)
	}
	a = c.do(t, call{name: "batch-200-replay", method: "POST", path: "/events/batch", key: mainKey.APIKey, body: `{"events":[` + idemItem + `]}`, status: 200})
	if got := decodeAs[itemResults](t, a); !slices.Equal(got.outcomes(), []string{"accepted+replayed"}) || len(mixedRes.Results) > 3 && got.Results[0].EventID != mixedRes.Results[3].EventID {
		t.Errorf("batch replay %s", a.Body)
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = seedA
	}
	bigItem := `{"event_type":"x","pad":"` + strings.Repeat("a", 250<<10) + `"}`
	c.run(t, []call{
		{name: "batch-400-empty", method: "POST", path: "/events/batch", key: mainKey.APIKey, body: `{"events":[]}`, status: 400, code: "invalid_request", invalid: true},
		{name: "batch-400-over-100", method: "POST", path: "/events/batch", key: mainKey.APIKey, body: `{"events":[` + strings.Join(many, ",") + `]}`, status: 400, code: "invalid_request", invalid: true},
		{name: "batch-400-not-an-object", method: "POST", path: "/events/batch", key: mainKey.APIKey, body: `[` + seedA + `]`, status: 400, code: "invalid_json", invalid: true},
		{name: "batch-400-unknown-field", method: "POST", path: "/events/batch", key: mainKey.APIKey, body: `{"events":[` + seedA + `],"atomic":true}`, status: 400, code: "invalid_json", invalid: true},
		{name: "batch-413", method: "POST", path: "/events/batch", key: mainKey.APIKey, body: `{"events":[` + strings.Repeat(bigItem+",", 4) + bigItem + `]}`, status: 413, code: "payload_too_large"},
		{name: "batch-415", method: "POST", path: "/events/batch", key: mainKey.APIKey, contentType: "text/plain", body: `{"events":[` + seedA + `]}`, status: 415, code: "unsupported_media_type", invalid: true},
		{name: "batch-403-scope", method: "POST", path: "/events/batch", key: readOnly.APIKey, body: `{"events":[` + seedA + `]}`, status: 403, code: "forbidden"},
		{name: "batch-401", method: "POST", path: "/events/batch", body: `{"events":[` + seedA + `]}`, status: 401, code: "unauthenticated", invalid: true},
	})
}

func (ls *liveScript) inboxReads(t *testing.T) {
	c, otherT, mainKey, readOnly, ackOnly := ls.c, ls.otherT, ls.mainKey, ls.readOnly, ls.ackOnly
	mainEvents, evB := ls.mainEvents, ls.evB
	inbox := c.until(t, call{name: "inbox-200", method: "GET", path: "/inbox?limit=100", key: mainKey.APIKey, status: 200}, func(a answer) bool {
		return len(decodeAs[eventPage](t, a).Events) >= len(mainEvents)
	})
	listing := decodeAs[eventPage](t, inbox)
	ls.listing = listing
	if got := ids(listing); !sameEvents(got, mainEvents) {
		t.Fatalf("main's inbox lists %v, want its events %v", got, mainEvents)
	}
	oldestFirst(t, "inbox-200", listing)
	a := c.do(t, call{name: "inbox-200-page", method: "GET", path: "/inbox?limit=1", key: mainKey.APIKey, status: 200})
	if p := decodeAs[eventPage](t, a); p.NextCursor == "" {
		t.Errorf("a page of 1 of %d events has no next_cursor", len(mainEvents))
	} else {
		c.do(t, call{name: "inbox-200-next-page", method: "GET", path: "/inbox?limit=1&cursor=" + p.NextCursor, key: mainKey.APIKey, status: 200})
	}
	a = c.do(t, call{name: "inbox-200-filter", method: "GET", path: "/inbox?event_type=invoice.paid", key: readOnly.APIKey, status: 200})
	for _, e := range decodeAs[eventPage](t, a).Events {
		if e.EventType != "invoice.paid" {
			t.Errorf("the invoice.paid filter lists %s of type %s", e.EventID, e.EventType)
		}
	}
	otherCursor := events.EncodeCursor(otherT, events.ListInbox, events.Position{VisibleAt: time.Now(), EventID: evB.EventID})
	c.run(t, []call{
		{name: "inbox-400-limit-0", method: "GET", path: "/inbox?limit=0", key: mainKey.APIKey, status: 400, code: "invalid_request", invalid: true},
		{name: "inbox-400-limit-101", method: "GET", path: "/inbox?limit=101", key: mainKey.APIKey, status: 400, code: "invalid_request", invalid: true},
		{name: "inbox-400-limit-text", method: "GET", path: "/inbox?limit=ten", key: mainKey.APIKey, status: 400, code: "invalid_request", invalid: true},
		{name: "inbox-400-cursor-malformed", method: "GET", path: "/inbox?cursor=not-a-cursor", key: mainKey.APIKey, status: 400, code: "invalid_cursor"},
		{name: "inbox-400-cursor-other-tenant", method: "GET", path: "/inbox?cursor=" + otherCursor, key: mainKey.APIKey, status: 400, code: "invalid_cursor"},
		{name: "inbox-400-event-type", method: "GET", path: "/inbox?event_type=a%20b", key: mainKey.APIKey, status: 400, code: "invalid_event", invalid: true},
		{name: "inbox-403-scope", method: "GET", path: "/inbox", key: ackOnly.APIKey, status: 403, code: "forbidden"},
		{name: "inbox-401-missing-key", method: "GET", path: "/inbox", status: 401, code: "unauthenticated", invalid: true},
		{name: "inbox-401-malformed-key", method: "GET", path: "/inbox", key: "tenant_acme_live_8fc12bfe-29a8", status: 401, code: "unauthenticated", invalid: true},
		{name: "inbox-404-no-route", method: "GET", path: "/inbox/nothing", key: mainKey.APIKey, status: 404, code: "not_found"},
		{name: "gateway-404-no-route", method: "GET", path: "/nothing", status: 404, code: "not_found"},
	})
}

func (ls *liveScript) leases(t *testing.T) {
	c, unknown, lease0, mainKey, ackOnly := ls.c, ls.unknown, ls.lease0, ls.mainKey, ls.ackOnly
	mainEvents, evB, listing := ls.mainEvents, ls.evB, ls.listing
	first2 := ls.pull(t, "pull-200", mainKey.APIKey, `{"max_events":2,"visibility_timeout_seconds":60,"wait_seconds":5}`)
	if got := ids(first2); !slices.Equal(got, ids(listing)[:2]) {
		t.Fatalf("the first pull leased %v, want the two oldest %v", got, ids(listing)[:2])
	}
	l1, l2 := leases(first2)[0], leases(first2)[1]
	ls.l1 = l1
	a := c.do(t, call{name: "extend-200", method: "POST", path: "/inbox/extend", key: ackOnly.APIKey, status: 200,
		body: jsonBody(t, map[string]any{"leases": []leaseRef{l1, {EventID: l2.EventID, LeaseID: lease0}}, "visibility_timeout_seconds": 120})})
	if got := decodeAs[itemResults](t, a).outcomes(); !slices.Equal(got, []string{"extended", "lease_lost"}) {
		t.Errorf("extend outcomes %v, want extended and lease_lost", got)
	}
	a = c.do(t, call{name: "nack-200", method: "POST", path: "/nack", key: mainKey.APIKey, status: 200,
		body: jsonBody(t, map[string]any{"leases": []leaseRef{l2}, "delay_seconds": 0})})
	if got := decodeAs[itemResults](t, a).outcomes(); !slices.Equal(got, []string{"nacked"}) {
		t.Errorf("nack outcomes %v", got)
	}
	c.run(t, []call{
		{name: "ack-409-lease-lost", method: "POST", path: "/ack", key: mainKey.APIKey, body: jsonBody(t, l2), status: 409, code: "lease_lost"},
		{name: "ack-200-leased", method: "POST", path: "/ack", key: mainKey.APIKey, body: jsonBody(t, l1), status: 200},
		{name: "ack-200-again", method: "POST", path: "/ack", key: mainKey.APIKey, body: jsonBody(t, l1), status: 200},
	})
	var rest []leaseRef
	for len(rest) < len(mainEvents)-1 {
		p := ls.pull(t, "pull-200-rest", mainKey.APIKey, `{"max_events":10,"visibility_timeout_seconds":60,"wait_seconds":5}`)
		if len(p.Events) == 0 {
			t.Fatalf("pulls leased %d of the %d events left", len(rest), len(mainEvents)-1)
		}
		for _, e := range p.Events {
			if e.EventID == l2.EventID && e.DeliveryCount != 2 {
				t.Errorf("the nacked event comes back with delivery_count %d, want 2", e.DeliveryCount)
			}
		}
		rest = append(rest, leases(p)...)
	}
	a = c.do(t, call{name: "ack-200-leases", method: "POST", path: "/ack", key: ackOnly.APIKey, body: jsonBody(t, map[string]any{"leases": rest}), status: 200})
	if r := decodeAs[itemResults](t, a); r.Succeeded != len(rest) || r.Failed != 0 {
		t.Errorf("acking %d leases: %s", len(rest), a.Body)
	}
	a = c.do(t, call{name: "ack-200-event-ids", method: "POST", path: "/ack", key: mainKey.APIKey, status: 200,
		body: jsonBody(t, map[string]any{"event_ids": []string{l1.EventID, unknown, evB.EventID}})})
	if got := decodeAs[itemResults](t, a).outcomes(); !slices.Equal(got, []string{"acknowledged", "not_found", "not_found"}) {
		t.Errorf("ack by ids outcomes %v", got)
	}
	a = c.do(t, call{name: "nack-200-settled", method: "POST", path: "/nack", key: mainKey.APIKey, status: 200,
		body: jsonBody(t, map[string]any{"event_ids": []string{l1.EventID, unknown}})})
	if got := decodeAs[itemResults](t, a).outcomes(); !slices.Equal(got, []string{"already_settled", "not_found"}) {
		t.Errorf("nack of an acknowledged and an unknown event: outcomes %v", got)
	}
	if p := ls.pull(t, "pull-200-empty-after-wait", mainKey.APIKey, `{"wait_seconds":1}`); len(p.Events) != 0 {
		t.Errorf("the drained inbox leased %v", ids(p))
	}
	c.run(t, []call{
		{name: "get-event-200-delivered", method: "GET", path: "/events/" + l1.EventID, key: mainKey.APIKey, status: 200},
		{name: "inbox-200-empty", method: "GET", path: "/inbox", key: mainKey.APIKey, status: 200},
	})
}

// leaseBadInput: the bad-input tables of pull, extend, nack and ack.
func (ls *liveScript) leaseBadInput(t *testing.T) {
	c, unknown, lease0, mainKey, readOnly := ls.c, ls.unknown, ls.lease0, ls.mainKey, ls.readOnly
	evB, l1 := ls.evB, ls.l1
	manyIDs := make([]string, 101)
	for i := range manyIDs {
		manyIDs[i] = events.NewID()
	}
	dupLeases := []leaseRef{l1, l1}
	c.run(t, []call{
		{name: "pull-400-max-0", method: "POST", path: "/inbox/pull", key: mainKey.APIKey, body: `{"max_events":0}`, status: 400, code: "invalid_request", invalid: true},
		{name: "pull-400-max-101", method: "POST", path: "/inbox/pull", key: mainKey.APIKey, body: `{"max_events":101}`, status: 400, code: "invalid_request", invalid: true},
		{name: "pull-400-visibility-0", method: "POST", path: "/inbox/pull", key: mainKey.APIKey, body: `{"visibility_timeout_seconds":0}`, status: 400, code: "invalid_request", invalid: true},
		{name: "pull-400-visibility-over", method: "POST", path: "/inbox/pull", key: mainKey.APIKey, body: `{"visibility_timeout_seconds":43201}`, status: 400, code: "invalid_request", invalid: true},
		{name: "pull-400-wait-21", method: "POST", path: "/inbox/pull", key: mainKey.APIKey, body: `{"wait_seconds":21}`, status: 400, code: "invalid_request", invalid: true},
		{name: "pull-400-wait-negative", method: "POST", path: "/inbox/pull", key: mainKey.APIKey, body: `{"wait_seconds":-1}`, status: 400, code: "invalid_request", invalid: true},
		{name: "pull-400-unknown-field", method: "POST", path: "/inbox/pull", key: mainKey.APIKey, body: `{"max":1}`, status: 400, code: "invalid_request", invalid: true},
		{name: "pull-400-wrong-type", method: "POST", path: "/inbox/pull", key: mainKey.APIKey, body: `{"max_events":"5"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "pull-400-no-body", method: "POST", path: "/inbox/pull", key: mainKey.APIKey, contentType: "application/json", status: 400, code: "invalid_json", invalid: true},
		{name: "pull-413", method: "POST", path: "/inbox/pull", key: mainKey.APIKey, body: padded(`{"max_events":1}`, 70<<10), status: 413, code: "payload_too_large"},
		{name: "pull-415", method: "POST", path: "/inbox/pull", key: mainKey.APIKey, contentType: "text/plain", body: `{}`, status: 415, code: "unsupported_media_type", invalid: true},
		{name: "pull-403-scope", method: "POST", path: "/inbox/pull", key: readOnly.APIKey, body: `{}`, status: 403, code: "forbidden"},
		{name: "pull-401", method: "POST", path: "/inbox/pull", body: `{}`, status: 401, code: "unauthenticated", invalid: true},

		{name: "extend-400-no-visibility", method: "POST", path: "/inbox/extend", key: mainKey.APIKey, body: jsonBody(t, map[string]any{"leases": []leaseRef{l1}}), status: 400, code: "invalid_request", invalid: true},
		{name: "extend-400-empty", method: "POST", path: "/inbox/extend", key: mainKey.APIKey, body: `{"leases":[],"visibility_timeout_seconds":5}`, status: 400, code: "invalid_request", invalid: true},
		{name: "extend-400-bad-lease", method: "POST", path: "/inbox/extend", key: mainKey.APIKey, body: `{"leases":[{"event_id":"` + l1.EventID + `","lease_id":"x"}],"visibility_timeout_seconds":5}`, status: 400, code: "invalid_request", invalid: true},
		{name: "extend-400-duplicate", method: "POST", path: "/inbox/extend", key: mainKey.APIKey, body: jsonBody(t, map[string]any{"leases": dupLeases, "visibility_timeout_seconds": 5}), status: 400, code: "invalid_request", invalid: true},
		{name: "extend-413", method: "POST", path: "/inbox/extend", key: mainKey.APIKey, body: padded(jsonBody(t, map[string]any{"leases": []leaseRef{l1}, "visibility_timeout_seconds": 5}), 70<<10), status: 413, code: "payload_too_large"},
		{name: "extend-415", method: "POST", path: "/inbox/extend", key: mainKey.APIKey, contentType: "text/plain", body: `{}`, status: 415, code: "unsupported_media_type", invalid: true},
		{name: "extend-403-scope", method: "POST", path: "/inbox/extend", key: readOnly.APIKey, body: jsonBody(t, map[string]any{"leases": []leaseRef{l1}, "visibility_timeout_seconds": 5}), status: 403, code: "forbidden"},
		{name: "extend-401", method: "POST", path: "/inbox/extend", body: `{}`, status: 401, code: "unauthenticated", invalid: true},

		{name: "nack-400-neither", method: "POST", path: "/nack", key: mainKey.APIKey, body: `{"delay_seconds":5}`, status: 400, code: "invalid_request", invalid: true},
		{name: "nack-400-both", method: "POST", path: "/nack", key: mainKey.APIKey, body: jsonBody(t, map[string]any{"event_ids": []string{l1.EventID}, "leases": []leaseRef{l1}}), status: 400, code: "invalid_request", invalid: true},
		{name: "nack-400-delay", method: "POST", path: "/nack", key: mainKey.APIKey, body: jsonBody(t, map[string]any{"event_ids": []string{l1.EventID}, "delay_seconds": 43201}), status: 400, code: "invalid_request", invalid: true},
		{name: "nack-400-over-100", method: "POST", path: "/nack", key: mainKey.APIKey, body: jsonBody(t, map[string]any{"event_ids": manyIDs}), status: 400, code: "invalid_request", invalid: true},
		{name: "nack-400-duplicates", method: "POST", path: "/nack", key: mainKey.APIKey, body: jsonBody(t, map[string]any{"event_ids": []string{l1.EventID, l1.EventID}}), status: 400, code: "invalid_request", invalid: true},
		{name: "nack-413", method: "POST", path: "/nack", key: mainKey.APIKey, body: padded(jsonBody(t, map[string]any{"event_ids": []string{l1.EventID}}), 70<<10), status: 413, code: "payload_too_large"},
		{name: "nack-415", method: "POST", path: "/nack", key: mainKey.APIKey, contentType: "text/plain", body: `{}`, status: 415, code: "unsupported_media_type", invalid: true},
		{name: "nack-403-scope", method: "POST", path: "/nack", key: readOnly.APIKey, body: jsonBody(t, map[string]any{"event_ids": []string{l1.EventID}}), status: 403, code: "forbidden"},
		{name: "nack-401", method: "POST", path: "/nack", body: `{}`, status: 401, code: "unauthenticated", invalid: true},

		{name: "ack-404-unknown", method: "POST", path: "/ack", key: mainKey.APIKey, body: `{"event_id":"` + unknown + `"}`, status: 404, code: "not_found"},
		{name: "ack-404-other-tenant", method: "POST", path: "/ack", key: mainKey.APIKey, body: `{"event_id":"` + evB.EventID + `"}`, status: 404, code: "not_found"},
		{name: "ack-404-lease-other-tenant", method: "POST", path: "/ack", key: mainKey.APIKey, body: `{"event_id":"` + evB.EventID + `","lease_id":"` + lease0 + `"}`, status: 404, code: "not_found"},
		{name: "ack-404-malformed-id", method: "POST", path: "/ack", key: mainKey.APIKey, body: `{"event_id":"evt_b1cb3"}`, status: 404, code: "not_found", invalid: true},
		{name: "ack-400-not-json", method: "POST", path: "/ack", key: mainKey.APIKey, body: `event_id=1`, status: 400, code: "invalid_json", invalid: true},
		{name: "ack-400-trailing", method: "POST", path: "/ack", key: mainKey.APIKey, body: `{"event_id":"` + l1.EventID + `"} {}`, status: 400, code: "invalid_json", invalid: true},
		{name: "ack-400-empty-object", method: "POST", path: "/ack", key: mainKey.APIKey, body: `{}`, status: 400, code: "invalid_request", invalid: true},
		{name: "ack-400-both", method: "POST", path: "/ack", key: mainKey.APIKey, body: `{"event_id":"` + l1.EventID + `","event_ids":["` + l1.EventID + `"]}`, status: 400, code: "invalid_request", invalid: true},
		{name: "ack-400-unknown-field", method: "POST", path: "/ack", key: mainKey.APIKey, body: `{"event_id":"` + l1.EventID + `","extra":1}`, status: 400, code: "invalid_request", invalid: true},
		{name: "ack-400-id-not-string", method: "POST", path: "/ack", key: mainKey.APIKey, body: `{"event_id":42}`, status: 400, code: "invalid_request", invalid: true},
		{name: "ack-400-empty-list", method: "POST", path: "/ack", key: mainKey.APIKey, body: `{"event_ids":[]}`, status: 400, code: "invalid_request", invalid: true},
		{name: "ack-400-over-100", method: "POST", path: "/ack", key: mainKey.APIKey, body: jsonBody(t, map[string]any{"event_ids": manyIDs}), status: 400, code: "invalid_request", invalid: true},
		{name: "ack-400-duplicates", method: "POST", path: "/ack", key: mainKey.APIKey, body: jsonBody(t, map[string]any{"event_ids": []string{l1.EventID, l1.EventID}}), status: 400, code: "invalid_request", invalid: true},
		{name: "ack-400-bad-lease", method: "POST", path: "/ack", key: mainKey.APIKey, body: `{"event_id":"` + l1.EventID + `","lease_id":"lse_nope"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "ack-400-lease-without-id", method: "POST", path: "/ack", key: mainKey.APIKey, body: `{"event_ids":["` + l1.EventID + `"],"lease_id":"` + lease0 + `"}`, status: 400, code: "invalid_request", invalid: true},
		{name: "ack-413", method: "POST", path: "/ack", key: mainKey.APIKey, body: padded(`{"event_id":"`+l1.EventID+`"}`, 70<<10), status: 413, code: "payload_too_large"},
		{name: "ack-415", method: "POST", path: "/ack", key: mainKey.APIKey, contentType: "text/plain", body: `{"event_id":"` + l1.EventID + `"}`, status: 415, code: "unsupported_media_type", invalid: true},
		{name: "ack-403-scope", method: "POST", path: "/ack", key: readOnly.APIKey, body: `{"event_id":"` + l1.EventID + `"}`, status: 403, code: "forbidden"},
		{name: "ack-401", method: "POST", path: "/ack", body: `{"event_id":"` + l1.EventID + `"}`, status: 401, code: "unauthenticated", invalid: true},
	})
}

// deadLetters: max_deliveries is 2, so the third lease buries an event.
func (ls *liveScript) deadLetters(t *testing.T) {
	c, deadKey := ls.c, ls.deadKey
	var dead []string
	for i, body := range []string{seedA, seedB} {
		dead = append(dead, ls.post(t, fmt.Sprintf("ingest-202-dead-tenant-%d", i), deadKey.APIKey, body, nil, 202).EventID)
	}
	ls.dead = dead
	for round := 1; round <= 2; round++ {
		var held []leaseRef
		for len(held) < len(dead) {
			p := ls.pull(t, fmt.Sprintf("pull-200-dead-round-%d", round), deadKey.APIKey, `{"max_events":10,"visibility_timeout_seconds":60,"wait_seconds":5}`)
			if len(p.Events) == 0 {
				t.Fatalf("round %d: pulls leased %d of %d events", round, len(held), len(dead))
			}
			for _, e := range p.Events {
				if e.DeliveryCount != round {
					t.Errorf("round %d leased %s with delivery_count %d", round, e.EventID, e.DeliveryCount)
				}
			}
			held = append(held, leases(p)...)
		}
		c.do(t, call{name: fmt.Sprintf("nack-200-dead-round-%d", round), method: "POST", path: "/nack", key: deadKey.APIKey, body: jsonBody(t, map[string]any{"leases": held}), status: 200})
	}
	if p := ls.pull(t, "pull-200-buries", deadKey.APIKey, `{"max_events":10,"wait_seconds":1}`); len(p.Events) != 0 {
		t.Errorf("a third lease of events with max_deliveries 2 leased %v", ids(p))
	}
	listed := c.until(t, call{name: "dead-200", method: "GET", path: "/inbox/dead", key: deadKey.APIKey, status: 200}, func(a answer) bool {
		return len(decodeAs[eventPage](t, a).Events) >= len(dead)
	})
	if p := decodeAs[eventPage](t, listed); !sameEvents(ids(p), dead) {
		t.Errorf("dead letters %v, want %v", ids(p), dead)
	} else if p.Events[0].Status != "dead" || p.Events[0].DeliveryCount != 2 {
		t.Errorf("dead letter %+v, want status dead after 2 deliveries", p.Events[0])
	}
	a := c.do(t, call{name: "dead-200-page", method: "GET", path: "/inbox/dead?limit=1", key: deadKey.APIKey, status: 200})
	if p := decodeAs[eventPage](t, a); p.NextCursor == "" {
		t.Error("a page of 1 of 2 dead letters has no next_cursor")
	} else {
		c.do(t, call{name: "dead-200-next-page", method: "GET", path: "/inbox/dead?limit=1&cursor=" + p.NextCursor, key: deadKey.APIKey, status: 200})
	}
}

func (ls *liveScript) redrive(t *testing.T) {
	c, deadT, unknown, readOnly, ackOnly, deadKey := ls.c, ls.deadT, ls.unknown, ls.readOnly, ls.ackOnly, ls.deadKey
	dead := ls.dead
	inboxCursor := events.EncodeCursor(deadT, events.ListInbox, events.Position{VisibleAt: time.Now(), EventID: dead[0]})
	a := c.do(t, call{name: "redrive-200-ids", method: "POST", path: "/inbox/redrive", key: deadKey.APIKey, status: 200, body: jsonBody(t, map[string]any{"event_ids": []string{dead[0], unknown}})})
	if got := decodeAs[itemResults](t, a).outcomes(); !slices.Equal(got, []string{"redriven", "not_found"}) {
		t.Errorf("redrive outcomes %v", got)
	}
	a = c.do(t, call{name: "redrive-200-not-dead", method: "POST", path: "/inbox/redrive", key: deadKey.APIKey, status: 200, body: jsonBody(t, map[string]any{"event_ids": []string{dead[0]}})})
	if got := decodeAs[itemResults](t, a).outcomes(); !slices.Equal(got, []string{"not_dead"}) {
		t.Errorf("redriving an undelivered event: outcomes %v", got)
	}
	a = c.do(t, call{name: "redrive-200-all", method: "POST", path: "/inbox/redrive", key: deadKey.APIKey, status: 200, body: `{"all":true}`})
	if got := string(a.Body); !strings.Contains(got, `"redriven_count":1`) || !strings.Contains(got, `"more":false`) {
		t.Errorf("redrive all: %s", got)
	}
	c.run(t, []call{
		{name: "dead-400-limit", method: "GET", path: "/inbox/dead?limit=0", key: deadKey.APIKey, status: 400, code: "invalid_request", invalid: true},
		{name: "dead-400-inbox-cursor", method: "GET", path: "/inbox/dead?cursor=" + inboxCursor, key: deadKey.APIKey, status: 400, code: "invalid_cursor"},
		{name: "dead-403-scope", method: "GET", path: "/inbox/dead", key: ackOnly.APIKey, status: 403, code: "forbidden"},
		{name: "dead-401", method: "GET", path: "/inbox/dead", status: 401, code: "unauthenticated", invalid: true},
		{name: "redrive-400-all-false", method: "POST", path: "/inbox/redrive", key: deadKey.APIKey, body: `{"all":false}`, status: 400, code: "invalid_request", invalid: true},
		{name: "redrive-400-empty", method: "POST", path: "/inbox/redrive", key: deadKey.APIKey, body: `{"event_ids":[]}`, status: 400, code: "invalid_request", invalid: true},
		{name: "redrive-400-both", method: "POST", path: "/inbox/redrive", key: deadKey.APIKey, body: `{"event_ids":["` + dead[0] + `"],"all":true}`, status: 400, code: "invalid_request", invalid: true},
		{name: "redrive-400-nothing", method: "POST", path: "/inbox/redrive", key: deadKey.APIKey, body: `{}`, status: 400, code: "invalid_request", invalid: true},
		{name: "redrive-413", method: "POST", path: "/inbox/redrive", key: deadKey.APIKey, body: padded(`{"all":true}`, 70<<10), status: 413, code: "payload_too_large"},
		{name: "redrive-415", method: "POST", path: "/inbox/redrive", key: deadKey.APIKey, contentType: "text/plain", body: `{"all":true}`, status: 415, code: "unsupported_media_type", invalid: true},
		{name: "redrive-403-scope", method: "POST", path: "/inbox/redrive", key: readOnly.APIKey, body: `{"all":true}`, status: 403, code: "forbidden"},
		{name: "redrive-401", method: "POST", path: "/inbox/redrive", body: `{"all":true}`, status: 401, code: "unauthenticated", invalid: true},
	})
	// Redriven events are back with a fresh count; leasing and acknowledging them ends the story.
	var back []leaseRef
	for len(back) < len(dead) {
		p := ls.pull(t, "pull-200-redriven", deadKey.APIKey, `{"max_events":10,"wait_seconds":5}`)
		if len(p.Events) == 0 {
			t.Fatalf("the redriven events are not leased again (%d of %d)", len(back), len(dead))
		}
		for _, e := range p.Events {
			if e.DeliveryCount != 1 {
				t.Errorf("redriven %s leased with delivery_count %d, want 1", e.EventID, e.DeliveryCount)
			}
		}
		back = append(back, leases(p)...)
	}
	c.do(t, call{name: "ack-200-redriven", method: "POST", path: "/ack", key: deadKey.APIKey, body: jsonBody(t, map[string]any{"leases": back}), status: 200})
}

// partitionedTenant: reads and pulls merge its partitions oldest first.
func (ls *liveScript) partitionedTenant(t *testing.T) {
	c, partsKey := ls.c, ls.partsKey
	var spread []string
	for i := range 6 {
		spread = append(spread, ls.post(t, fmt.Sprintf("ingest-202-partitioned-%d", i), partsKey.APIKey, fmt.Sprintf(`{"event_type":"customer.created","customer_id":"p%d"}`, i), nil, 202).EventID)
	}
	listedParts := c.until(t, call{name: "inbox-200-partitioned", method: "GET", path: "/inbox", key: partsKey.APIKey, status: 200}, func(a answer) bool {
		return len(decodeAs[eventPage](t, a).Events) >= len(spread)
	})
	partsPage := decodeAs[eventPage](t, listedParts)
	if got := ids(partsPage); !sameEvents(got, spread) {
		t.Errorf("the partitioned inbox lists %v, want %v", got, spread)
	}
	oldestFirst(t, "inbox-200-partitioned", partsPage)
	var partLeases []leaseRef
	for len(partLeases) < len(spread) {
		p := ls.pull(t, "pull-200-partitioned", partsKey.APIKey, `{"max_events":100,"wait_seconds":5}`)
		if len(p.Events) == 0 {
			t.Fatalf("pulls leased %d of %d partitioned events", len(partLeases), len(spread))
		}
		partLeases = append(partLeases, leases(p)...)
	}
	a := c.do(t, call{name: "ack-200-partitioned", method: "POST", path: "/ack", key: partsKey.APIKey, body: jsonBody(t, map[string]any{"leases": partLeases}), status: 200})
	if r := decodeAs[itemResults](t, a); r.Succeeded != len(spread) {
		t.Errorf("acking the partitioned events: %s", a.Body)
	}
}

func (ls *liveScript) otherTenantUntouched(t *testing.T) {
	c, otherKey, evB := ls.c, ls.otherKey, ls.evB
	// The other tenant's event is untouched by everything above.
	a := c.do(t, call{name: "get-event-200-untouched", method: "GET", path: "/events/" + evB.EventID, key: otherKey.APIKey, status: 200})
	if e := decodeAs[listedEvent](t, a); e.Status != "undelivered" || e.DeliveryCount != 0 {
		t.Errorf("the other tenant's event is now %+v", e)
	}
}
