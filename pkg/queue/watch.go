package queue

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// errWaitOver ends a long poll whose wait ran out.
var errWaitOver = errors.New("wait over")

// Why a waiting pull was released, as the wake-up metric names it.
const (
	causeNotice   = "notification"
	causeTimer    = "timer"
	causeBackstop = "backstop"
	// causeChain: a pull that leased a full batch releases the next, as more may be visible.
	causeChain = "chain"
)

// checkTimeout bounds one Visible check of the watcher.
const checkTimeout = 5 * time.Second

// maxDues bounds the future visibility times one watch remembers. Past it two are merged into
// the earlier one: the later events are then found by the backstop at the latest.
const maxDues = 8

// watcher parks long polls until their tenant's inbox may hold visible events. It reads the
// index only when told something may have changed, never on a fixed pace: notices of new or
// returned events release waiting pulls (one per event, oldest waiter first); known future
// visibility (nack delays, lease expiries) sets a timer whose check releases them; and a
// backstop check every so often finds what a lost notice never announced.
//
// A watch outlives its last waiter by the backstop interval, remembering that the inbox was
// empty as of a read after the last notice: a worker's next long poll then parks without a read.
// Watches hold no goroutine; each has one timer. A parked waiter (see park) holds none either:
// it is a callback and a timer, run in a goroutine of its own once it is released.
type watcher struct {
	store    events.Store
	log      *zap.Logger
	now      func() time.Time
	backstop time.Duration
	woke     func(cause string, n int)

	mu      sync.Mutex
	seq     uint64 // counts changes that may have made events visible, over all watches
	watches map[string]*watch
	// drained is closed when the process stops taking long polls: every wait ends at once.
	drained   chan struct{}
	drainOnce sync.Once
}

type watch struct {
	tenantID   string
	partitions int
	// seq is the watcher's seq at this watch's last change; a read that began at an older seq
	// may have missed events and proves nothing.
	seq uint64
	// emptyAt is when a read that began at seq found no visible event; zero: not known empty.
	emptyAt    time.Time
	waiters    []*waiter // oldest first
	dues       []due     // earliest first
	backstopAt time.Time // next backstop check while pulls wait
	idleSince  time.Time // since when no pull waits
	checking   bool
	timer      *time.Timer
}

type due struct {
	at    time.Time
	count int
}

// waiter is one waiting pull. A pull waiting in its own goroutine has woke, closed when it is
// released; a parked one has wake, called once in a new goroutine: over says its wait ended
// (deadline or drain) rather than a release.
type waiter struct {
	woke  chan struct{}
	wake  func(over bool)
	timer *time.Timer // a parked waiter's deadline
}

// errStale: the watch changed since the caller's read, which may have missed events.
var errStale = errors.New("inbox changed since the read")

func newWatcher(store events.Store, log *zap.Logger, now func() time.Time, backstop time.Duration, woke func(string, int)) *watcher {
	return &watcher{store: store, log: log, now: now, backstop: backstop, woke: woke, watches: map[string]*watch{}, drained: make(chan struct{})}
}

// drain ends every wait now and makes later ones end at once.
func (w *watcher) drain() {
	w.drainOnce.Do(func() {
		w.mu.Lock()
		close(w.drained)
		var over []*waiter
		for _, wt := range w.watches {
			// Pulls waiting in their goroutine see drained and leave by themselves.
			kept := wt.waiters[:0]
			for _, wr := range wt.waiters {
				if wr.wake != nil {
					over = append(over, wr)
				} else {
					kept = append(kept, wr)
				}
			}
			clear(wt.waiters[len(kept):])
			wt.waiters = kept
			w.emptied(wt)
		}
		w.mu.Unlock()
		for _, wr := range over {
			wr.timer.Stop()
			go wr.wake(true)
		}
	})
}

// waiters is how many long polls wait on tenantID right now.
func (w *watcher) waiters(tenantID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt := w.watches[tenantID]; wt != nil {
		return len(wt.waiters)
	}
	return 0
}

// maxParkedPerTenant bounds the long polls one tenant keeps waiting in a process: each holds a
// connection (and a goroutine unless parked), and hundreds are no faster at taking events than
// a few.
const maxParkedPerTenant = 50

// errTooManyParked answers a long poll past maxParkedPerTenant: the caller should come back
// after a wait, as after any rate limit.
var errTooManyParked = &tenant.RateLimitedError{RetryAfter: 5 * time.Second}

// look returns the tenant's watch's seq, to hand to sawEmpty and wait, and whether the inbox
// is known to be empty, so that a long poll may park without reading it.
func (w *watcher) look(tenantID string, partitions int) (seq uint64, empty bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wt := w.watchOf(tenantID, partitions)
	return wt.seq, w.knownEmpty(wt, partitions)
}

// knownEmpty: a read found the inbox empty after the last notice, within the backstop
// interval (a notice lost since is found no later than that), no known visibility time has
// passed since, and that read covered every partition.
func (w *watcher) knownEmpty(wt *watch, partitions int) bool {
	if wt.emptyAt.IsZero() || partitions > wt.partitions {
		return false
	}
	now := w.now()
	if len(wt.dues) > 0 && !wt.dues[0].at.After(now) {
		return false
	}
	return now.Sub(wt.emptyAt) < w.backstop
}

// sawEmpty records that a read which began at seq found no visible event.
func (w *watcher) sawEmpty(tenantID string, seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wt := w.watches[tenantID]
	if wt == nil || wt.seq != seq {
		return
	}
	wt.emptyAt = w.now()
	wt.backstopAt = wt.emptyAt.Add(w.jittered())
	w.schedule(wt)
}

// more releases the next waiter: a pull leased a full batch, so more may be visible.
func (w *watcher) more(tenantID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt := w.watches[tenantID]; wt != nil {
		w.changed(wt)
		w.release(wt, 1, causeChain)
	}
}

// notify takes notices from any replica. Tenants nobody watches here are ignored: the next
// long poll of such a tenant reads the inbox anyway.
func (w *watcher) notify(ns []Notice) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	for _, n := range ns {
		wt := w.watches[n.TenantID]
		if wt == nil || n.Count <= 0 {
			continue
		}
		if n.VisibleAt.After(now) {
			wt.addDue(due{at: n.VisibleAt, count: n.Count})
			w.schedule(wt)
			continue
		}
		w.changed(wt)
		w.release(wt, n.Count, causeNotice)
	}
}

// changed marks that events may have become visible: reads begun before prove nothing.
func (w *watcher) changed(wt *watch) {
	w.seq++
	wt.seq = w.seq
	wt.emptyAt = time.Time{}
}

// release wakes up to n waiters, oldest first.
func (w *watcher) release(wt *watch, n int, cause string) {
	n = min(n, len(wt.waiters))
	if n <= 0 {
		return
	}
	for _, wr := range wt.waiters[:n] {
		if wr.wake == nil {
			close(wr.woke)
			continue
		}
		// A timer that fired already finds the waiter gone from the queue and does nothing.
		wr.timer.Stop()
		go wr.wake(false)
	}
	wt.waiters = slices.Delete(wt.waiters, 0, n)
	w.emptied(wt)
	w.woke(cause, n)
}

// emptied starts the idle time of a watch whose last waiter left.
func (w *watcher) emptied(wt *watch) {
	if len(wt.waiters) == 0 {
		wt.idleSince = w.now()
		w.schedule(wt)
	}
}

func (wt *watch) addDue(d due) {
	i, found := slices.BinarySearchFunc(wt.dues, d.at, func(x due, at time.Time) int { return x.at.Compare(at) })
	if found {
		wt.dues[i].count += d.count
		return
	}
	wt.dues = slices.Insert(wt.dues, i, d)
	if n := len(wt.dues); n > maxDues {
		wt.dues[n-2].count += wt.dues[n-1].count
		wt.dues = wt.dues[:n-1]
	}
}

// watchOf returns the tenant's watch, starting one if none exists. A new watch gets a seq of
// its own, so a read begun under a watch since forgotten proves nothing about it.
func (w *watcher) watchOf(tenantID string, partitions int) *watch {
	wt := w.watches[tenantID]
	if wt == nil {
		wt = &watch{tenantID: tenantID, partitions: partitions, idleSince: w.now()}
		w.seq++
		wt.seq = w.seq
		w.watches[tenantID] = wt
		w.schedule(wt)
	}
	return wt
}

// jittered is the backstop interval less up to a quarter, so that the checks of many tenants
// watched since the same moment spread out.
func (w *watcher) jittered() time.Duration {
	return w.backstop - rand.N(w.backstop/4+1)
}

// schedule sets the watch's timer to its next duty: the earliest due, the backstop check while
// pulls wait, or forgetting the watch once it has been idle for the backstop interval.
func (w *watcher) schedule(wt *watch) {
	var next time.Time
	if len(wt.waiters) > 0 {
		next = wt.backstopAt
	} else {
		next = wt.idleSince.Add(w.backstop)
	}
	if len(wt.dues) > 0 && wt.dues[0].at.Before(next) {
		next = wt.dues[0].at
	}
	d := max(next.Sub(w.now()), 0)
	if wt.timer == nil {
		wt.timer = time.AfterFunc(d, func() { w.fire(wt) })
		return
	}
	wt.timer.Reset(d)
}

// fire does what the watch's timer was set for.
func (w *watcher) fire(wt *watch) {
	w.mu.Lock()
	if w.watches[wt.tenantID] != wt {
		w.mu.Unlock()
		return
	}
	now := w.now()
	count := 0
	for len(wt.dues) > 0 && !wt.dues[0].at.After(now) {
		count += wt.dues[0].count
		wt.dues = wt.dues[1:]
	}
	if count > 0 {
		w.changed(wt)
	}
	if len(wt.waiters) == 0 {
		if !now.Before(wt.idleSince.Add(w.backstop)) {
			delete(w.watches, wt.tenantID)
		} else {
			w.schedule(wt)
		}
		w.mu.Unlock()
		return
	}
	if wt.checking || (count == 0 && now.Before(wt.backstopAt)) {
		w.schedule(wt)
		w.mu.Unlock()
		return
	}
	cause := causeTimer
	if count == 0 {
		cause, count = causeBackstop, 1
	}
	wt.checking = true
	seq, partitions := wt.seq, wt.partitions
	w.mu.Unlock()
	w.check(wt, seq, partitions, count, cause)
}

// check reads whether the tenant's inbox shows a visible event and releases count waiters if
// it does.
func (w *watcher) check(wt *watch, seq uint64, partitions, count int, cause string) {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	visible, err := w.store.Visible(ctx, wt.tenantID, partitions, w.now())
	cancel()
	w.mu.Lock()
	defer w.mu.Unlock()
	wt.checking = false
	now := w.now()
	wt.backstopAt = now.Add(w.jittered())
	switch {
	case err != nil:
		w.log.Warn("long poll check failed", zap.String("tenant_id", wt.tenantID), zap.Error(err))
		// Sooner than the backstop: the check that failed may have had events to find.
		wt.backstopAt = now.Add(min(w.backstop, 5*time.Second))
	case visible:
		w.changed(wt)
		w.release(wt, count, cause)
	case seq == wt.seq:
		wt.emptyAt = now
	}
	w.schedule(wt)
}

// wait parks the caller until a release, ctx's end or deadline. It returns at once if the
// tenant's watch changed since seq (from look): the caller's read may have missed events.
func (w *watcher) wait(ctx context.Context, tenantID string, partitions int, deadline time.Time, seq uint64) error {
	wr := &waiter{woke: make(chan struct{})}
	wt, err := w.enqueue(tenantID, partitions, seq, wr)
	if errors.Is(err, errStale) {
		return nil
	}
	if err != nil {
		return err
	}
	timer := time.NewTimer(deadline.Sub(w.now()))
	defer timer.Stop()
	select {
	case <-wr.woke:
		return nil
	case <-w.drained:
		err = errWaitOver
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = errWaitOver
	}
	w.leave(wt, wr)
	return err
}

// park is wait without a goroutine: wake runs in a goroutine of its own once the pull is
// released (over false) or its deadline or the drain ends its wait (over true). An error says
// it was not parked: errStale (read again), errWaitOver (drained), errTooManyParked.
func (w *watcher) park(tenantID string, partitions int, deadline time.Time, seq uint64, wake func(over bool)) error {
	wr := &waiter{wake: wake}
	// The timer is set under the watcher's lock: a release may stop it the moment it is queued.
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.drained:
		return errWaitOver
	default:
	}
	wt, err := w.enqueueLocked(tenantID, partitions, seq, wr)
	if err != nil {
		return err
	}
	wr.timer = time.AfterFunc(deadline.Sub(w.now()), func() { w.expire(wt, wr) })
	return nil
}

// expire ends a parked waiter's wait at its deadline, unless a release took it first.
func (w *watcher) expire(wt *watch, wr *waiter) {
	w.mu.Lock()
	i := slices.Index(wt.waiters, wr)
	if i >= 0 {
		wt.waiters = slices.Delete(wt.waiters, i, i+1)
		w.emptied(wt)
	}
	w.mu.Unlock()
	if i >= 0 {
		wr.wake(true)
	}
}

// passOn hands a release on to the tenant's next waiter: the pull it woke has no caller left.
func (w *watcher) passOn(tenantID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt := w.watches[tenantID]; wt != nil {
		w.release(wt, 1, causeChain)
	}
}

func (w *watcher) enqueue(tenantID string, partitions int, seq uint64, wr *waiter) (*watch, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.enqueueLocked(tenantID, partitions, seq, wr)
}

// enqueueLocked queues wr on the tenant's watch unless the watch changed since seq or the
// tenant has as many pulls parked as it may.
func (w *watcher) enqueueLocked(tenantID string, partitions int, seq uint64, wr *waiter) (*watch, error) {
	wt := w.watchOf(tenantID, partitions)
	if wt.seq != seq {
		return nil, errStale
	}
	if len(wt.waiters) >= maxParkedPerTenant {
		return nil, errTooManyParked
	}
	wt.partitions = max(wt.partitions, partitions)
	wt.waiters = append(wt.waiters, wr)
	if len(wt.waiters) == 1 {
		base := wt.emptyAt
		if base.IsZero() {
			base = w.now()
		}
		wt.backstopAt = base.Add(w.jittered())
		w.schedule(wt)
	}
	return wt, nil
}

// leave takes a pull that stopped waiting out of the queue; one released meanwhile passes its
// release on, so that the event it was for does not wait for the backstop.
func (w *watcher) leave(wt *watch, wr *waiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.Index(wt.waiters, wr)
	if i < 0 {
		w.release(wt, 1, causeChain)
		return
	}
	wt.waiters = slices.Delete(wt.waiters, i, i+1)
	w.emptied(wt)
}
