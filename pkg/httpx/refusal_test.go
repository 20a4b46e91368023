package httpx_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// A tenant over its rate is answered 429 only after the refusal delay, so a client that asks
// again at once cannot spin; once the slots are taken, refusals are answered at once, and a
// held one ends early when its client leaves. Authentication failures are never held.
func TestRateRefusalsAreAnsweredLate(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, tenant.AuthConfig{RateLimit: 1, RefusalDelay: time.Hour, RefusalSlots: 1})
	if a := e.call(t, "192.0.2.1:1", e.key); a.status != http.StatusNoContent {
		t.Fatalf("first call: %+v", a)
	}

	ctx, leave := context.WithCancel(context.Background())
	held := make(chan int)
	go func() {
		req := httptest.NewRequest(http.MethodGet, "/things", nil).WithContext(ctx)
		req.Header.Set("Authorization", "Bearer "+e.key)
		rec := httptest.NewRecorder()
		e.router.ServeHTTP(rec, req)
		held <- rec.Code
	}()
	waitUntil(t, "the refusal is held", func() bool { return e.auth.Holding() == 1 })

	// The one slot is taken: this refusal is answered at once, while the other still waits.
	if a := e.call(t, "192.0.2.1:1", e.key); a.status != http.StatusTooManyRequests || a.code != "rate_limited" || a.retryAfter == "" {
		t.Fatalf("refusal past the slots: %+v", a)
	}
	if a := e.call(t, "192.0.2.1:1", unknownKey(t)); a.status != http.StatusUnauthorized {
		t.Fatalf("unknown key: %+v", a)
	}
	select {
	case code := <-held:
		t.Fatalf("the held refusal was answered (%d) before its delay or its client's leaving", code)
	default:
	}
	leave()
	if code := <-held; code != http.StatusTooManyRequests {
		t.Fatalf("held refusal answered %d", code)
	}
	waitUntil(t, "the slot is given back", func() bool { return e.auth.Holding() == 0 })
}

// Without slots or delay (the zero configuration) nothing is held.
func TestRefusalsWithoutDelayAreImmediate(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, tenant.AuthConfig{RateLimit: 1})
	e.call(t, "192.0.2.1:1", e.key)
	if a := e.call(t, "192.0.2.1:1", e.key); a.status != http.StatusTooManyRequests || e.auth.Holding() != 0 {
		t.Fatalf("refusal: %+v, holding %d", a, e.auth.Holding())
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
