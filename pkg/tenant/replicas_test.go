package tenant

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// admitted counts the calls p's tenant is admitted at one instant, up to limit.
func admitted(a *Authenticator, p Principal, limit int) int {
	n := 0
	for range limit {
		if a.Admit(p) == nil {
			n++
		}
	}
	return n
}

// fakeDNS answers each resolve with the next of its answers, repeating the last.
type fakeDNS struct {
	mu      sync.Mutex
	answers []dnsAnswer
	calls   int
}

type dnsAnswer struct {
	addrs []string
	err   error
}

func (f *fakeDNS) resolve(context.Context, string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.answers[min(f.calls, len(f.answers)-1)]
	f.calls++
	return a.addrs, a.err
}

// TestFleetRateIsSharedAmongReplicas: with the replicas counted, each admits its share of a
// tenant's rate, rounded up; a failed or empty count keeps the last one.
func TestFleetRateIsSharedAmongReplicas(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	a := NewAuthenticator(nil, AuthConfig{RateLimit: 100, RateReplicas: "ingest-peers"}, clock)
	if got := admitted(a, Principal{TenantID: "before"}, 200); got != 100 {
		t.Fatalf("before counting: %d admitted, want the whole rate 100", got)
	}
	dns := &fakeDNS{answers: []dnsAnswer{
		{addrs: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}},
		{err: errors.New("no such host")},
		{addrs: nil},
	}}
	log := zap.NewNop()
	a.countReplicas(context.Background(), log, "ingest-peers", dns.resolve)
	if a.Replicas() != 3 {
		t.Fatalf("replicas %d, want 3", a.Replicas())
	}
	if got := admitted(a, Principal{TenantID: "acme"}, 200); got != 34 {
		t.Errorf("default rate 100 over 3 replicas: %d admitted, want 34", got)
	}
	if got := admitted(a, Principal{TenantID: "globex", RateLimit: 2}, 10); got != 1 {
		t.Errorf("own rate 2 over 3 replicas: %d admitted, want 1 (never 0)", got)
	}
	for range 2 { // an error, then an empty answer
		a.countReplicas(context.Background(), log, "ingest-peers", dns.resolve)
		if a.Replicas() != 3 {
			t.Fatalf("after a failed count: replicas %d, want the last count 3", a.Replicas())
		}
	}
	off := NewAuthenticator(nil, AuthConfig{RateLimit: 100}, clock)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	off.FollowReplicas(ctx, log, dns.resolve) // no RateReplicas: returns without counting
	if off.Replicas() != 1 || admitted(off, Principal{TenantID: "acme"}, 200) != 100 {
		t.Errorf("without TENANT_RATE_REPLICAS the rate is per replica: replicas %d", off.Replicas())
	}
}

// TestFollowReplicasCountsUntilStopped: the loop counts at once, follows a scale-up, and ends
// with its context.
func TestFollowReplicasCountsUntilStopped(t *testing.T) {
	a := NewAuthenticator(nil, AuthConfig{RateLimit: 10, RateReplicas: "inbox-peers"}, nil)
	dns := &fakeDNS{answers: []dnsAnswer{{addrs: []string{"10.0.0.1", "10.0.0.2"}}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.FollowReplicas(ctx, zap.NewNop(), dns.resolve); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for a.Replicas() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("replicas %d after 10 s, want 2", a.Replicas())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("FollowReplicas did not end with its context")
	}
}

func TestLookupHostCountsLoopbackOnce(t *testing.T) {
	addrs, err := lookupHost(context.Background(), "127.0.0.1")
	if err != nil || len(addrs) != 1 {
		t.Fatalf("lookupHost(127.0.0.1) = %v, %v; want one address", addrs, err)
	}
}
