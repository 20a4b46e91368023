package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/slots"
	"github.com/trigger-api/trigger-api/pkg/storage"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// One tenant holding all its turns waits, then gets 429, while another tenant reads; a turn
// given back lets the next one in; the process-wide bound answers 503.
func TestReadGateBoundsEachTenantAndTheProcess(t *testing.T) {
	g := newReadGate()
	g.wait = 50 * time.Millisecond
	ctx := context.Background()
	var held []func()
	for range perTenantReads {
		rt, err := g.enter(ctx, "noisy")
		if err != nil {
			t.Fatalf("turn within the tenant's bound: %v", err)
		}
		held = append(held, rt.leave)
	}
	var rl *tenant.RateLimitedError
	if _, err := g.enter(ctx, "noisy"); !errors.As(err, &rl) {
		t.Fatalf("a turn past the tenant's bound: %v, want a rate-limit answer", err)
	}
	rt, err := g.enter(ctx, "quiet")
	if err != nil {
		t.Fatalf("another tenant while the first is full: %v", err)
	}
	rt.leave()
	held[0]()
	if rt, err := g.enter(ctx, "noisy"); err != nil {
		t.Fatalf("a turn after one was given back: %v", err)
	} else {
		held[0] = rt.leave
	}
	for _, l := range held {
		l()
	}
	if n := g.tenants.Busy(); n != 0 {
		t.Fatalf("idle gate still tracks %d tenants", n)
	}

	for i := range allReads {
		rt, err := g.enter(ctx, string(rune('a'+i)))
		if err != nil {
			t.Fatalf("turn %d within the process bound: %v", i, err)
		}
		defer rt.leave()
	}
	if _, err := g.enter(ctx, "late"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("a turn past the process bound: %v, want unavailable", err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.enter(gone, "late"); !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller that left: %v, want its own cancellation", err)
	}
}

// A read kept for its answer gives the process's place back when the read is done and keeps
// only its tenant's, so a slow client holds up its own tenant's reads and nobody else's.
func TestKeptTurnHoldsOnlyItsTenantsPlace(t *testing.T) {
	g := &readGate{all: make(chan struct{}, 1), wait: 50 * time.Millisecond, tenants: slots.NewKeyed(perTenantReads)}
	held, release := HoldReads(context.Background())
	rt, err := g.enter(held, "slow")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.enter(context.Background(), "other"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("another tenant while the process's one place is read with: %v, want busy", err)
	}
	keepTurn(held, rt, true)
	if n := g.tenants.Users("slow"); n != 1 {
		t.Fatalf("the kept turn holds %d of its tenant's places, want 1", n)
	}
	other, err := g.enter(context.Background(), "other")
	if err != nil {
		t.Fatalf("another tenant once the read is done: %v", err)
	}
	other.leave()
	release()
	release()
	if n := g.tenants.Users("slow"); n != 0 {
		t.Fatalf("after release its tenant still has %d places taken", n)
	}
	// A read that answered nothing keeps nothing, held or not.
	rt, err = g.enter(held, "slow")
	if err != nil {
		t.Fatal(err)
	}
	keepTurn(held, rt, false)
	if n := g.tenants.Users("slow"); n != 0 || len(g.all) != 0 {
		t.Fatalf("an empty read kept %d tenant places and %d of the process's", n, len(g.all))
	}
}
