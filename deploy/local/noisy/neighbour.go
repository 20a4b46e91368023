package noisy

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
)

// maxNeighbourInFlight bounds B's outstanding publishes: if ingest stalls, B skips ticks (and
// counts them) rather than piling up goroutines.
const maxNeighbourInFlight = 32

// neighbourWait is B's long poll, as the worker's default.
const neighbourWait = 20

// neighbourEvent is the seed's event.
var neighbourEvent = json.RawMessage(`{"event_type":"customer.created","customer_id":"123","email":"alice@example.com"}`)

// sentEvent is one event B got a 202 for.
type sentEvent struct {
	phase    string
	returned time.Time
	rt       time.Duration
}

// neighbour is B: a steady producer and a few pull-and-ack loops, all on one key.
type neighbour struct {
	s   *Scenario
	pub *client.Client

	mu       sync.Mutex
	sent     map[string]sentEvent
	received map[string]time.Time // first time a pull handed the event to B
	acked    map[string]bool
	failures []Finding // calls that failed for a reason the transport did not see (a bad ack item)
	skipped  map[string]int

	stopProducer, stopConsumers context.CancelFunc
	producer, consumers         sync.WaitGroup
}

func newNeighbour(s *Scenario) *neighbour {
	return &neighbour{s: s, sent: map[string]sentEvent{}, received: map[string]time.Time{}, acked: map[string]bool{}, skipped: map[string]int{}}
}

// StartNeighbour starts B's consumers and its producer.
func (s *Scenario) StartNeighbour(ctx context.Context) error {
	b := s.b
	var err error
	if b.pub, err = s.tenantClient(s.neighbourRec, s.keys[neighbourTenant]); err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	b.stopConsumers = cancel
	for range s.cfg.NeighbourConsumers {
		c, err := s.tenantClient(s.neighbourRec, s.keys[neighbourTenant])
		if err != nil {
			cancel()
			return err
		}
		b.consumers.Go(func() { b.consume(cctx, c) })
	}
	pctx, stop := context.WithCancel(ctx)
	b.stopProducer = stop
	b.producer.Go(func() { b.produce(pctx) })
	return nil
}

// produce publishes at NeighbourRate on a fixed schedule, whatever the answers take, as
// independent producers do.
func (b *neighbour) produce(ctx context.Context) {
	interval := time.Duration(float64(time.Second) / b.s.cfg.NeighbourRate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sem := make(chan struct{}, maxNeighbourInFlight)
	var calls sync.WaitGroup
	defer calls.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		phase := b.s.Phase()
		select {
		case sem <- struct{}{}:
		default:
			b.mu.Lock()
			b.skipped[phase]++
			b.mu.Unlock()
			continue
		}
		calls.Go(func() {
			defer func() { <-sem }()
			b.publishOne(context.WithoutCancel(ctx), phase)
		})
	}
}

func (b *neighbour) publishOne(ctx context.Context, phase string) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	t0 := time.Now()
	accepted, _, err := b.pub.Publish(ctx, neighbourEvent, "")
	t1 := time.Now()
	if err != nil || accepted.EventID == "" {
		b.fail(phase, "POST /events", fmt.Errorf("event_id %q: %w", accepted.EventID, err))
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent[accepted.EventID] = sentEvent{phase: phase, returned: t1, rt: t1.Sub(t0)}
}

func (b *neighbour) fail(phase, route string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures = append(b.failures, Finding{Phase: phase, Actor: "B", Route: route, Error: err.Error()})
}

// consume pulls with a long poll and acknowledges what it got, until ctx ends.
func (b *neighbour) consume(ctx context.Context, c *client.Client) {
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, callTimeout+neighbourWait*time.Second)
		page, err := c.Pull(pctx, api.PullRequest{MaxEvents: ptr(10), VisibilityTimeoutSeconds: ptr(30), WaitSeconds: ptr(neighbourWait)})
		cancel()
		got := time.Now()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			b.fail(b.s.Phase(), "POST /inbox/pull", err)
			// Not a busy loop if the pulls keep failing; the failure is recorded either way.
			_ = client.Sleep(ctx, 100*time.Millisecond)
			continue
		}
		if len(page.Events) == 0 {
			continue
		}
		leases := make([]api.LeaseRef, len(page.Events))
		b.mu.Lock()
		for i, e := range page.Events {
			if _, seen := b.received[e.EventID]; !seen {
				b.received[e.EventID] = got
			}
			leases[i] = api.LeaseRef{EventID: e.EventID, LeaseID: e.LeaseID}
		}
		b.mu.Unlock()
		b.ack(context.WithoutCancel(ctx), c, leases)
	}
}

// ack settles what one pull handed over; an ack that does not acknowledge an item is B's error.
func (b *neighbour) ack(ctx context.Context, c *client.Client, leases []api.LeaseRef) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := c.AckLeases(ctx, leases)
	if err != nil {
		b.fail(b.s.Phase(), "POST /ack", err)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range out.Results {
		if r.Error != nil || r.Status != api.StatusAcknowledged {
			b.failures = append(b.failures, Finding{Phase: b.s.Phase(), Actor: "B", Route: "POST /ack",
				Error: fmt.Sprintf("%s: status %q, error %+v", r.EventID, r.Status, r.Error)})
			continue
		}
		b.acked[r.EventID] = true
	}
}

// StopProducer stops B's publishing; its consumers go on.
func (s *Scenario) StopProducer() {
	s.b.stopProducer()
	s.b.producer.Wait()
}

// unprocessed lists the events B got a 202 for and has not acknowledged.
func (b *neighbour) unprocessed() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for id := range b.sent {
		if !b.acked[id] {
			out = append(out, id)
		}
	}
	return out
}

// WaitProcessed waits until B's consumers have acknowledged every event B got a 202 for, or
// ctx ends; it returns the ones left then.
func (s *Scenario) WaitProcessed(ctx context.Context) []string {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		left := s.b.unprocessed()
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return left
		case <-tick.C:
		}
	}
}

// StopNeighbour stops B entirely; a long poll in flight is cancelled, and counted apart.
func (s *Scenario) StopNeighbour() {
	s.StopProducer()
	s.b.stopConsumers()
	s.b.consumers.Wait()
}

// Accepted counts B's accepted events in a phase.
func (s *Scenario) Accepted(phase string) int {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	n := 0
	for _, e := range s.b.sent {
		if e.phase == phase {
			n++
		}
	}
	return n
}

// Processed counts B's acknowledged events.
func (s *Scenario) Processed() int {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return len(s.b.acked)
}
