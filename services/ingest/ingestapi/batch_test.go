package ingestapi_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/events"
)

func postIdem(t *testing.T, f *fixture, key, idem, body string) apitest.Response {
	t.Helper()
	return apitest.Do(t, f.h, apitest.Request{Method: "POST", Path: "/events", Key: key, Body: body,
		Header: http.Header{"Idempotency-Key": {idem}}})
}

func stored(t *testing.T, f *fixture, tenantID string) []events.Event {
	t.Helper()
	page, err := f.events.Inbox(context.Background(), events.InboxQuery{TenantID: tenantID, Partitions: 1, Limit: 100, Now: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return page.Events
}

func TestIdempotentIngest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})

	first := postIdem(t, f, key, "order-42", seedBody)
	var a, b struct {
		EventID    string `json:"event_id"`
		ReceivedAt int64  `json:"received_at"`
	}
	first.JSON(t, &a)
	if first.Status != 202 || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v", first.Status, first.Header)
	}
	replay := postIdem(t, f, key, "order-42", seedBody)
	replay.JSON(t, &b)
	if replay.Status != 200 || replay.Header.Get("Idempotent-Replayed") != "true" || b != a {
		t.Fatalf("replay: %d %s %v", replay.Status, replay.Body, replay.Header)
	}
	postIdem(t, f, key, "order-42", `{"event_type":"customer.created","customer_id":"999"}`).ExpectError(t, 409, "idempotency_conflict")
	if n := len(stored(t, f, "acme")); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}

	// Twenty identical requests at once create one event, and all answer with its id.
	var mu sync.Mutex
	ids := map[string]int{}
	created := 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := postIdem(t, f, key, "race", `{"event_type":"invoice.paid","amount":3200}`)
			var got struct {
				EventID string `json:"event_id"`
			}
			res.JSON(t, &got)
			mu.Lock()
			defer mu.Unlock()
			ids[got.EventID]++
			if res.Status == 202 {
				created++
			} else if res.Status != 200 {
				t.Errorf("racing request: %d %s", res.Status, res.Body)
			}
		}()
	}
	wg.Wait()
	if created != 1 || len(ids) != 1 || len(stored(t, f, "acme")) != 2 {
		t.Fatalf("race: %d created, ids %v", created, ids)
	}

	for name, h := range map[string]string{"empty": "", "too-long": strings.Repeat("k", 256), "control": "a\tb"} {
		t.Run("ingest-400-idempotency-key-"+name, func(t *testing.T) {
			postIdem(t, f, key, h, seedBody).ExpectError(t, 400, "invalid_request")
		})
	}
}

func TestBatchIngest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	items := []string{
		`{"event_type":"customer.created","customer_id":"1"}`,
		`{"customer_id":"no type"}`,
		`[1,2]`,
		`{"event_type":"invoice.paid","idempotency_key":"inv-1","amount":3200}`,
		`{"event_type":"bad type"}`,
		`{"event_type":"invoice.paid","idempotency_key":"inv-1","amount":3200}`,
		`{"event_type":"x","idempotency_key":7}`,
		`{"event_type":"customer.created","customer_id":"2"}`,
	}
	body := `{"events":[` + strings.Join(items, ",") + `]}`
	res := apitest.Do(t, f.h, apitest.Request{Method: "POST", Path: "/events/batch", Key: key, Body: body})
	var got struct {
		Results []struct {
			EventID  string `json:"event_id"`
			Status   string `json:"status"`
			Replayed bool   `json:"replayed"`
			Error    *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
		FailedCount int `json:"failed_count"`
	}
	res.JSON(t, &got)
	if res.Status != 200 || len(got.Results) != len(items) || got.FailedCount != 4 {
		t.Fatalf("batch: %d %s", res.Status, res.Body)
	}
	wantErr := map[int]string{1: "invalid_event", 2: "invalid_event", 4: "invalid_event", 6: "invalid_request"}
	for i, r := range got.Results {
		if code, bad := wantErr[i]; bad {
			if r.Error == nil || r.Error.Code != code || r.EventID != "" {
				t.Fatalf("item %d: %+v, want error %s", i, r, code)
			}
		} else if r.Error != nil || r.Status != "accepted" || !events.ValidID(r.EventID) {
			t.Fatalf("item %d: %+v", i, r)
		}
	}
	// Item 5 repeats item 3's key and body: the same event, replayed.
	if got.Results[5].EventID != got.Results[3].EventID || got.Results[3].Replayed == got.Results[5].Replayed {
		t.Fatalf("idempotent items: %+v / %+v", got.Results[3], got.Results[5])
	}
	es := stored(t, f, "acme")
	if len(es) != 3 {
		t.Fatalf("%d events stored, want 3", len(es))
	}
	byID := map[string]string{}
	for _, e := range es {
		byID[e.ID] = string(e.Payload)
	}
	for _, i := range []int{0, 3, 7} {
		if byID[got.Results[i].EventID] != items[i] {
			t.Fatalf("item %d stored as %q", i, byID[got.Results[i].EventID])
		}
	}
}

func TestBatchBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	many := make([]string, 101)
	for i := range many {
		many[i] = `{"event_type":"a"}`
	}
	big := `{"events":[{"event_type":"a","pad":"` + strings.Repeat("x", 1<<20) + `"}]}`
	cases := []struct {
		name, body, ct string
		status         int
		code           string
	}{
		{"batch-400-not-json", `nope`, "", 400, "invalid_json"},
		{"batch-400-no-events", `{}`, "", 400, "invalid_request"},
		{"batch-400-empty", `{"events":[]}`, "", 400, "invalid_request"},
		{"batch-400-over-100", `{"events":[` + strings.Join(many, ",") + `]}`, "", 400, "invalid_request"},
		{"batch-400-unknown-field", `{"events":[{"event_type":"a"}],"x":1}`, "", 400, "invalid_json"},
		{"batch-400-trailing", `{"events":[{"event_type":"a"}]} {}`, "", 400, "invalid_json"},
		{"batch-400-duplicate-events", `{"events":[{"event_type":"a"}],"events":[{"event_type":"b"}]}`, "", 400, "invalid_json"},
		{"batch-413", big, "", 413, "payload_too_large"},
		{"batch-415", `{"events":[]}`, "text/plain", 415, "unsupported_media_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitest.Do(t, f.h, apitest.Request{Method: "POST", Path: "/events/batch", Key: key, Body: tc.body, ContentType: tc.ct}).
				ExpectError(t, tc.status, tc.code)
		})
	}
	if n := len(stored(t, f, "acme")); n != 0 {
		t.Fatalf("refused batches stored %d events", n)
	}
}
