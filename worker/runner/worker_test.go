package runner_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/worker/runner"
)

type pause struct {
	reason runner.PauseReason
	d      time.Duration
}

// harness runs workers against a fake inbox and records every pause. Idle pauses are reported
// on idle and then hold until the context ends, so a test decides when a worker has caught up
// instead of guessing with a sleep.
type harness struct {
	fake   *fakeInbox
	srv    *httptest.Server
	logs   *observer.ObservedLogs
	core   zapcore.Core
	cfg    runner.Config
	idle   chan struct{}
	mu     sync.Mutex
	pauses []pause
	// onPause, when set, stands in for every pause that is not idle; without it such a pause
	// ends at once, as if its time had passed.
	onPause func(ctx context.Context, p pause) error
	runs    []*run
	// logged holds a channel per awaited log message, closed when a worker first writes it.
	logged map[string]chan struct{}
	tel    *telemetry.Telemetry // the workers' telemetry; nil: none
}

// run is one worker: one Run call, as one replica would make.
type run struct {
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{fake: newFakeInbox(), idle: make(chan struct{}, 16), logged: map[string]chan struct{}{}}
	h.srv = httptest.NewServer(h.fake)
	t.Cleanup(h.srv.Close)
	core, logs := observer.New(zap.DebugLevel)
	h.logs = logs
	// The hook runs in the worker's goroutine as it logs, so a test can wait for a point in
	// the worker's life, not for a guessed amount of time.
	h.core = zapcore.RegisterHooks(core, func(e zapcore.Entry) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if ch, ok := h.logged[e.Message]; ok {
			delete(h.logged, e.Message)
			close(ch)
		}
		return nil
	})
	h.cfg = runner.Config{
		InboxURL:          h.srv.URL,
		Concurrency:       3,
		BatchSize:         3,
		WaitSeconds:       0,
		VisibilityTimeout: 30 * time.Second,
		NackDelay:         10 * time.Second,
		// Acks are sent when a batch fills or at shutdown unless a test says otherwise, so
		// what each ack call carries does not depend on timing.
		AckInterval:     time.Hour,
		PollInterval:    time.Hour,
		ShutdownTimeout: 10 * time.Second,
		RequestTimeout:  5 * time.Second,
	}
	return h
}

func (h *harness) pauser(ctx context.Context, reason runner.PauseReason, d time.Duration) error {
	p := pause{reason, d}
	h.mu.Lock()
	h.pauses = append(h.pauses, p)
	h.mu.Unlock()
	if reason == runner.PauseIdle {
		h.idle <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	if h.onPause != nil {
		return h.onPause(ctx, p)
	}
	return ctx.Err()
}

// when returns a channel closed once a worker logs msg; call it before the worker could.
func (h *harness) when(msg string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan struct{})
	h.logged[msg] = ch
	return ch
}

func (h *harness) recorded() []pause {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.pauses)
}

// start runs a worker with keys; several starts are several replicas.
func (h *harness) start(t *testing.T, keys []string, opts ...runner.Option) *run {
	t.Helper()
	cfg := h.cfg
	cfg.APIKeys = keys
	base := context.Background()
	if h.tel != nil {
		base = telemetry.NewContext(base, h.tel)
	}
	ctx, cancel := context.WithCancel(base)
	t.Cleanup(cancel)
	r := &run{cancel: cancel, done: make(chan error, 1)}
	h.runs = append(h.runs, r)
	opts = append([]runner.Option{
		runner.WithHTTPClient(h.srv.Client()),
		runner.WithPauser(h.pauser),
		runner.WithBackoff(runner.Backoff{Base: 100 * time.Millisecond, Max: 250 * time.Millisecond},
			runner.Backoff{Base: time.Minute, Max: 10 * time.Minute}),
	}, opts...)
	go func() { r.done <- runner.Run(ctx, zap.New(h.core), cfg, opts...) }()
	return r
}

// stop cancels every worker and waits for each Run to return.
func (h *harness) stop(t *testing.T) {
	t.Helper()
	for _, r := range h.runs {
		r.cancel()
	}
	for _, r := range h.runs {
		if err := receive(t, r.done, "Run to return"); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
}

// assertNoSecrets fails if any log line carries a key or a payload.
func (h *harness) assertNoSecrets(t *testing.T, keys []string) {
	t.Helper()
	for _, e := range h.logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, k := range keys {
			if strings.Contains(line, k) {
				t.Errorf("log line %q contains an API key", e.Message)
			}
		}
		if strings.Contains(line, "PAYLOAD-") {
			t.Errorf("log line %q contains a payload", e.Message)
		}
	}
}

func (h *harness) countLogs(msg string) int { return len(h.logs.FilterMessage(msg).All()) }

// checkSettledOnce fails t unless every listed event was acknowledged exactly once, under a
// lease a pull granted it.
func checkSettledOnce(t *testing.T, f *fakeInbox, ids []string) {
	t.Helper()
	acked := f.acked()
	for _, id := range ids {
		if acked[id] != 1 {
			t.Errorf("%s acknowledged %d times, want once", id, acked[id])
		}
	}
	f.checkAcksCarryGrantedLeases(t)
}

func ids(tenant string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("evt_%s_%02d", tenant, i))
	}
	return out
}

func TestRunAcknowledgesEachEventOncePerTenant(t *testing.T) {
	h := newHarness(t)
	acme := h.fake.tenant(t, "acme", 7)
	globex := h.fake.tenant(t, "globex", 2)
	var mu sync.Mutex
	processed := map[string][]string{}
	h.start(t, []string{acme, globex}, runner.WithProcessor(func(_ context.Context, ev runner.Event) error {
		mu.Lock()
		defer mu.Unlock()
		processed[ev.TenantID] = append(processed[ev.TenantID], ev.ID)
		if !strings.Contains(string(ev.Payload), "PAYLOAD-"+ev.ID) {
			t.Errorf("event %s: payload not handed to the processor: %s", ev.ID, ev.Payload)
		}
		if ev.DeliveryCount != 1 {
			t.Errorf("event %s: delivery count %d, want 1", ev.ID, ev.DeliveryCount)
		}
		return nil
	}))
	receive(t, h.idle, "first consumer idle")
	receive(t, h.idle, "second consumer idle")
	h.stop(t)

	checkSettledOnce(t, h.fake, append(ids("acme", 0, 7), ids("globex", 0, 2)...))
	for _, tenant := range []string{"acme", "globex"} {
		if p := h.fake.pending(tenant); len(p) != 0 {
			t.Errorf("%s: still pending %v", tenant, p)
		}
		for _, id := range processed[tenant] {
			if !strings.HasPrefix(id, "evt_"+tenant+"_") {
				t.Errorf("%s's consumer processed %s", tenant, id)
			}
		}
	}
	if len(processed["acme"]) != 7 || len(processed["globex"]) != 2 {
		t.Errorf("processed %v", processed)
	}
	for _, c := range h.fake.callsTo("/inbox/pull") {
		// Never more leases asked for than slots free, nor than a batch.
		if *c.pull.MaxEvents < 1 || *c.pull.MaxEvents > 3 || *c.pull.VisibilityTimeoutSeconds != 30 || *c.pull.WaitSeconds != 0 {
			t.Errorf("pull asked %+v", c.pull)
		}
	}
	for _, n := range h.fake.ackSizes() {
		if n > 3 {
			t.Errorf("an ack call carried %d leases, more than the batch size 3", n)
		}
	}
	if n := len(h.fake.callsTo("/nack")) + len(h.fake.callsTo("/inbox/extend")); n != 0 {
		t.Errorf("%d nack or extend calls, want none", n)
	}

	lines := h.logs.FilterMessage("processing event").All()
	if len(lines) != 9 {
		t.Errorf("%d processing lines, want 9", len(lines))
	}
	for _, l := range lines {
		m := l.ContextMap()
		id, _ := m["event_id"].(string)
		tenant, _ := m["tenant_id"].(string)
		if tenant == "" || !strings.HasPrefix(id, "evt_"+tenant) || m["event_type"] != "type."+tenant || m["delivery_count"] != int64(1) {
			t.Errorf("processing line fields %v", m)
		}
	}
	h.assertNoSecrets(t, []string{acme, globex})
}

func TestRunSendsAcksInFullBatchesWithTheirLeases(t *testing.T) {
	h := newHarness(t)
	acme := h.fake.tenant(t, "acme", 7)
	processed := make(chan string, 7)
	h.start(t, []string{acme}, runner.WithProcessor(func(_ context.Context, ev runner.Event) error {
		processed <- ev.ID
		return nil
	}))
	for range 7 {
		receive(t, processed, "an event processed")
	}
	h.fake.waitFor(t, "six events acknowledged", func(f *fakeInbox) bool { return f.countState("acme", "acked") == 6 })
	// The seventh waits for its batch to fill or for shutdown: the interval is an hour.
	if got := h.fake.ackSizes(); !slices.Equal(got, []int{3, 3}) {
		t.Errorf("ack calls before shutdown carried %v leases, want [3 3]", got)
	}
	h.stop(t)

	if got := h.fake.ackSizes(); !slices.Equal(got, []int{3, 3, 1}) {
		t.Errorf("ack calls carried %v leases, want [3 3 1]: two full batches and the rest at shutdown", got)
	}
	checkSettledOnce(t, h.fake, ids("acme", 0, 7))
	if p := h.fake.pending("acme"); len(p) != 0 {
		t.Errorf("still pending %v", p)
	}
}

func TestRunSendsAPartialBatchAfterTheAckInterval(t *testing.T) {
	h := newHarness(t)
	h.cfg.AckInterval = 20 * time.Millisecond
	h.cfg.BatchSize = 10
	acme := h.fake.tenant(t, "acme", 2)
	h.start(t, []string{acme})
	h.fake.waitFor(t, "both events acknowledged before any shutdown", func(f *fakeInbox) bool { return f.countState("acme", "acked") == 2 })
	h.stop(t)
	checkSettledOnce(t, h.fake, ids("acme", 0, 2))
}

func TestRunExtendsTheLeaseOfASlowEvent(t *testing.T) {
	h := newHarness(t)
	h.cfg.VisibilityTimeout = time.Second
	acme := h.fake.tenant(t, "acme", 1)
	release := make(chan struct{})
	ctxErr := make(chan error, 1)
	h.start(t, []string{acme}, runner.WithProcessor(func(ctx context.Context, _ runner.Event) error {
		<-release
		ctxErr <- ctx.Err()
		return nil
	}))
	h.fake.waitFor(t, "two extensions", func(f *fakeInbox) bool { return f.countCalls("/inbox/extend") >= 2 })
	close(release)
	if err := receive(t, ctxErr, "processor to finish"); err != nil {
		t.Errorf("the processor's context ended while its lease was being extended: %v", err)
	}
	h.stop(t)

	pulls := h.fake.callsTo("/inbox/pull")
	granted := pulls[0].served
	if len(granted) != 1 {
		t.Fatalf("first pull granted %v", granted)
	}
	// Only the two extensions waited for: a third may race the release and reach the fake
	// after the ack, where lease_lost is the right answer.
	for i, c := range h.fake.callsTo("/inbox/extend")[:2] {
		if !slices.Equal(c.leases, granted) || c.vis != 1 || c.results[granted[0].EventID] != "extended" {
			t.Errorf("extension %d: leases %v for %ds (%v), want %v for 1s", i+1, c.leases, c.vis, c.results, granted)
		}
		// Half the visibility timeout at the earliest: the worker does not extend leases
		// that are nowhere near running out.
		if i == 0 && c.at.Sub(pulls[0].at) < 500*time.Millisecond {
			t.Errorf("first extension %v after the pull, want at least half the 1s lease", c.at.Sub(pulls[0].at))
		}
	}
	checkSettledOnce(t, h.fake, ids("acme", 0, 1))
}

func TestRunNacksAFailedEventWithTheDelay(t *testing.T) {
	h := newHarness(t)
	acme := h.fake.tenant(t, "acme", 3)
	h.start(t, []string{acme}, runner.WithProcessor(func(_ context.Context, ev runner.Event) error {
		if ev.ID == "evt_acme_01" {
			return errors.New("downstream said no")
		}
		return nil
	}))
	receive(t, h.idle, "consumer idle")
	h.stop(t)

	nacks := h.fake.callsTo("/nack")
	granted := h.fake.granted()["evt_acme_01"]
	if len(nacks) != 1 || len(granted) != 1 ||
		!slices.Equal(nacks[0].leases, []lease{{EventID: "evt_acme_01", LeaseID: granted[0]}}) || nacks[0].delay != 10 {
		t.Fatalf("nack calls %+v, want one for evt_acme_01 under %v with a 10s delay", nacks, granted)
	}
	if state, _ := h.fake.state("evt_acme_01"); state != "delayed" {
		t.Errorf("failed event is %s, want delayed", state)
	}
	if h.fake.acked()["evt_acme_01"] != 0 {
		t.Error("the failed event was acknowledged")
	}
	checkSettledOnce(t, h.fake, []string{"evt_acme_00", "evt_acme_02"})
	if n := h.countLogs("processing failed; nacking the event"); n != 1 {
		t.Errorf("%d failure lines, want 1", n)
	}
}

func TestRunOnShutdownStopsPullingFinishesEventsAndFlushesAcks(t *testing.T) {
	h := newHarness(t)
	h.cfg.WaitSeconds = 20
	acme := h.fake.tenant(t, "acme", 2)
	inHand := make(chan string, 2)
	release := make(chan struct{})
	ctxErrs := make(chan error, 2)
	r := h.start(t, []string{acme}, runner.WithProcessor(func(ctx context.Context, ev runner.Event) error {
		inHand <- ev.ID
		<-release
		ctxErrs <- ctx.Err()
		return nil
	}))
	receive(t, inHand, "first event in hand")
	receive(t, inHand, "second event in hand")
	// The third slot is free, so the worker is long-polling for more.
	h.fake.waitFor(t, "a long poll waiting", func(f *fakeInbox) bool { return f.parked >= 1 })

	stopped := h.when("stopped pulling; finishing the events in hand")
	r.cancel()
	receive(t, stopped, "the worker to stop pulling")
	h.fake.waitFor(t, "the long poll abandoned", func(f *fakeInbox) bool { return f.gone == 1 })
	pullsAtStop := len(h.fake.callsTo("/inbox/pull"))
	// Released only now, so a worker that did not wait for its events would have settled
	// them already: handed back and never acknowledged.
	close(release)
	if err := receive(t, r.done, "Run to return"); err != nil {
		t.Fatalf("Run: %v", err)
	}

	for range 2 {
		if err := <-ctxErrs; err != nil {
			t.Errorf("SIGTERM cancelled the processor's context: %v", err)
		}
	}
	if n := len(h.fake.callsTo("/inbox/pull")); n != pullsAtStop {
		t.Errorf("%d pulls after shutdown began", n-pullsAtStop)
	}
	// Both acks were pending (a batch of 3 never filled); Run sent them before returning.
	if got := h.fake.ackSizes(); !slices.Equal(got, []int{2}) {
		t.Errorf("ack calls carried %v leases, want [2]", got)
	}
	checkSettledOnce(t, h.fake, ids("acme", 0, 2))
	if n := len(h.fake.callsTo("/nack")); n != 0 {
		t.Errorf("%d nack calls, want none: both events finished in time", n)
	}
}

func TestRunHandsBackEventsStillRunningAtTheShutdownTimeout(t *testing.T) {
	h := newHarness(t)
	h.cfg.ShutdownTimeout = 50 * time.Millisecond
	h.cfg.Concurrency, h.cfg.BatchSize = 2, 2
	// The quick event is acked before shutdown begins: a goroutine descheduled past the short
	// timeout must not make the test about the quick event too.
	h.cfg.AckInterval = time.Millisecond
	acme := h.fake.tenant(t, "acme", 2)
	quick := make(chan struct{})
	stuck := make(chan struct{})
	cause := make(chan error, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	r := h.start(t, []string{acme}, runner.WithProcessor(func(ctx context.Context, ev runner.Event) error {
		if ev.ID == "evt_acme_00" {
			close(quick)
			return nil
		}
		close(stuck)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		// A processor slow to notice: Run must not wait for it.
		<-release
		return nil
	}))
	receive(t, quick, "the quick event processed")
	receive(t, stuck, "the slow event in hand")
	h.fake.waitFor(t, "the quick event acked", func(f *fakeInbox) bool { return f.countState("acme", "acked") == 1 })
	r.cancel()
	if err := receive(t, r.done, "Run to return"); err != nil {
		t.Fatalf("Run: %v", err)
	}

	if err := receive(t, cause, "the slow processor's context to end"); !errors.Is(err, runner.ErrShutdownTimeout) {
		t.Errorf("slow processor's context ended with %v, want ErrShutdownTimeout", err)
	}
	granted := h.fake.granted()["evt_acme_01"]
	nacks := h.fake.callsTo("/nack")
	if len(nacks) != 1 || !slices.Equal(nacks[0].leases, []lease{{EventID: "evt_acme_01", LeaseID: granted[0]}}) || nacks[0].delay != 0 {
		t.Fatalf("nack calls %+v, want evt_acme_01 handed back under %v without delay", nacks, granted)
	}
	if state, _ := h.fake.state("evt_acme_01"); state != "visible" {
		t.Errorf("handed-back event is %s, want visible for another worker", state)
	}
	acked := h.fake.acked()
	if acked["evt_acme_00"] != 1 || acked["evt_acme_01"] != 0 {
		t.Errorf("acked %v, want the quick event only", acked)
	}
}

func TestRunDoesNotRetryAnAckWhoseLeaseWasLost(t *testing.T) {
	h := newHarness(t)
	h.cfg.BatchSize = 1
	acme := h.fake.tenant(t, "acme", 1)
	h.start(t, []string{acme}, runner.WithProcessor(func(_ context.Context, ev runner.Event) error {
		h.fake.steal(ev.ID) // processing outlived the lease and another worker took the event
		return nil
	}))
	h.fake.waitFor(t, "an ack", func(f *fakeInbox) bool { return f.countCalls("/ack") == 1 })
	receive(t, h.idle, "consumer idle")
	h.stop(t)

	acks := h.fake.callsTo("/ack")
	if len(acks) != 1 || acks[0].results["evt_acme_00"] != "lease_lost" {
		t.Fatalf("ack calls %+v, want one answered lease_lost", acks)
	}
	if state, leaseID := h.fake.state("evt_acme_00"); state != "leased" || !strings.HasPrefix(leaseID, "lease_stolen_") {
		t.Errorf("event is %s under %s, want still leased by the other worker", state, leaseID)
	}
	for _, p := range h.recorded() {
		if p.reason == runner.PauseRetry {
			t.Errorf("retry pause %+v after a lost lease", p)
		}
	}
	if n := h.countLogs("ack: lease lost; the inbox will redeliver the event"); n != 1 {
		t.Errorf("%d lease-lost lines, want 1", n)
	}
	if n := len(h.fake.callsTo("/nack")); n != 0 {
		t.Errorf("%d nack calls, want none", n)
	}
}

func TestRunStopsAnEventWhoseLeaseExtensionIsRefused(t *testing.T) {
	h := newHarness(t)
	h.cfg.VisibilityTimeout = time.Second
	acme := h.fake.tenant(t, "acme", 1)
	cause := make(chan error, 1)
	h.start(t, []string{acme}, runner.WithProcessor(func(ctx context.Context, ev runner.Event) error {
		h.fake.steal(ev.ID)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return ctx.Err()
	}))
	if err := receive(t, cause, "the processor's context to end"); !errors.Is(err, runner.ErrLeaseLost) {
		t.Errorf("processor's context ended with %v, want ErrLeaseLost", err)
	}
	h.stop(t)

	// Run waits for the event in hand, so its outcome is logged by now.
	if n := h.countLogs("lease lost while processing; not settled, the inbox will redeliver the event"); n != 1 {
		t.Errorf("%d lost-lease lines for the processed event, want 1", n)
	}

	ext := h.fake.callsTo("/inbox/extend")
	if len(ext) != 1 || ext[0].results["evt_acme_00"] != "lease_lost" {
		t.Errorf("extend calls %+v, want one answered lease_lost", ext)
	}
	if n := len(h.fake.callsTo("/ack")) + len(h.fake.callsTo("/nack")); n != 0 {
		t.Errorf("%d ack or nack calls for an event whose lease was lost", n)
	}
}

func TestRunReplicasShareAKeyWithoutProcessingAnEventTwice(t *testing.T) {
	h := newHarness(t)
	h.cfg.Concurrency, h.cfg.BatchSize = 4, 4
	acme := h.fake.tenant(t, "acme", 40)
	inHand := make(chan string, 40)
	release := make(chan struct{})
	var mu sync.Mutex
	byReplica := map[int][]string{}
	for replica := range 2 {
		h.start(t, []string{acme}, runner.WithProcessor(func(_ context.Context, ev runner.Event) error {
			mu.Lock()
			byReplica[replica] = append(byReplica[replica], ev.ID)
			mu.Unlock()
			inHand <- ev.ID
			<-release
			return nil
		}))
	}
	// Eight events in hand at once can only be both replicas at full concurrency: each holds
	// at most four.
	first := map[string]bool{}
	for range 8 {
		first[receive(t, inHand, "events in hand")] = true
	}
	if len(first) != 8 {
		t.Fatalf("the replicas held %d distinct events among 8", len(first))
	}
	close(release)
	for range 32 {
		receive(t, inHand, "the remaining events")
	}
	receive(t, h.idle, "first replica idle")
	receive(t, h.idle, "second replica idle")
	h.stop(t)

	seen := map[string]int{}
	for _, evs := range byReplica {
		for _, id := range evs {
			seen[id]++
		}
	}
	for _, id := range ids("acme", 0, 40) {
		if seen[id] != 1 {
			t.Errorf("%s processed %d times, want once", id, seen[id])
		}
	}
	if len(byReplica[0]) == 0 || len(byReplica[1]) == 0 {
		t.Errorf("replicas processed %d and %d events, want both to take part", len(byReplica[0]), len(byReplica[1]))
	}
	checkSettledOnce(t, h.fake, ids("acme", 0, 40))
}

func TestRunRetriesTransientFailuresWithGrowingPauses(t *testing.T) {
	h := newHarness(t)
	acme := h.fake.tenant(t, "acme", 2)
	pulls, acks := 0, 0
	h.fake.fail = func(r *http.Request) int {
		switch r.URL.Path {
		case "/inbox/pull":
			if pulls++; pulls <= 3 {
				return http.StatusServiceUnavailable
			}
		case "/ack":
			if acks++; acks == 1 {
				return http.StatusBadGateway
			}
		}
		return 0
	}
	h.start(t, []string{acme})
	receive(t, h.idle, "consumer idle")
	h.stop(t)

	var retries []time.Duration
	for _, p := range h.recorded() {
		if p.reason == runner.PauseRetry {
			retries = append(retries, p.d)
		}
	}
	// Three pull failures (ceilings 100, 200, 250 ms: doubled, then capped), then one ack
	// failure whose own count starts again at 100 ms.
	ceilings := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond, 100 * time.Millisecond}
	if len(retries) != len(ceilings) {
		t.Fatalf("retry pauses %v, want %d", retries, len(ceilings))
	}
	for i, d := range retries {
		if d < ceilings[i]/2 || d > ceilings[i] {
			t.Errorf("retry pause %d = %v, want within [%v, %v]", i+1, d, ceilings[i]/2, ceilings[i])
		}
	}
	if got := h.fake.ackSizes(); !slices.Equal(got, []int{2}) {
		t.Errorf("ack calls that reached the inbox carried %v leases, want [2]: the failed batch sent again whole", got)
	}
	checkSettledOnce(t, h.fake, ids("acme", 0, 2))
	if n := h.countLogs("pull failed; retrying"); n != 3 {
		t.Errorf("%d retry warnings for pulls, want 3", n)
	}
}

// TestRunWaitsOutRetryAfterInItsOwnPause: the worker's client makes each call once, so a 503
// with Retry-After reaches the worker, which pauses at least that long through its own pauser
// (one settle span per attempt) before sending the batch again.
func TestRunWaitsOutRetryAfterInItsOwnPause(t *testing.T) {
	h := newHarness(t)
	acme := h.fake.tenant(t, "acme", 3)
	acks := 0
	h.fake.retryAfter = "1"
	h.fake.fail = func(r *http.Request) int {
		if r.URL.Path == "/ack" {
			if acks++; acks == 1 {
				return http.StatusServiceUnavailable
			}
		}
		return 0
	}
	h.start(t, []string{acme})
	h.fake.waitFor(t, "every event acknowledged", func(f *fakeInbox) bool { return f.countState("acme", "acked") == 3 })
	h.stop(t)

	var retries []time.Duration
	for _, p := range h.recorded() {
		if p.reason == runner.PauseRetry {
			retries = append(retries, p.d)
		}
	}
	if len(retries) != 1 || retries[0] != time.Second {
		t.Errorf("retry pauses %v, want one of the 1s Retry-After", retries)
	}
	h.fake.mu.Lock()
	sent := acks
	h.fake.mu.Unlock()
	if sent != 2 {
		t.Errorf("%d ack requests, want the refused one and the worker's retry", sent)
	}
	checkSettledOnce(t, h.fake, ids("acme", 0, 3))
}

func TestRunRefusedKeyPausesLongInsteadOfRetryingHot(t *testing.T) {
	h := newHarness(t)
	h.fake.tenant(t, "acme", 1)
	revoked := newFakeInbox().tenant(t, "acme", 0) // well-formed, unknown to this inbox
	refusedPause := make(chan pause, 1)
	// The pause reports itself and then lasts until shutdown, as a long one would.
	h.onPause = func(ctx context.Context, p pause) error {
		refusedPause <- p
		<-ctx.Done()
		return ctx.Err()
	}
	h.start(t, []string{revoked})
	p := receive(t, refusedPause, "pause after 401")
	h.stop(t)

	if p.reason != runner.PauseRefused || p.d < 30*time.Second {
		t.Errorf("pause after 401 = %+v, want a refused pause of at least 30s", p)
	}
	if got := h.fake.callsTo("/inbox/pull"); len(got) != 0 {
		t.Errorf("pulls served %v", got)
	}
	if n := h.countLogs("pull refused; check the key and TRIGGER_INBOX_URL"); n != 1 {
		t.Errorf("%d refusal errors logged, want 1", n)
	}
	h.assertNoSecrets(t, []string{revoked})
}

func TestRunRejectsBadConfigWithoutShowingKeys(t *testing.T) {
	good := newFakeInbox().tenant(t, "acme", 0)
	malformed := good[:len(good)-1] + "x" // checksum no longer matches
	if malformed == good {
		malformed = good[:len(good)-1] + "y"
	}
	base := newHarness(t).cfg
	cases := []struct {
		name string
		edit func(*runner.Config)
		want string
	}{
		{"malformed-key", func(c *runner.Config) { c.APIKeys = []string{good, malformed} }, "key 2 of 2"},
		{"empty-key", func(c *runner.Config) { c.APIKeys = []string{good, ""} }, "key 2 of 2"},
		{"duplicate-key", func(c *runner.Config) { c.APIKeys = []string{good, good} }, "key 2 repeats key 1"},
		{"no-keys", func(c *runner.Config) { c.APIKeys = nil }, "no key"},
		{"batch-0", func(c *runner.Config) { c.BatchSize = 0 }, "TRIGGER_BATCH_SIZE"},
		{"batch-101", func(c *runner.Config) { c.BatchSize = 101 }, "TRIGGER_BATCH_SIZE"},
		{"concurrency-0", func(c *runner.Config) { c.Concurrency = 0 }, "TRIGGER_CONCURRENCY"},
		{"wait-21", func(c *runner.Config) { c.WaitSeconds = 21 }, "TRIGGER_WAIT_SECONDS"},
		{"wait-negative", func(c *runner.Config) { c.WaitSeconds = -1 }, "TRIGGER_WAIT_SECONDS"},
		{"visibility-0", func(c *runner.Config) { c.VisibilityTimeout = 0 }, "TRIGGER_VISIBILITY_TIMEOUT"},
		{"visibility-fraction", func(c *runner.Config) { c.VisibilityTimeout = 1500 * time.Millisecond }, "whole number of seconds"},
		{"visibility-13h", func(c *runner.Config) { c.VisibilityTimeout = 13 * time.Hour }, "TRIGGER_VISIBILITY_TIMEOUT"},
		{"nack-negative", func(c *runner.Config) { c.NackDelay = -time.Second }, "TRIGGER_NACK_DELAY"},
		{"nack-fraction", func(c *runner.Config) { c.NackDelay = 100 * time.Millisecond }, "TRIGGER_NACK_DELAY"},
		{"zero-ack-interval", func(c *runner.Config) { c.AckInterval = 0 }, "TRIGGER_ACK_INTERVAL"},
		{"relative-url", func(c *runner.Config) { c.InboxURL = "/inbox" }, "TRIGGER_INBOX_URL"},
		{"url-with-credentials", func(c *runner.Config) { c.InboxURL = "http://u:p@127.0.0.1" }, "TRIGGER_INBOX_URL"},
		{"zero-poll", func(c *runner.Config) { c.PollInterval = 0 }, "TRIGGER_POLL_INTERVAL"},
		{"zero-shutdown", func(c *runner.Config) { c.ShutdownTimeout = 0 }, "TRIGGER_SHUTDOWN_TIMEOUT"},
		{"zero-timeout", func(c *runner.Config) { c.RequestTimeout = 0 }, "TRIGGER_REQUEST_TIMEOUT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.APIKeys = []string{good}
			tc.edit(&cfg)
			err := runner.Run(context.Background(), zap.NewNop(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run error %v, want one mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), good) || strings.Contains(err.Error(), malformed) {
				t.Errorf("error shows a key: %v", err)
			}
		})
	}
}

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	b := runner.Backoff{Base: time.Second, Max: 5 * time.Second}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := b.Ceiling(i + 1); got != w {
			t.Errorf("Ceiling(%d) = %v, want %v", i+1, got, w)
		}
		for range 50 {
			if d := b.Delay(i + 1); d < w/2 || d > w {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", i+1, d, w/2, w)
			}
		}
	}
	if got := b.Ceiling(10_000); got != 5*time.Second {
		t.Errorf("Ceiling after many failures = %v, want the cap", got)
	}
}
