package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/trigger-api/trigger-api/pkg/client"
)

const (
	// publishBudget bounds how long one event is retried before the producer gives up on it,
	// which the ledger reports as unconfirmed: the API stayed unavailable that long.
	publishBudget = 2 * time.Minute
	// callTimeout bounds one HTTP call: longer than any fault lasts, so a call that reaches it
	// hung, and the transport errors in the ledger show it.
	callTimeout = 45 * time.Second
)

// produce runs n producers sharing rate events per second until stop ends; each finishes the
// event in hand before it returns, so once the returned wait is over the ledger holds the
// outcome of every publish begun. ctx bounds everything, a publish in hand included.
func produce(ctx, stop context.Context, c *client.Client, l *ledger, runID string, n int, rate float64) (wait func()) {
	every := time.Duration(float64(n) / rate * float64(time.Second))
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-stop.Done():
					return
				case <-tick.C:
				}
				// A tick missed while a publish was retried is dropped, not queued: the
				// pace stays steady and nothing piles up behind a fault.
				publishOne(ctx, c, l, runID)
			}
		})
	}
	return wg.Wait
}

// publishOne sends one event with its own idempotency key and repeats it, key and body
// unchanged, until the API accepts it or refuses it for good: a repeat after an answer that
// was lost is recognised by the API as the same event.
func publishOne(ctx context.Context, c *client.Client, l *ledger, runID string) {
	seq := l.next()
	key := fmt.Sprintf("%s-%06d", runID, seq)
	body := json.RawMessage(fmt.Sprintf(`{"event_type":"chaos.tick","run":%q,"seq":%d}`, runID, seq))
	ctx, cancel := context.WithTimeout(ctx, publishBudget)
	defer cancel()
	for attempt := 1; ; attempt++ {
		callCtx, callCancel := context.WithTimeout(ctx, callTimeout)
		acc, replayed, err := c.Publish(callCtx, body, key)
		callCancel()
		switch {
		case err == nil:
			l.accept(key, acc.EventID, replayed)
			return
		case !client.Transient(err):
			l.reject(key, err)
			return
		}
		wait := max(client.RetryAfter(err), time.Duration(min(attempt, 8))*250*time.Millisecond)
		select {
		case <-ctx.Done():
			l.giveUp(key, err)
			return
		case <-time.After(wait):
		}
	}
}
