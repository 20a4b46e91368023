package harness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
	"github.com/trigger-api/trigger-api/pkg/ddbfault"
)

// phaseBound is the most any one phase may take before the run gives up on it: a system that
// does not recover within it has failed, and the run says which phase it was.
const phaseBound = 3 * time.Minute

// schedule runs the faults in turn, each followed by a recovery the system must show.
func (e *env) schedule(ctx context.Context) error {
	steps := []struct {
		name string
		act  func(context.Context) (string, error)
	}{
		{"warm-up", func(context.Context) (string, error) { return "", nil }},
		{"kill -9 " + e.st.Replicas(stack.Ingest)[1], e.crashService(stack.Ingest)},
		{"kill -9 " + e.st.Replicas(stack.Inbox)[1], e.crashService(stack.Inbox)},
		{"kill -9 chaos-worker-1", e.crashWorker},
		{fmt.Sprintf("stall DynamoDB %v", e.plan.StallFor), e.stall},
		{fmt.Sprintf("DynamoDB %.0f%% 503, %.0f%% apply-then-drop for %v", e.plan.Rate503*100, e.plan.RateDrop*100, e.plan.FaultsFor), e.faultRates},
	}
	for _, s := range steps {
		if err := e.phase(ctx, s.name, s.act); err != nil {
			return fmt.Errorf("phase %q: %w", s.name, err)
		}
	}
	return nil
}

// phase runs act, then waits until Plan.Recover more events have been accepted and processed,
// and records it.
func (e *env) phase(ctx context.Context, name string, act func(context.Context) (string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, phaseBound)
	defer cancel()
	started, acceptedBefore := time.Now(), e.ledger.count()
	e.progress("phase %s", name)
	detail, err := act(ctx)
	if err != nil {
		return err
	}
	want := e.ledger.count() + e.plan.Recover
	err = e.until(ctx, func() bool {
		return e.ledger.count() >= want && e.ledger.processedOf(e.log.snapshot()) >= want
	})
	if err != nil {
		return fmt.Errorf("no recovery (%d accepted, %d processed, want %d of each): %w",
			e.ledger.count(), e.ledger.processedOf(e.log.snapshot()), want, err)
	}
	e.phases = append(e.phases, Phase{
		Name: name, StartS: started.Sub(e.start).Seconds(), Seconds: time.Since(started).Seconds(),
		Accepted: e.ledger.count() - acceptedBefore, Detail: detail,
	})
	return nil
}

// until polls cond until it holds, ctx ends or a component of the stack dies.
func (e *env) until(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.st.Failed():
			return e.st.Err()
		case <-tick.C:
		}
	}
	return nil
}

// crashService kills one replica of component with SIGKILL while the other serves, and has
// the stack restart it on the same address.
func (e *env) crashService(component string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		return "restarted", e.st.CrashService(ctx, e.st.Replicas(component)[1])
	}
}

// crashWorker kills a worker replica with SIGKILL and starts a replacement, as a Deployment
// replaces a pod: the leases it held come back when they expire.
func (e *env) crashWorker(context.Context) (string, error) {
	e.workers[0].Kill()
	e.restarts++
	w, err := e.startWorker(fmt.Sprintf("chaos-worker-1-restart%d", e.restarts))
	if err != nil {
		return "", err
	}
	e.workers[0] = w
	return "replaced", nil
}

// stall holds every DynamoDB call for Plan.StallFor, then lets them all go on.
func (e *env) stall(ctx context.Context) (string, error) {
	before := e.proxy.Acted("", ddbfault.Stall)
	remove := e.proxy.Add(ddbfault.Rule{Kind: ddbfault.Stall})
	err := e.hold(ctx, e.plan.StallFor, func() bool { return e.proxy.Acted("", ddbfault.Stall) > before })
	remove()
	e.proxy.Release()
	return fmt.Sprintf("%d calls stalled", e.proxy.Acted("", ddbfault.Stall)-before), err
}

// faultRates makes a share of DynamoDB's calls answer 503 and another share be applied with
// their answer lost, for Plan.FaultsFor.
func (e *env) faultRates(ctx context.Context) (string, error) {
	b503, bDrop := e.proxy.Acted("", ddbfault.Status503), e.proxy.Acted("", ddbfault.ApplyThenDrop)
	remove503 := e.proxy.Add(ddbfault.Rule{Kind: ddbfault.Status503, Rate: e.plan.Rate503})
	removeDrop := e.proxy.Add(ddbfault.Rule{Kind: ddbfault.ApplyThenDrop, Rate: e.plan.RateDrop})
	err := e.hold(ctx, e.plan.FaultsFor, func() bool {
		return e.proxy.Acted("", ddbfault.Status503) > b503 && e.proxy.Acted("", ddbfault.ApplyThenDrop) > bDrop
	})
	remove503()
	removeDrop()
	return fmt.Sprintf("%d calls answered 503, %d applied and dropped",
		e.proxy.Acted("", ddbfault.Status503)-b503, e.proxy.Acted("", ddbfault.ApplyThenDrop)-bDrop), err
}

// hold keeps a fault in place for d and until it has acted (acted reports it), so a short
// plan cannot pass without its faults having hit anything.
func (e *env) hold(ctx context.Context, d time.Duration, acted func() bool) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-e.st.Failed():
		return e.st.Err()
	case <-t.C:
	}
	if err := e.until(ctx, acted); err != nil {
		return errors.Join(errors.New("the fault never acted"), err)
	}
	return nil
}
