// Package queue holds the use cases of an event's life: publishing it (ingest), and the inbox
// a consumer works from: listing, pulls that lease and long-poll, settling (ack, nack, extend),
// dead letters and redrive, retention and each tenant's defaults. The HTTP services decode a
// request, call one of these and encode the answer; no queue rule lives in them. Stores come
// in as the domain's interface (events.Store), so this package never sees DynamoDB.
package queue

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// writeTimeout bounds a write that must finish even if the caller has gone: a write DynamoDB
// may already have applied should not be cut off halfway by a client's disconnect.
const writeTimeout = 10 * time.Second

// readTimeout bounds a read: past it the store is unavailable for this request, and the
// caller hears so instead of waiting on a stalled connection.
const readTimeout = 5 * time.Second

// DefaultLongPollBackstop keeps an idle waiting tenant to under one read a minute: with the key
// cache's re-read every 30 s, 0.05 DynamoDB calls/s per waiting tenant in all.
const DefaultLongPollBackstop = 90 * time.Second

// Options are what both use cases share.
type Options struct {
	Log *zap.Logger          // nil: none
	Now func() time.Time     // nil: the wall clock
	Tel *telemetry.Telemetry // nil: record nothing
	// Metrics decides whether the event counts carry the tenant.
	Metrics telemetry.MetricsOptions
	// Notifier tells every inbox replica of events that became visible or will at a known
	// time. nil: nobody is told, and waiting pulls find events only through their backstop.
	Notifier Notifier
	// LongPollBackstop is how long a waiting pull trusts a quiet inbox without a read: the
	// most a lost notice delays an event.
	LongPollBackstop time.Duration // 0: 60 s
	// WorkBudget is the most work one request of p may do, in the units its rate counts: one
	// second of that rate, so that the work paid for after the request (tenant.Authenticator's
	// Charge) is never a burst of many seconds' worth. nil or 0: only the API's own bounds.
	WorkBudget func(p tenant.Principal) int
	// Paid answers an error (a *tenant.RateLimitedError) while p's tenant still owes for work
	// charged after it was admitted. A payload-bearing read that waited for its turn asks it
	// before it reads: reads admitted together would otherwise each run up a second's worth.
	// nil: no check.
	Paid func(p tenant.Principal) error
}

func (o Options) complete() Options {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tel == nil {
		o.Tel = telemetry.Nop()
	}
	if o.Notifier == nil {
		o.Notifier = nopNotifier{}
	}
	if o.LongPollBackstop <= 0 {
		o.LongPollBackstop = DefaultLongPollBackstop
	}
	return o
}

// maxDeliveries is the tenant's own setting, or the default.
func maxDeliveries(p tenant.Principal) int {
	return orDefault(p.MaxDeliveries, tenant.DefaultMaxDeliveries)
}

// retention is how long an acknowledged event stays readable before TTL removes it.
func retention(p tenant.Principal) time.Duration {
	return time.Duration(orDefault(p.RetentionDays, tenant.DefaultRetentionDays)) * 24 * time.Hour
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// detached is ctx without its cancellation, bounded by writeTimeout: for writes that must not
// be cut off by the caller leaving.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
}

// get reads one of the tenant's events; a malformed id is as absent as an unknown one.
func get(ctx context.Context, store events.Store, p tenant.Principal, eventID string, now time.Time) (events.Event, error) {
	if !events.ValidID(eventID) {
		return events.Event{}, events.ErrNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	return store.Get(ctx, p.TenantID, eventID, now)
}
