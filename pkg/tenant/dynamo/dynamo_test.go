package dynamo_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddbfault"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	"github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/pkg/tenant/tenanttest"
)

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

func TestConformance(t *testing.T) {
	tenanttest.Run(t, func(t *testing.T) tenant.Store {
		return dynamo.New(shared.Client, shared.Tables(t))
	})
}

// A create whose answer was lost, and which the SDK sent again, meets its own tenant: that is
// a success, not tenant_exists.
func TestCreateTenantRetryMeetsItsOwnWrite(t *testing.T) {
	t.Parallel()
	p, err := ddbfault.Start(shared.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	client, err := ddblocal.ClientWith(context.Background(), ddb.Settings{Endpoint: p.URL()})
	if err != nil {
		t.Fatal(err)
	}
	s := dynamo.New(client, shared.Tables(t))
	p.Add(ddbfault.Rule{Op: "PutItem", Kind: ddbfault.ApplyThenDrop, Times: 1,
		Match: func(b []byte) bool { return bytes.Contains(b, []byte("retried-co")) }})
	now := time.Now().UTC().Truncate(time.Millisecond)
	tn := tenant.Tenant{ID: "retried-co", Name: "Retried Co", Status: tenant.StatusActive, Partitions: 1, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateTenant(context.Background(), tn); err != nil {
		t.Fatalf("create: %v", err)
	}
	if n := p.Acted("PutItem", ddbfault.ApplyThenDrop); n != 1 {
		t.Fatalf("answers dropped: %d, want 1 (the fault never happened)", n)
	}
	other := tn
	other.Name = "Someone Else"
	if err := s.CreateTenant(context.Background(), other); !errors.Is(err, tenant.ErrExists) {
		t.Fatalf("a second, different create: %v, want ErrExists", err)
	}
}
