package queue

import (
	"context"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// clock is a time the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newGaugedInbox(t *testing.T, store *fakeStore, perTenant bool) (*Inbox, *telemetry.Telemetry, *clock) {
	t.Helper()
	tel, err := telemetry.New(tracenoop.NewTracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.UnixMilli(1_732_140_249_000)}
	q := NewInbox(store, Options{Now: c.now, Tel: tel, Metrics: telemetry.MetricsOptions{MetricsTenantLabel: perTenant}})
	t.Cleanup(q.Drain)
	return q, tel, c
}

var seriesLine = regexp.MustCompile(`^([a-z_]+)(\{[^}]*\})? (\S+)$`)

// gauge reads name's samples from /metrics, keyed by the tenant label's value ("" without one).
func gauge(t *testing.T, tel *telemetry.Telemetry, name string) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := map[string]float64{}
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		m := seriesLine.FindStringSubmatch(line)
		if m == nil || m[1] != name {
			continue
		}
		tenantID := ""
		if tm := regexp.MustCompile(`trigger_tenant_id="([^"]*)"`).FindStringSubmatch(m[2]); tm != nil {
			tenantID = tm[1]
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		out[tenantID] = v
	}
	return out
}

func pullNow(t *testing.T, q *Inbox, p tenant.Principal, max int) int {
	t.Helper()
	got, err := q.Pull(context.Background(), p, PullQuery{Max: max, Visibility: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return len(got)
}

// TestOldestEventAge: the gauge is the age of the oldest event the tenant's latest pull leased,
// 0 once a pull finds nothing, the largest over tenants without the tenant label, and a tenant
// without a pull for headAgeKeep drops out.
func TestOldestEventAge(t *testing.T) {
	const name = "trigger_inbox_oldest_event_age_seconds"
	globex := tenant.Principal{TenantID: "globex", Partitions: 1}
	for _, perTenant := range []bool{false, true} {
		t.Run("tenant-label-"+strconv.FormatBool(perTenant), func(t *testing.T) {
			store := &fakeStore{}
			q, tel, c := newGaugedInbox(t, store, perTenant)
			start := c.now()
			store.add(start.Add(-10 * time.Minute)) // the head of a backlog
			store.add(start.Add(-time.Minute))
			store.add(start.Add(-time.Second))
			if got := gauge(t, tel, name); !perTenant && got[""] != 0 {
				t.Errorf("before any pull: %v, want 0", got)
			}
			if n := pullNow(t, q, acme, 2); n != 2 {
				t.Fatalf("leased %d, want 2", n)
			}
			c.add(30 * time.Second) // the sample is the age at the pull, not growing after it
			if n := pullNow(t, q, globex, 1); n != 1 {
				t.Fatalf("leased %d, want 1", n)
			}
			want := map[string]float64{"": 600}
			if perTenant {
				want = map[string]float64{"acme": 600, "globex": 31}
			}
			checkGauge(t, tel, name, want)

			c.add(time.Minute)
			if n := pullNow(t, q, acme, 2); n != 0 {
				t.Fatalf("leased %d from an empty inbox", n)
			}
			want = map[string]float64{"": 31}
			if perTenant {
				want = map[string]float64{"acme": 0, "globex": 31}
			}
			checkGauge(t, tel, name, want)

			c.add(headAgeKeep - 30*time.Second) // globex's pull is now older than the keep, acme's not
			want = map[string]float64{"": 0}
			if perTenant {
				want = map[string]float64{"acme": 0}
			}
			checkGauge(t, tel, name, want)
		})
	}
}

func checkGauge(t *testing.T, tel *telemetry.Telemetry, name string, want map[string]float64) {
	t.Helper()
	got := gauge(t, tel, name)
	if len(got) != len(want) {
		t.Errorf("%s: %v, want %v", name, got, want)
		return
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: %v, want %v", name, got, want)
			return
		}
	}
}

// TestParkedLongPolls: the parked gauge follows the polls waiting on the busiest tenant (or
// each tenant with the label), and the cap is exposed next to it.
func TestParkedLongPolls(t *testing.T) {
	const name = "trigger_inbox_long_poll_parked"
	for _, perTenant := range []bool{false, true} {
		t.Run("tenant-label-"+strconv.FormatBool(perTenant), func(t *testing.T) {
			store := &fakeStore{}
			q, tel, c := newGaugedInbox(t, store, perTenant)
			checkGauge(t, tel, "trigger_inbox_long_poll_parked_limit", map[string]float64{"": maxParkedPerTenant})
			want := map[string]float64{"": 0}
			if perTenant {
				want = map[string]float64{}
			}
			checkGauge(t, tel, name, want)
			// The first asks for more than it will get: a full batch would release the second
			// to look too (the chain), unparking it for a moment.
			first := park(t, q, 2)
			park(t, q, 1)
			want = map[string]float64{"": 2}
			if perTenant {
				want = map[string]float64{"acme": 2}
			}
			checkGauge(t, tel, name, want)
			store.add(c.now())
			q.Notify(Notice{TenantID: acme.TenantID, Count: 1, VisibleAt: c.now()})
			if got := <-first; got.n != 1 || got.err != nil {
				t.Fatalf("the oldest parked pull got %d events (%v), want the one announced", got.n, got.err)
			}
			want = map[string]float64{"": 1}
			if perTenant {
				want = map[string]float64{"acme": 1}
			}
			checkGauge(t, tel, name, want)
		})
	}
}
