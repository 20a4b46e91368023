package queue

import (
	"context"
	"errors"
	"testing"
	"time"

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
		leave, err := g.enter(ctx, "noisy")
		if err != nil {
			t.Fatalf("turn within the tenant's bound: %v", err)
		}
		held = append(held, leave)
	}
	var rl *tenant.RateLimitedError
	if _, err := g.enter(ctx, "noisy"); !errors.As(err, &rl) {
		t.Fatalf("a turn past the tenant's bound: %v, want a rate-limit answer", err)
	}
	leave, err := g.enter(ctx, "quiet")
	if err != nil {
		t.Fatalf("another tenant while the first is full: %v", err)
	}
	leave()
	held[0]()
	if leave, err := g.enter(ctx, "noisy"); err != nil {
		t.Fatalf("a turn after one was given back: %v", err)
	} else {
		held[0] = leave
	}
	for _, l := range held {
		l()
	}
	if n := g.tenants.Busy(); n != 0 {
		t.Fatalf("idle gate still tracks %d tenants", n)
	}

	for i := range allReads {
		leave, err := g.enter(ctx, string(rune('a'+i)))
		if err != nil {
			t.Fatalf("turn %d within the process bound: %v", i, err)
		}
		defer leave()
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
