package noisy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/client"
)

// maxLoopInFlight bounds an open-loop flood's outstanding calls, so a slow service makes it
// skip ticks rather than pile up goroutines.
const maxLoopInFlight = 64

// Progress is what A's abuse has done so far; the test waits until each kind has done enough.
type Progress struct {
	ReadPages     int64 `json:"read_pages"`     // 200 answers to A's reads that held events
	ReadEvents    int64 `json:"read_events"`    // events those answers held
	BurstRefused  int64 `json:"burst_refused"`  // 429s to A's bursts
	BogusAnswered int64 `json:"bogus_answered"` // answers to calls with made-up keys
	ParkedNow     int64 `json:"parked_now"`     // long polls open now
	ParkedMost    int64 `json:"parked_most"`    // most long polls open at once
	Redriven      int64 `json:"redriven"`       // events A's redrives put back
	RedriveCalls  int64 `json:"redrive_calls"`  // redrive calls answered 200
	RedriveTries  int64 `json:"redrive_tries"`  // redrive calls answered at all
	ChurnedLeases int64 `json:"churned_leases"` // events A's churn pulls leased (to die again)
	SkippedTicks  int64 `json:"skipped_ticks"`  // flood ticks skipped: the services were slower than the flood
}

type abuse struct {
	s *Scenario

	readPages, readEvents, burstRefused, bogusAnswered atomic.Int64
	parkedNow, parkedMost, redriven, redriveCalls      atomic.Int64
	redriveTries                                       atomic.Int64
	churned, skipped                                   atomic.Int64

	stop context.CancelFunc
	wg   sync.WaitGroup
	rss  *rssSampler

	remote   *remoteAbuser // A's own process, when it runs in one
	reported *Progress     // what that process reported when it stopped
}

func newAbuse(s *Scenario) *abuse { return &abuse{s: s} }

// Progress is a snapshot of A's counters.
func (s *Scenario) Progress() Progress {
	a := s.a
	if a.reported != nil {
		return *a.reported
	}
	return Progress{
		ReadPages: a.readPages.Load(), ReadEvents: a.readEvents.Load(), BurstRefused: a.burstRefused.Load(),
		BogusAnswered: a.bogusAnswered.Load(), ParkedNow: a.parkedNow.Load(), ParkedMost: a.parkedMost.Load(),
		Redriven: a.redriven.Load(), RedriveCalls: a.redriveCalls.Load(), RedriveTries: a.redriveTries.Load(), ChurnedLeases: a.churned.Load(),
		SkippedTicks: a.skipped.Load(),
	}
}

// StartAbuse starts every kind of abuse at once, and the sampling of the inbox's memory. With
// Target.AbuserCommand set, A runs in that process instead of this one.
func (s *Scenario) StartAbuse(ctx context.Context) error {
	a := s.a
	a.rss = startRSS(s.target.InboxPID)
	if len(s.target.AbuserCommand) > 0 {
		return a.startRemote(ctx)
	}
	return a.start(ctx)
}

// start runs A's loops in this process.
func (a *abuse) start(ctx context.Context) error {
	s := a.s
	clients := map[string]*client.Client{}
	for _, t := range []string{readsTenant, burstTenant, parkedTenant, deadTenant} {
		c, err := s.tenantClient(s.abuserRec, s.keys[t])
		if err != nil {
			return err
		}
		clients[t] = c
	}
	ctx, a.stop = context.WithCancel(ctx)
	for range s.cfg.Readers {
		a.wg.Go(func() { a.loop(ctx, a.listInbox(clients[readsTenant])) })
		a.wg.Go(func() { a.loop(ctx, a.listDead(clients[readsTenant])) })
		a.wg.Go(func() { a.loop(ctx, a.pullBig(clients[readsTenant])) })
	}
	for range s.cfg.ParkedPolls {
		a.wg.Go(func() { a.loop(ctx, a.park(clients[parkedTenant])) })
	}
	a.wg.Go(func() { a.loop(ctx, a.redrive(clients[deadTenant], clients[readsTenant])) })
	a.wg.Go(func() { a.loop(ctx, a.churn(clients[deadTenant])) })
	a.wg.Go(func() { a.flood(ctx, s.cfg.BurstRate, a.burst(clients[burstTenant])) })
	a.wg.Go(func() { a.flood(ctx, s.cfg.BogusRate, a.bogus()) })
	return nil
}

// StopAbuse cancels every call A has in flight and waits for its loops to end; it returns the
// inbox's memory while A ran.
func (s *Scenario) StopAbuse() Memory {
	if s.a.remote != nil {
		s.a.stopRemote()
	} else {
		s.a.halt()
	}
	return s.a.rss.stop()
}

// Rehearse runs A for d and then forgets what it saw: the first pass over A's paths (the JIT of
// DynamoDB Local, the services' first calls of each kind) is then not in A's measured phase,
// which still begins as A's own start does, with new connections and full buckets.
func (s *Scenario) Rehearse(ctx context.Context, d time.Duration) error {
	if err := s.StartAbuse(ctx); err != nil {
		return err
	}
	err := client.Sleep(ctx, d)
	s.StopAbuse()
	s.newAbuser()
	return err
}

// newAbuser starts A afresh: no calls made, none recorded.
func (s *Scenario) newAbuser() {
	s.abuserRec = newRecorder("A", transport(s.cfg.ParkedPolls+64), s.Phase, abuserExpects)
	s.a = newAbuse(s)
}

func (a *abuse) halt() {
	a.stop()
	a.wg.Wait()
}

// call is one of A's calls; i numbers the calls of one loop or flood.
type call func(ctx context.Context, i int)

// loop makes one call after another until ctx ends.
func (a *abuse) loop(ctx context.Context, c call) {
	for i := 0; ctx.Err() == nil; i++ {
		c(ctx, i)
	}
}

// flood makes calls at rate on a fixed schedule, whatever the answers take.
func (a *abuse) flood(ctx context.Context, rate float64, c call) {
	if rate <= 0 {
		return
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	sem := make(chan struct{}, maxLoopInFlight)
	var calls sync.WaitGroup
	defer calls.Wait()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			a.skipped.Add(1)
			continue
		}
		calls.Go(func() {
			defer func() { <-sem }()
			c(ctx, i)
		})
	}
}

func bounded(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, callTimeout+extra)
}

func (a *abuse) countPage(page api.EventPage, err error) {
	if err == nil && len(page.Events) > 0 {
		a.readPages.Add(1)
		a.readEvents.Add(int64(len(page.Events)))
	}
}

func (a *abuse) listInbox(c *client.Client) call {
	return func(ctx context.Context, _ int) {
		ctx, cancel := bounded(ctx, 0)
		defer cancel()
		a.countPage(c.Inbox(ctx, client.InboxQuery{Limit: api.MaxListLimit}))
	}
}

func (a *abuse) listDead(c *client.Client) call {
	return func(ctx context.Context, _ int) {
		ctx, cancel := bounded(ctx, 0)
		defer cancel()
		a.countPage(c.Dead(ctx, api.MaxListLimit, ""))
	}
}

// pullBig leases as much as a pull gives, for 1 s, and never acknowledges: the leases lapse,
// the events come back, and after their last delivery they die, to be redriven.
func (a *abuse) pullBig(c *client.Client) call {
	return func(ctx context.Context, _ int) {
		ctx, cancel := bounded(ctx, 0)
		defer cancel()
		a.countPage(c.Pull(ctx, api.PullRequest{MaxEvents: ptr(api.MaxPullEvents), VisibilityTimeoutSeconds: ptr(1)}))
	}
}

// park holds a long poll open on an inbox nobody writes to.
func (a *abuse) park(c *client.Client) call {
	return func(ctx context.Context, _ int) {
		ctx, cancel := bounded(ctx, api.MaxWaitSeconds*time.Second)
		defer cancel()
		n := a.parkedNow.Add(1)
		for m := a.parkedMost.Load(); n > m && !a.parkedMost.CompareAndSwap(m, n); m = a.parkedMost.Load() {
		}
		_, _ = c.Pull(ctx, api.PullRequest{WaitSeconds: ptr(api.MaxWaitSeconds)})
		a.parkedNow.Add(-1)
	}
}

// redrive redrives all of A's dead letters, on the dead tenant three times out of four and
// on the big events' tenant the fourth.
func (a *abuse) redrive(dead, big *client.Client) call {
	return func(ctx context.Context, i int) {
		c := dead
		if i%4 == 3 {
			c = big
		}
		ctx, cancel := bounded(ctx, 0)
		defer cancel()
		out, err := c.RedriveAll(ctx)
		if _, answered := errors.AsType[*client.Error](err); err == nil || answered {
			a.redriveTries.Add(1)
		}
		if err == nil {
			a.redriveCalls.Add(1)
			a.redriven.Add(int64(out.RedrivenCount))
		} else if e, ok := errors.AsType[*client.Error](err); ok && e.Status == http.StatusTooManyRequests {
			_ = client.Sleep(ctx, client.RetryAfter(err))
		}
	}
}

// churn leases the redriven events for 1 s and lets the leases lapse: with max_deliveries 1
// the next pull buries them again, so the redrives always find thousands to redrive.
func (a *abuse) churn(c *client.Client) call {
	return func(ctx context.Context, _ int) {
		ctx, cancel := bounded(ctx, 0)
		defer cancel()
		page, err := c.Pull(ctx, api.PullRequest{MaxEvents: ptr(api.MaxPullEvents), VisibilityTimeoutSeconds: ptr(1)})
		if err == nil {
			a.churned.Add(int64(len(page.Events)))
		}
	}
}

var burstEvent = json.RawMessage(`{"event_type":"abuser.burst","n":1}`)

// burst sends publishes and listings far over the tenant's rate limit.
func (a *abuse) burst(c *client.Client) call {
	return func(ctx context.Context, i int) {
		ctx, cancel := bounded(ctx, 0)
		defer cancel()
		var err error
		if i%2 == 0 {
			_, _, err = c.Publish(ctx, burstEvent, "")
		} else {
			_, err = c.Inbox(ctx, client.InboxQuery{Limit: 10})
		}
		if e, ok := errors.AsType[*client.Error](err); ok && e.Status == http.StatusTooManyRequests {
			a.burstRefused.Add(1)
		}
	}
}

// bogus calls with a key nobody issued, well-formed and with a valid checksum, so only a
// database read (or the failure budget) can refuse it: half name B's tenant, half tenants
// that do not exist.
func (a *abuse) bogus() call {
	return func(ctx context.Context, i int) {
		tenantID := neighbourTenant
		if i%2 == 1 {
			var b [6]byte
			_, _ = rand.Read(b[:])
			tenantID = "ghost-" + hex.EncodeToString(b[:])
		}
		k, err := apikey.New(tenantID)
		if err != nil {
			return
		}
		c, err := a.s.tenantClient(a.s.abuserRec, k.String())
		if err != nil {
			return
		}
		ctx, cancel := bounded(ctx, 0)
		defer cancel()
		if i%4 < 2 {
			_, err = c.Inbox(ctx, client.InboxQuery{Limit: 1})
		} else {
			_, _, err = c.Publish(ctx, burstEvent, "")
		}
		if _, ok := errors.AsType[*client.Error](err); ok {
			a.bogusAnswered.Add(1)
		}
	}
}
