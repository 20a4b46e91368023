package queue

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// errWaitOver ends a long poll whose wait ran out.
var errWaitOver = errors.New("wait over")

// watcher wakes waiting long polls when a tenant's inbox shows visible events. All waiters of
// one tenant share one watch, so a thousand idle workers cost the same reads as one: a check
// every MinInterval right after activity, backing off to MaxInterval while the inbox stays empty.
type watcher struct {
	store       events.Store
	log         *zap.Logger
	now         func() time.Time
	minInterval time.Duration
	maxInterval time.Duration

	mu      sync.Mutex
	watches map[string]*watch
	// drained is closed when the process stops taking long polls: every wait ends at once.
	drained   chan struct{}
	drainOnce sync.Once
}

type watch struct {
	tenantID   string
	partitions int
	waiters    int
	wake       chan struct{} // closed when the inbox looks non-empty, then replaced
}

func newWatcher(store events.Store, log *zap.Logger, now func() time.Time, minInterval, maxInterval time.Duration) *watcher {
	return &watcher{store: store, log: log, now: now, minInterval: minInterval, maxInterval: maxInterval, watches: map[string]*watch{}, drained: make(chan struct{})}
}

// drain ends every wait now and makes later ones end at once.
func (w *watcher) drain() { w.drainOnce.Do(func() { close(w.drained) }) }

// waiters is how many long polls wait on tenantID right now.
func (w *watcher) waiters(tenantID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt := w.watches[tenantID]; wt != nil {
		return wt.waiters
	}
	return 0
}

// maxParkedPerTenant bounds the long polls one tenant keeps waiting in a process: each holds a
// connection and a goroutine, and hundreds of them are no faster at taking events than a few.
const maxParkedPerTenant = 50

// errTooManyParked answers a long poll past maxParkedPerTenant: the caller should come back
// after a wait, as after any rate limit.
var errTooManyParked = &tenant.RateLimitedError{RetryAfter: 5 * time.Second}

// wait blocks until tenantID's inbox may hold visible events, ctx ends or deadline passes.
func (w *watcher) wait(ctx context.Context, tenantID string, partitions int, deadline time.Time) error {
	w.mu.Lock()
	wt := w.watches[tenantID]
	if wt == nil {
		wt = &watch{tenantID: tenantID, partitions: partitions, wake: make(chan struct{})}
		w.watches[tenantID] = wt
		go w.run(wt)
	}
	if wt.waiters >= maxParkedPerTenant {
		w.mu.Unlock()
		return errTooManyParked
	}
	wt.partitions = max(wt.partitions, partitions)
	wt.waiters++
	wake := wt.wake
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		wt.waiters--
		w.mu.Unlock()
	}()

	timer := time.NewTimer(deadline.Sub(w.now()))
	defer timer.Stop()
	select {
	case <-wake:
		return nil
	case <-w.drained:
		return errWaitOver
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return errWaitOver
	}
}

func (w *watcher) run(wt *watch) {
	interval := w.minInterval
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for range timer.C {
		w.mu.Lock()
		if wt.waiters == 0 {
			delete(w.watches, wt.tenantID)
			w.mu.Unlock()
			return
		}
		partitions := wt.partitions
		w.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		visible, err := w.store.Visible(ctx, wt.tenantID, partitions, w.now())
		cancel()
		switch {
		case err != nil:
			w.log.Warn("long poll check failed", zap.String("tenant_id", wt.tenantID), zap.Error(err))
			interval = w.maxInterval
		case visible:
			w.mu.Lock()
			close(wt.wake)
			wt.wake = make(chan struct{})
			w.mu.Unlock()
			interval = w.minInterval
		default:
			interval = min(interval*3/2, w.maxInterval)
		}
		timer.Reset(interval)
	}
}
