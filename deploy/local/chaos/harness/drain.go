package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
	"github.com/trigger-api/trigger-api/pkg/ddbfault"
)

// drainCall bounds each listing the drain makes; a 503 is retried by the client.
const drainCall = 20 * time.Second

// drain waits, once the producers have stopped, until every accepted event has been processed
// or is dead, and the inbox lists nothing left to deliver; at most Plan.Drain. It returns
// whether that happened, how many events the inbox still lists and the dead letters.
func (e *env) drain(ctx context.Context) (drained bool, left int, dead map[string]api.Event, err error) {
	e.progress("drain: %d accepted, waiting for each to be processed or dead", e.ledger.count())
	ctx, cancel := context.WithTimeout(ctx, e.plan.Drain)
	defer cancel()
	accepted := e.ledger.ids()
	dead = map[string]api.Event{}
	err = e.until(ctx, func() bool {
		times := e.log.snapshot()
		// The workers' logs settle most events; the dead letters are asked for the rest.
		if unsettled(accepted, times, dead) > 0 {
			if d, derr := deadLetters(ctx, e.api); derr == nil {
				dead = d
			}
			if unsettled(accepted, times, dead) > 0 {
				return false
			}
		}
		left = inboxLeft(ctx, e.api)
		return left == 0
	})
	if err != nil && ctx.Err() == nil {
		return false, left, dead, err // a component died: not a verdict on the drain
	}
	return err == nil, left, dead, nil
}

// unsettled is how many accepted events are neither processed nor dead.
func unsettled(accepted map[string]bool, times map[string]int, dead map[string]api.Event) int {
	n := 0
	for id := range accepted {
		if times[id] == 0 && !isDead(dead, id) {
			n++
		}
	}
	return n
}

// deadLetters lists every dead letter of the tenant.
func deadLetters(ctx context.Context, c *client.Client) (map[string]api.Event, error) {
	out := map[string]api.Event{}
	cursor := ""
	for {
		callCtx, cancel := context.WithTimeout(ctx, drainCall)
		page, err := c.Dead(callCtx, api.MaxListLimit, cursor)
		cancel()
		if err != nil {
			return nil, err
		}
		for _, ev := range page.Events {
			out[ev.EventID] = ev
		}
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

// inboxLeft is how many events GET /inbox still lists (up to a page); -1 if it did not answer.
func inboxLeft(ctx context.Context, c *client.Client) int {
	callCtx, cancel := context.WithTimeout(ctx, drainCall)
	defer cancel()
	page, err := c.Inbox(callCtx, client.InboxQuery{Limit: api.MaxListLimit})
	if err != nil {
		return -1
	}
	return len(page.Events)
}

// report assembles the ledger from what the producers were told, what the workers logged,
// what the API lists as dead, and every raw answer.
func (e *env) report(drained bool, left int, dead map[string]api.Event, drainTook time.Duration) *Report {
	accepted, times := e.ledger.ids(), e.log.snapshot()
	r := &Report{Plan: e.plan.Name, Accepted: len(accepted), LeftInInbox: left, LogDir: e.opts.StateDir,
		Phases: e.phases, ByReplica: e.log.replicas(), FaultsActed: e.faultsActed(),
		DrainSeconds: drainTook.Seconds(), DurationSeconds: time.Since(e.start).Seconds(),
		Dead: []DeadEvent{}, Violations: []string{}, CutByCrash: cutByCrash(filepath.Join(e.opts.StateDir, "gateway.log"))}
	var lost, unexpected []string
	for id := range accepted {
		switch {
		case times[id] > 0:
			r.Processed++
		case !isDead(dead, id):
			lost = append(lost, id)
		}
		if ev, ok := dead[id]; ok {
			r.Dead = append(r.Dead, DeadEvent{EventID: id, Reason: deadReason(ev)})
		}
	}
	for id, n := range times {
		if !accepted[id] {
			unexpected = append(unexpected, id)
		}
		if n > 1 {
			r.Duplicates += n - 1
			r.DuplicateEvents++
		}
	}
	r.Lost, r.Unexpected = len(lost), len(unexpected)
	e.ledgerCounts(r)
	r.judge(drained)
	r.evidence(lost, unexpected, e)
	return r
}

func (e *env) ledgerCounts(r *Report) {
	e.ledger.mu.Lock()
	r.Replayed, r.Unconfirmed = e.ledger.replayed, len(e.ledger.unconfirmed)
	r.Rejected, r.IDMismatches = len(e.ledger.rejected), len(e.ledger.mismatches)
	e.ledger.mu.Unlock()
	c := e.rec.counts()
	r.StatusCounts, r.Other5xx = statusCounts(c)
	r.RetryAfterMissing, r.TransportErrors = c.retryAfterMissing, c.transportErrors
	r.LongestCallS = c.longest.Seconds()
	e.log.mu.Lock()
	r.WorkerErrors = e.log.errors
	e.log.mu.Unlock()
}

// evidence lists, for broken invariants, the first ids and errors to look up in the logs.
func (r *Report) evidence(lost, unexpected []string, e *env) {
	const show = 20
	slices.Sort(lost)
	slices.Sort(unexpected)
	add := func(what string, items []string) {
		if len(items) > 0 {
			r.Evidence = append(r.Evidence, fmt.Sprintf("%s: %v", what, items[:min(len(items), show)]))
		}
	}
	add("lost event ids", lost)
	add("unexpected event ids", unexpected)
	e.ledger.mu.Lock()
	add("unconfirmed publishes", e.ledger.unconfirmed)
	add("rejected publishes", e.ledger.rejected)
	add("idempotency mismatches", e.ledger.mismatches)
	e.ledger.mu.Unlock()
	if c := e.rec.counts(); c.firstError != "" {
		r.Evidence = append(r.Evidence, "first call without an answer: "+c.firstError)
	}
	if r.Failed() {
		r.Evidence = append(r.Evidence, "logs: "+r.LogDir)
	}
}

// cutByCrash counts the gateway's log lines for calls a replica failed mid-way; a call no
// replica accepted is a line too, but with two replicas and one restarted at a time there are
// none of those.
func cutByCrash(gatewayLog string) int {
	b, err := os.ReadFile(gatewayLog)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), " → ")
}

func isDead(dead map[string]api.Event, id string) bool {
	_, ok := dead[id]
	return ok
}

func deadReason(ev api.Event) string {
	return fmt.Sprintf("dead after %d deliveries at %s", ev.DeliveryCount, time.UnixMilli(ev.DeadAt).UTC().Format(time.RFC3339))
}

func (e *env) faultsActed() map[string]int {
	out := map[string]int{}
	for _, k := range []ddbfault.Kind{ddbfault.Stall, ddbfault.Status503, ddbfault.ApplyThenDrop} {
		out[k.String()] = e.proxy.Acted("", k)
	}
	return out
}
