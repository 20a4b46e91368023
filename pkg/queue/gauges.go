package queue

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// The inbox's gauges for alerting: how long the head of each tenant's inbox has waited, and how
// close its parked long polls come to their cap. Both come from what the inbox already knows,
// pulls it served and polls it holds, read when Prometheus scrapes: no scrape reads DynamoDB.

// headAgeKeep is how long a tenant's last sample stands without a pull on this replica. Past it
// the tenant is no longer reported here: its consumer stopped, pulls another replica, or the
// tenant went away. A stopped consumer is then the stalled-inbox alert's to find.
const headAgeKeep = 5 * time.Minute

// headAges holds, per tenant, the age of the oldest event its latest pull on this replica
// leased, at that pull: a lease takes the oldest visible events first, so that is how long the
// head of the tenant's inbox had waited since its receipt. A pull that found nothing visible
// records 0.
type headAges struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]headAge
}

type headAge struct {
	age time.Duration
	at  time.Time
}

func newHeadAges(now func() time.Time) *headAges {
	return &headAges{now: now, m: map[string]headAge{}}
}

// saw records a pull of tenantID that leased got, which may be none.
func (h *headAges) saw(tenantID string, got []events.Event) {
	now := h.now()
	var age time.Duration
	for _, e := range got {
		if !e.ReceivedAt.IsZero() {
			age = max(age, now.Sub(e.ReceivedAt))
		}
	}
	h.mu.Lock()
	h.m[tenantID] = headAge{age: age, at: now}
	h.mu.Unlock()
}

// each calls f with every tenant's current sample, forgetting those older than headAgeKeep.
func (h *headAges) each(f func(tenantID string, age time.Duration)) {
	cutoff := h.now().Add(-headAgeKeep)
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, s := range h.m {
		if s.at.Before(cutoff) {
			delete(h.m, id)
			continue
		}
		f(id, s.age)
	}
}

// parked calls f with the number of long polls parked on each tenant watched here.
func (w *watcher) parked(f func(tenantID string, n int)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, wt := range w.watches {
		f(id, len(wt.waiters))
	}
}

// registerGauges adds the inbox's gauges to the binary's meter. Without the tenant label each
// is one series per process, the largest value over its tenants: enough to page on, bounded
// whatever the number of tenants. With it, one series per tenant seen here.
func registerGauges(o Options, w *watcher, h *headAges) {
	m := o.Tel.MeterProvider.Meter(telemetry.ScopeName)
	perTenant := o.Metrics.MetricsTenantLabel
	// Registration fails only on an invalid name; the names here are constants.
	_, _ = m.Float64ObservableGauge("trigger.inbox.oldest_event_age", metric.WithUnit("s"),
		metric.WithDescription("age since receipt of the oldest event the latest pull of a tenant on this replica leased (the head of its inbox), 0 if it found none; tenants without a pull here for 5 minutes are left out. Without the tenant label: the largest over tenants"),
		metric.WithFloat64Callback(func(_ context.Context, obs metric.Float64Observer) error {
			var top time.Duration
			h.each(func(id string, age time.Duration) {
				if perTenant {
					obs.Observe(age.Seconds(), o.Metrics.Attrs(id))
				}
				top = max(top, age)
			})
			if !perTenant {
				obs.Observe(top.Seconds())
			}
			return nil
		}))
	_, _ = m.Int64ObservableGauge("trigger.inbox.long_poll.parked", metric.WithUnit("{pull}"),
		metric.WithDescription("long polls parked on a tenant in this process, which refuses more than trigger.inbox.long_poll.parked_limit. Without the tenant label: the largest over tenants"),
		metric.WithInt64Callback(func(_ context.Context, obs metric.Int64Observer) error {
			top := 0
			w.parked(func(id string, n int) {
				if perTenant && n > 0 {
					obs.Observe(int64(n), o.Metrics.Attrs(id))
				}
				top = max(top, n)
			})
			if !perTenant {
				obs.Observe(int64(top))
			}
			return nil
		}))
	// The cap as a series, so an alert compares against what the running code enforces.
	_, _ = m.Int64ObservableGauge("trigger.inbox.long_poll.parked_limit", metric.WithUnit("{pull}"),
		metric.WithDescription("long polls one tenant may keep parked in one process; past it a pull answers 429"),
		metric.WithInt64Callback(func(_ context.Context, obs metric.Int64Observer) error {
			obs.Observe(maxParkedPerTenant)
			return nil
		}))
}
