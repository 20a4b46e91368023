package ingestapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddbfault"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/events"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/services/ingest/ingestapi"
)

// faultFixture is ingest whose event writes pass a fault proxy; keys are read directly.
func faultFixture(t *testing.T) (*fixture, *ddbfault.Proxy, string) {
	t.Helper()
	p, err := ddbfault.Start(shared.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	client, err := ddblocal.ClientWith(context.Background(), ddb.Settings{Endpoint: p.URL(), AttemptTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tables := shared.Tables(t)
	f := &fixture{tenants: tenantdb.New(shared.Client, tables), events: eventsdb.New(shared.Client, tables)}
	f.h = ingestapi.NewRouter(ingestapi.Deps{
		Log:       zap.NewNop(),
		Publisher: queue.NewPublisher(eventsdb.New(client, tables), queue.Options{}),
		Auth:      tenant.NewAuthenticator(f.tenants, tenant.AuthConfig{}, nil),
		Ready:     func(context.Context) error { return nil },
	})
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	return f, p, apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
}

// A write DynamoDB applied but whose answer was lost is a 202 for exactly one stored event: the
// producer has no reason to send it again.
func TestPublishAnswerLostIsStoredOnce(t *testing.T) {
	t.Parallel()
	f, p, key := faultFixture(t)
	for _, op := range []string{"PutItem", "TransactWriteItems"} {
		p.Add(ddbfault.Rule{Op: op, Kind: ddbfault.ApplyThenDrop, Times: 1})
	}
	for _, idem := range []string{"", "order-1"} {
		req := apitest.Request{Method: "POST", Path: "/events", Key: key, Body: `{"event_type":"a"}`}
		if idem != "" {
			req.Header = http.Header{"Idempotency-Key": {idem}}
		}
		res := apitest.Do(t, f.h, req)
		if res.Status != http.StatusAccepted || res.Header.Get("Idempotent-Replayed") == "true" {
			t.Fatalf("publish (idempotency key %q) with its answer lost: %d %s", idem, res.Status, res.Body)
		}
	}
	for _, op := range []string{"PutItem", "TransactWriteItems"} {
		if n := p.Acted(op, ddbfault.ApplyThenDrop); n != 1 {
			t.Fatalf("%s answers dropped: %d, want 1", op, n)
		}
	}
	page, err := f.events.Inbox(context.Background(), events.InboxQuery{TenantID: "acme", Partitions: 1, Limit: 10, Now: time.Now()})
	if err != nil || len(page.Events) != 2 {
		t.Fatalf("stored: %d events, %v; want exactly the 2 accepted", len(page.Events), err)
	}
}

// A stalled DynamoDB is 503 unavailable with Retry-After, for one event and per batch item.
func TestStalledDynamoDBAnswers503(t *testing.T) {
	t.Parallel()
	f, p, key := faultFixture(t)
	p.Add(ddbfault.Rule{Kind: ddbfault.Stall})
	defer p.Release()
	res := apitest.Do(t, f.h, apitest.Request{Method: "POST", Path: "/events", Key: key, Body: `{"event_type":"a"}`})
	res.ExpectError(t, http.StatusServiceUnavailable, "unavailable")
	if res.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	res = apitest.Do(t, f.h, apitest.Request{Method: "POST", Path: "/events/batch", Key: key, Body: `{"events":[{"event_type":"a"}]}`})
	var batch api.BatchAnswer
	res.JSON(t, &batch)
	if len(batch.Results) != 1 || batch.Results[0].Error == nil || batch.Results[0].Error.Code != "unavailable" {
		t.Fatalf("batch during a stall: %d %s, want its item unavailable", res.Status, res.Body)
	}
}
