package tenant

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiterBurstsThenPacesAtTheRate(t *testing.T) {
	l := newLimiter(10)
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 4 {
		if _, ok := l.take("acme", 4, t0); !ok {
			t.Fatalf("request %d of the first second's burst refused", i+1)
		}
	}
	wait, ok := l.take("acme", 4, t0)
	if ok || wait != 250*time.Millisecond {
		t.Fatalf("fifth request: ok %v, wait %v; want refused for 250ms", ok, wait)
	}
	// Refused requests cost nothing: a quarter second later exactly one more gets in.
	if _, ok := l.take("acme", 4, t0.Add(250*time.Millisecond)); !ok {
		t.Fatal("the token that came back was not granted")
	}
	if _, ok := l.take("acme", 4, t0.Add(250*time.Millisecond)); ok {
		t.Fatal("granted more than came back")
	}
	// Other tenants have buckets of their own, and rate 0 is no limit at all.
	if _, ok := l.take("globex", 4, t0); !ok {
		t.Fatal("globex paid for acme")
	}
	for range 100 {
		if _, ok := l.take("initech", 0, t0); !ok {
			t.Fatal("rate 0 refused a request")
		}
	}
	// A bucket never holds more than one second's worth, however long it idled.
	later := t0.Add(time.Hour)
	for i := range 5 {
		_, ok := l.take("acme", 4, later)
		if ok != (i < 4) {
			t.Fatalf("after an idle hour, request %d: ok %v", i+1, ok)
		}
	}
	// A lowered rate holds at once.
	later = later.Add(time.Hour)
	if _, ok := l.take("acme", 1, later); !ok {
		t.Fatal("first request at the lowered rate refused")
	}
	if wait, ok := l.take("acme", 1, later); ok || wait != time.Second {
		t.Fatalf("second request at rate 1: ok %v wait %v", ok, wait)
	}
}

func TestLimiterStaysBounded(t *testing.T) {
	l := newLimiter(8)
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 100 {
		l.take(fmt.Sprintf("tenant-%03d", i), 10, t0.Add(time.Duration(i)*time.Millisecond))
		if len(l.buckets) > 8 {
			t.Fatalf("%d buckets after %d tenants, bound 8", len(l.buckets), i+1)
		}
	}
}

func TestAdmitUsesTheTenantsOwnRateOverTheDefault(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := NewAuthenticator(nil, AuthConfig{RateLimit: 2}, func() time.Time { return now })
	own := Principal{TenantID: "acme", RateLimit: 1}
	if err := a.Admit(own); err != nil {
		t.Fatal(err)
	}
	err := a.Admit(own)
	rl, ok := err.(*RateLimitedError)
	if !ok || rl.RetryAfterSeconds() != 1 {
		t.Fatalf("second call at rate 1: %v", err)
	}
	def := Principal{TenantID: "globex"}
	for i := range 2 {
		if err := a.Admit(def); err != nil {
			t.Fatalf("call %d at the default rate 2: %v", i+1, err)
		}
	}
	if err := a.Admit(def); err == nil {
		t.Fatal("third call at the default rate 2 admitted")
	}
	off := NewAuthenticator(nil, AuthConfig{}, func() time.Time { return now })
	for range 50 {
		if err := off.Admit(def); err != nil {
			t.Fatalf("no default rate, yet refused: %v", err)
		}
	}
}

// TestLimiterEvictsOnlyWhatItCanForget: a full map forgets buckets that have refilled at their
// own rate, else the longest idle; a busy tenant's spent bucket survives a newcomer with a
// slower rate.
func TestLimiterEvictsOnlyWhatItCanForget(t *testing.T) {
	l := newLimiter(2)
	t0 := time.Unix(1_800_000_000, 0)
	for range 990 {
		l.take("busy", 1000, t0)
	}
	l.take("idle", 1, t0.Add(-time.Hour)) // refilled long ago at its own rate
	l.take("slow", 1, t0)                 // the newcomer: "idle" goes, not "busy"
	if _, ok := l.buckets["busy"]; !ok {
		t.Fatal("the busy tenant's spent bucket was forgotten")
	}
	granted := 0
	for range 100 {
		if _, ok := l.take("busy", 1000, t0); ok {
			granted++
		}
	}
	if granted != 10 {
		t.Fatalf("busy tenant got %d more requests, want the 10 it had left", granted)
	}
	// Nothing refilled: the longest idle goes, and the bound holds.
	l.take("third", 1, t0.Add(time.Millisecond))
	if len(l.buckets) > 2 {
		t.Fatalf("%d buckets, bound 2", len(l.buckets))
	}
	if _, ok := l.buckets["third"]; !ok {
		t.Fatal("the newcomer has no bucket")
	}
}

// Work an admitted request turned out to hold is paid for before the tenant's next request,
// in full; other tenants pay nothing.
func TestChargedWorkDelaysTheNextRequest(t *testing.T) {
	l := newLimiter(10)
	t0 := time.Unix(1_700_000_000, 0)
	if _, ok := l.take("acme", 10, t0); !ok {
		t.Fatal("first request refused")
	}
	l.charge("acme", 10, 99, t0) // a batch of 100 events
	wait, ok := l.take("acme", 10, t0)
	if ok || wait < time.Second {
		t.Fatalf("after a 100-item batch at 10/s: admitted %v, wait %v; want a wait of over a second", ok, wait)
	}
	// All of the work is paid for: 99 tokens of debt at 10/s are 9.9 s, not one second's worth.
	if wait, ok := l.take("acme", 10, t0.Add(5*time.Second)); ok || wait < 4*time.Second {
		t.Fatalf("5 s after 100 items at 10/s: admitted %v, wait %v; want about 5 s more", ok, wait)
	}
	if _, ok := l.take("acme", 10, t0.Add(10*time.Second)); !ok {
		t.Fatal("still refused once the work was paid for")
	}
	if _, ok := l.take("globex", 10, t0); !ok {
		t.Fatal("another tenant paid for acme's work")
	}
}

// A tenant owes from the moment charged work takes its bucket below zero until its rate has
// paid for it; other tenants owe nothing.
func TestOwesUntilTheWorkIsPaid(t *testing.T) {
	l := newLimiter(10)
	t0 := time.Unix(1_700_000_000, 0)
	if _, owes := l.owes("acme", 10, t0); owes {
		t.Fatal("a fresh tenant owes")
	}
	l.take("acme", 10, t0)
	l.charge("acme", 10, 29, t0) // 10 - 1 - 29 = -20 tokens: 2 s at 10/s
	if wait, owes := l.owes("acme", 10, t0); !owes || wait != 2*time.Second {
		t.Fatalf("owes %v for %v, want 2 s", owes, wait)
	}
	if wait, owes := l.owes("acme", 10, t0); !owes || wait != 2*time.Second {
		t.Fatalf("asking spent tokens: owes %v for %v, want still 2 s", owes, wait)
	}
	if _, owes := l.owes("acme", 10, t0.Add(2*time.Second)); owes {
		t.Fatal("still owes once the rate paid for the work")
	}
	if _, owes := l.owes("globex", 10, t0); owes {
		t.Fatal("another tenant owes acme's work")
	}
	if _, owes := l.owes("acme", 0, t0); owes {
		t.Fatal("an unlimited tenant owes")
	}
}

// A refusal waits at least the delay and at most half as long again, spread by its draw, so
// refusals held back together are answered apart.
func TestRefusalWaitSpreadsAboveTheDelay(t *testing.T) {
	const d = time.Second
	for _, c := range []struct {
		r    float64
		want time.Duration
	}{{0, d}, {0.5, 1250 * time.Millisecond}, {0.999, 1499500 * time.Microsecond}} {
		if got := refusalWait(d, c.r); got != c.want {
			t.Errorf("refusalWait(%v, %v) = %v, want %v", d, c.r, got, c.want)
		}
	}
}
