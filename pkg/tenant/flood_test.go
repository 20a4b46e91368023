package tenant_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

const attacker = "198.51.100.7"

func bogusKey(t *testing.T) string {
	t.Helper()
	k, err := apikey.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	return k.String()
}

// waitFor polls cond until it holds, failing after thirty seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAuthenticateFloodOfUnknownKeysKeepsKnownKeysCached(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	a := f.auth(tenant.AuthConfig{MaxEntries: 50, NegativeMaxEntries: 20})
	known := []string{f.raw}
	for range 9 {
		raw, _ := f.addKey(t, "acme", "acme")
		known = append(known, raw)
	}
	for _, raw := range known {
		mustAuth(t, a, raw)
	}
	keysBefore, _ := f.store.reads()
	// Fifty times the refused room: every bogus key is read, remembered, and pushed out again.
	for range 1000 {
		mustRefuse(t, a, bogusKey(t))
	}
	keysAfterFlood, _ := f.store.reads()
	if keysAfterFlood-keysBefore != 1000 {
		t.Fatalf("the flood cost %d key reads, want 1000", keysAfterFlood-keysBefore)
	}
	for _, raw := range known {
		mustAuth(t, a, raw)
	}
	if keys, _ := f.store.reads(); keys != keysAfterFlood {
		t.Fatalf("known keys cost %d reads after the flood, want 0: the flood evicted them", keys-keysAfterFlood)
	}
}

func TestAuthenticateRefusedRoomIsBounded(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	a := f.auth(tenant.AuthConfig{NegativeMaxEntries: 3})
	first := bogusKey(t)
	mustRefuse(t, a, first)
	for range 3 {
		mustRefuse(t, a, bogusKey(t))
	}
	// The first refusal was the least recently seen of four in a room of three.
	mustRefuse(t, a, first)
	if keys, _ := f.store.reads(); keys != 5 {
		t.Fatalf("%d key reads, want 5: the oldest refusal should have been forgotten", keys)
	}
}

func TestAuthenticateCoalescesConcurrentFirstLookups(t *testing.T) {
	t.Parallel()
	const n = 32
	for _, tc := range []struct {
		name  string
		raw   func(f authFixture) string
		valid bool
	}{
		{"known-key", func(f authFixture) string { return f.raw }, true},
		{"unknown-key", func(authFixture) string { return bogusKey(t) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newAuthFixture(t)
			gate := make(chan struct{})
			f.store.keyGate = gate
			a := f.auth(tenant.AuthConfig{})
			raw := tc.raw(f)
			errs := make(chan error, n)
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					_, err := a.Authenticate(context.Background(), raw)
					errs <- err
				})
			}
			waitFor(t, "every request to wait on the one read", func() bool { return a.FlightWaiters(raw) == n-1 })
			close(gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				if tc.valid && err != nil || !tc.valid && err != tenant.ErrUnauthenticated {
					t.Fatalf("authenticate: %v", err)
				}
			}
			if keys, _ := f.store.reads(); keys != 1 {
				t.Fatalf("%d concurrent first requests read the key %d times, want 1", n, keys)
			}
		})
	}
}

func TestAuthenticateWaiterRereadsWhenTheReaderGivesUp(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	gate := make(chan struct{})
	f.store.keyGate = gate
	a := f.auth(tenant.AuthConfig{})
	readerCtx, cancelReader := context.WithCancel(context.Background())
	readerErr := make(chan error, 1)
	go func() {
		_, err := a.Authenticate(readerCtx, f.raw)
		readerErr <- err
	}()
	waitFor(t, "the first read", func() bool { keys, _ := f.store.reads(); return keys == 1 })
	waiterErr := make(chan error, 1)
	go func() {
		_, err := a.Authenticate(context.Background(), f.raw)
		waiterErr <- err
	}()
	waitFor(t, "the second request to wait", func() bool { return a.FlightWaiters(f.raw) == 1 })
	// The reader's own request is gone; its store call ends with its context.
	cancelReader()
	f.store.mu.Lock()
	f.store.keyGate = nil
	f.store.mu.Unlock()
	close(gate)
	if err := <-readerErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("reader: got %v, want context.Canceled", err)
	}
	if err := <-waiterErr; err != nil {
		t.Fatalf("waiter inherited the reader's failure: %v", err)
	}
}

func TestAuthenticateFailureBudget(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	a := f.auth(tenant.AuthConfig{FailureBurst: 3, FailureRate: 0.5})
	ctx := context.Background()
	// Known before the address goes bad.
	if _, err := a.AuthenticateClient(ctx, f.raw, attacker); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := a.AuthenticateClient(ctx, bogusKey(t), attacker); err != tenant.ErrUnauthenticated {
			t.Fatalf("failure %d within the budget: got %v, want ErrUnauthenticated", i+1, err)
		}
	}
	readsAtLimit, _ := f.store.reads()
	for name, raw := range map[string]string{"unknown": bogusKey(t), "malformed": "nope", "empty": ""} {
		_, err := a.AuthenticateClient(ctx, raw, attacker)
		var tf *tenant.TooManyFailuresError
		if !errors.As(err, &tf) || errors.Is(err, tenant.ErrUnauthenticated) {
			t.Fatalf("%s key over the budget: got %v, want TooManyFailuresError", name, err)
		}
		if got := tf.RetryAfterSeconds(); got != 2 {
			t.Fatalf("Retry-After %d s, want 2 at half a failure a second", got)
		}
	}
	if keys, _ := f.store.reads(); keys != readsAtLimit {
		t.Fatalf("an address over its budget cost %d key reads, want 0", keys-readsAtLimit)
	}
	// The known key still works from the same address, fresh and once its entry is stale.
	if _, err := a.AuthenticateClient(ctx, f.raw, attacker); err != nil {
		t.Fatalf("known key from a limited address: %v", err)
	}
	f.clock.Advance(31 * time.Second)
	if _, err := a.AuthenticateClient(ctx, f.raw, attacker); err != nil {
		t.Fatalf("stale known key from a limited address: %v", err)
	}
	// Other addresses have budgets of their own.
	if _, err := a.AuthenticateClient(ctx, bogusKey(t), "203.0.113.9"); err != tenant.ErrUnauthenticated {
		t.Fatalf("another address: got %v, want ErrUnauthenticated", err)
	}
	// 31 s at 0.5 a second refilled the whole burst.
	for i := range 3 {
		if _, err := a.AuthenticateClient(ctx, bogusKey(t), attacker); err != tenant.ErrUnauthenticated {
			t.Fatalf("failure %d after the refill: got %v, want ErrUnauthenticated", i+1, err)
		}
	}
}

func TestAuthenticateValidKeysSpendNoFailureBudget(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	a := f.auth(tenant.AuthConfig{FailureBurst: 1, FailureRate: 1})
	ctx := context.Background()
	for range 5 {
		raw, _ := f.addKey(t, "acme", "acme")
		if _, err := a.AuthenticateClient(ctx, raw, attacker); err != nil {
			t.Fatalf("a first use of a valid key: %v", err)
		}
	}
	if _, err := a.AuthenticateClient(ctx, bogusKey(t), attacker); err != tenant.ErrUnauthenticated {
		t.Fatalf("the one failure of the budget: got %v", err)
	}
	// Over the budget, a valid key not yet known cannot be told from a guess without a read.
	raw, _ := f.addKey(t, "acme", "acme")
	var tf *tenant.TooManyFailuresError
	if _, err := a.AuthenticateClient(ctx, raw, attacker); !errors.As(err, &tf) {
		t.Fatalf("an unknown valid key over the budget: got %v, want TooManyFailuresError", err)
	}
	// The unknown address "" is never limited.
	for range 3 {
		mustRefuse(t, a, bogusKey(t))
	}
}

func TestAuthenticateFailureTableIsBounded(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	a := f.auth(tenant.AuthConfig{FailureBurst: 1, FailureRate: 1, FailureMaxAddresses: 2})
	ctx := context.Background()
	var tf *tenant.TooManyFailuresError
	for _, addr := range []string{"192.0.2.1", "192.0.2.2"} {
		_, _ = a.AuthenticateClient(ctx, "bad", addr)
		if _, err := a.AuthenticateClient(ctx, "bad", addr); !errors.As(err, &tf) {
			t.Fatalf("%s over its budget: got %v", addr, err)
		}
	}
	// A third address pushes out the least recently failing one, which starts afresh.
	_, _ = a.AuthenticateClient(ctx, "bad", "192.0.2.3")
	if _, err := a.AuthenticateClient(ctx, "bad", "192.0.2.1"); err != tenant.ErrUnauthenticated {
		t.Fatalf("forgotten address: got %v, want a fresh budget", err)
	}
}

func TestAuthenticateRecordsLastUseOncePerHour(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	a := f.auth(tenant.AuthConfig{})
	first := f.clock.Now()
	mustAuth(t, a, f.raw)
	f.clock.Advance(10 * time.Minute) // past the cache TTL: the key is read again
	mustAuth(t, a, f.raw)
	a.WaitWrites()
	if writes, _ := f.store.uses(); writes != 1 {
		t.Fatalf("two authentications within the hour wrote the last use %d times, want 1", writes)
	}
	k, err := f.store.KeyByHash(context.Background(), f.key.Hash)
	if err != nil || !k.LastUsedAt.Equal(first) {
		t.Fatalf("stored last use %v (%v), want %v", k.LastUsedAt, err, first)
	}
	// Another replica, whose cache is empty, learns the recent use from the store.
	mustAuth(t, f.auth(tenant.AuthConfig{}), f.raw)
	f.clock.Advance(50 * time.Minute)
	mustAuth(t, a, f.raw)
	a.WaitWrites()
	if writes, _ := f.store.uses(); writes != 2 {
		t.Fatalf("a use an hour later: %d writes, want 2", writes)
	}
	k, _ = f.store.KeyByHash(context.Background(), f.key.Hash)
	if want := first.Add(time.Hour); !k.LastUsedAt.Equal(want) {
		t.Fatalf("stored last use %v, want %v", k.LastUsedAt, want)
	}
}

func TestAuthenticateLastUseNeverDelaysNorFails(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	gate := make(chan struct{})
	f.store.useGate = gate
	f.store.failUses = errors.New("the write fails")
	a := f.auth(tenant.AuthConfig{})
	var raws []string
	for range 20 {
		raw, _ := f.addKey(t, "acme", "acme")
		raws = append(raws, raw)
	}
	// Every write hangs; the requests return all the same.
	for _, raw := range raws {
		mustAuth(t, a, raw)
	}
	waitFor(t, "the writers to start", func() bool { _, inFlight := f.store.uses(); return inFlight > 0 })
	if writes, inFlight := f.store.uses(); writes > 8 || inFlight > 8 {
		t.Fatalf("%d writes started, %d at once; want at most 8", writes, inFlight)
	}
	close(gate)
	a.WaitWrites()
	if writes, _ := f.store.uses(); writes != 8 {
		t.Fatalf("%d writes, want 8: the eight slots taken and no more", writes)
	}
	// The uses that found no writer free are recorded on a later request; the failed ones wait
	// for the next hour.
	f.store.mu.Lock()
	f.store.useGate, f.store.failUses = nil, nil
	f.store.mu.Unlock()
	recorded := 0
	for _, raw := range raws {
		mustAuth(t, a, raw)
		a.WaitWrites()
		k, _ := apikey.Parse(raw)
		stored, err := f.store.KeyByHash(context.Background(), k.Hash())
		if err != nil {
			t.Fatal(err)
		}
		if !stored.LastUsedAt.IsZero() {
			recorded++
		}
	}
	if writes, _ := f.store.uses(); writes != 20 || recorded != 12 {
		t.Fatalf("%d writes and %d uses recorded, want 20 and 12", writes, recorded)
	}
}

// A key read that panics still answers the requests waiting on it, with an error nothing
// caches: they must not wait forever.
func TestAuthenticatePanickingReadReleasesItsWaiters(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	gate := make(chan struct{})
	f.store.keyGate, f.store.panicReads = gate, true
	a := f.auth(tenant.AuthConfig{})
	leaderPanic := make(chan any, 1)
	go func() {
		defer func() { leaderPanic <- recover() }()
		_, _ = a.Authenticate(context.Background(), f.raw)
	}()
	waitFor(t, "the first read", func() bool { keys, _ := f.store.reads(); return keys == 1 })
	waiterErr := make(chan error, 1)
	go func() {
		_, err := a.Authenticate(context.Background(), f.raw)
		waiterErr <- err
	}()
	waitFor(t, "the second request to wait", func() bool { return a.FlightWaiters(f.raw) == 1 })
	f.store.mu.Lock()
	f.store.keyGate = nil
	f.store.mu.Unlock()
	close(gate)
	if p := <-leaderPanic; p == nil {
		t.Fatal("the read did not panic")
	}
	if err := <-waiterErr; err == nil || errors.Is(err, tenant.ErrUnauthenticated) {
		t.Fatalf("waiter: got %v, want an error that is not a refusal", err)
	}
	f.store.mu.Lock()
	f.store.panicReads = false
	f.store.mu.Unlock()
	if _, err := a.Authenticate(context.Background(), f.raw); err != nil {
		t.Fatalf("after the panic: %v (a failure was cached)", err)
	}
}

// An address's guesses are read a few at a time, the rest waiting their turn, while another
// address's first read goes ahead: a burst of guesses never reaches the store at once.
func TestAuthenticateBoundsReadsOfUnknownKeysPerAddress(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	gate := make(chan struct{})
	f.store.keyGate = gate
	a := f.auth(tenant.AuthConfig{FailureBurst: 20, FailureRate: 1})
	const guesses = 6
	errs := make(chan error, guesses+1)
	var wg sync.WaitGroup
	for range guesses {
		raw := bogusKey(t)
		wg.Go(func() {
			_, err := a.AuthenticateClient(context.Background(), raw, attacker)
			errs <- err
		})
	}
	// Counted as it enters, a guess reads only once it holds a place: wait for both.
	waitFor(t, "every guess to hold or wait for a read, two of them reading", func() bool {
		keys, _ := f.store.reads()
		return a.AddressReads(attacker) == guesses && keys == tenant.ReadsPerAddress
	})
	if keys, _ := f.store.reads(); keys != tenant.ReadsPerAddress {
		t.Fatalf("%d guesses from one address made %d reads at once, want %d", guesses, keys, tenant.ReadsPerAddress)
	}
	wg.Go(func() {
		_, err := a.AuthenticateClient(context.Background(), f.raw, "203.0.113.9")
		errs <- err
	})
	waitFor(t, "another address's read", func() bool { keys, _ := f.store.reads(); return keys == tenant.ReadsPerAddress+1 })
	close(gate)
	wg.Wait()
	close(errs)
	refused := 0
	for err := range errs {
		switch {
		case err == tenant.ErrUnauthenticated:
			refused++
		case err != nil:
			t.Fatalf("authenticate: %v", err)
		}
	}
	if keys, _ := f.store.reads(); refused != guesses || keys != guesses+1 {
		t.Fatalf("%d refused, %d reads; want %d and %d", refused, keys, guesses, guesses+1)
	}
	if n := a.AddressReads(attacker); n != 0 {
		t.Fatalf("%d reads still counted for the address", n)
	}
}
