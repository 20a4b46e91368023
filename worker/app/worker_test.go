package app_test

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
	"go.uber.org/zap/zaptest/observer"

	"github.com/trigger-api/trigger-api/worker/app"
)

type pause struct {
	reason app.PauseReason
	d      time.Duration
}

// harness runs the worker against a fake inbox and records every pause. Idle pauses are
// reported on idle and then hold until the context ends, so a test decides when the worker
// has caught up instead of guessing with a sleep.
type harness struct {
	fake   *fakeInbox
	srv    *httptest.Server
	logs   *observer.ObservedLogs
	cfg    app.Config
	idle   chan struct{}
	mu     sync.Mutex
	pauses []pause
	// onPause, when set, stands in for every pause that is not idle; without it such a pause
	// ends at once, as if its time had passed.
	onPause func(ctx context.Context, p pause) error
	cancel  context.CancelFunc
	done    chan error
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{fake: newFakeInbox(), idle: make(chan struct{}, 16), done: make(chan error, 1)}
	h.srv = httptest.NewServer(h.fake)
	t.Cleanup(h.srv.Close)
	h.cfg = app.Config{InboxURL: h.srv.URL, PollInterval: time.Hour, BatchSize: 3, RequestTimeout: 5 * time.Second}
	return h
}

func (h *harness) pauser(ctx context.Context, reason app.PauseReason, d time.Duration) error {
	p := pause{reason, d}
	h.mu.Lock()
	h.pauses = append(h.pauses, p)
	h.mu.Unlock()
	if reason == app.PauseIdle {
		h.idle <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	if h.onPause != nil {
		return h.onPause(ctx, p)
	}
	return ctx.Err()
}

func (h *harness) recorded() []pause {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.pauses)
}

func (h *harness) start(t *testing.T, keys []string, opts ...app.Option) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	h.logs = logs
	h.cfg.APIKeys = keys
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	t.Cleanup(cancel)
	opts = append([]app.Option{
		app.WithHTTPClient(h.srv.Client()),
		app.WithPauser(h.pauser),
		app.WithBackoff(app.Backoff{Base: 100 * time.Millisecond, Max: 250 * time.Millisecond},
			app.Backoff{Base: time.Minute, Max: 10 * time.Minute}),
	}, opts...)
	go func() { h.done <- app.Run(ctx, zap.New(core), h.cfg, opts...) }()
}

// stop cancels the worker and waits for Run to return.
func (h *harness) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	if err := receive(t, h.done, "Run to return"); err != nil {
		t.Fatalf("Run: %v", err)
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

func TestRunAcknowledgesEachEventOncePerTenant(t *testing.T) {
	h := newHarness(t)
	acme := h.fake.tenant(t, "acme", 7)
	globex := h.fake.tenant(t, "globex", 2)
	var mu sync.Mutex
	processed := map[string][]string{}
	h.start(t, []string{acme, globex}, app.WithProcessor(func(_ context.Context, ev app.Event) error {
		mu.Lock()
		defer mu.Unlock()
		processed[ev.TenantID] = append(processed[ev.TenantID], ev.ID)
		if !strings.Contains(string(ev.Payload), "PAYLOAD-"+ev.ID) {
			t.Errorf("event %s: payload not handed to the processor: %s", ev.ID, ev.Payload)
		}
		return nil
	}))
	receive(t, h.idle, "first loop idle")
	receive(t, h.idle, "second loop idle")
	h.stop(t)

	acks := h.fake.ackCounts()
	if len(acks) != 9 {
		t.Errorf("acknowledged %d distinct events, want 9: %v", len(acks), acks)
	}
	for id, n := range acks {
		if n != 1 {
			t.Errorf("%s acknowledged %d times, want once", id, n)
		}
	}
	for _, tenant := range []string{"acme", "globex"} {
		if p := h.fake.pending(tenant); len(p) != 0 {
			t.Errorf("%s: still pending %v", tenant, p)
		}
		for _, id := range processed[tenant] {
			if !strings.HasPrefix(id, "evt_"+tenant+"_") {
				t.Errorf("%s's loop processed %s", tenant, id)
			}
		}
	}
	if len(processed["acme"]) != 7 || len(processed["globex"]) != 2 {
		t.Errorf("processed %v", processed)
	}
	// Full pages are read back to back; only the partial last page leads to an idle pause.
	if got := h.fake.readSizes("acme"); !slices.Equal(got, []int{3, 3, 1}) {
		t.Errorf("acme page sizes %v, want [3 3 1]", got)
	}
	if got := h.fake.readSizes("globex"); !slices.Equal(got, []int{2}) {
		t.Errorf("globex page sizes %v, want [2]", got)
	}
	for _, p := range h.recorded() {
		if p.reason != app.PauseIdle || p.d != time.Hour {
			t.Errorf("unexpected pause %+v", p)
		}
	}

	lines := h.logs.FilterMessage("processing event").All()
	if len(lines) != 9 {
		t.Errorf("%d processing lines, want 9", len(lines))
	}
	for _, l := range lines {
		m := l.ContextMap()
		id, _ := m["event_id"].(string)
		if m["tenant_id"] == nil || !strings.HasPrefix(id, "evt_"+m["tenant_id"].(string)) || m["event_type"] != "type."+m["tenant_id"].(string) {
			t.Errorf("processing line fields %v", m)
		}
	}
	start := h.logs.FilterMessage("starting").All()
	if len(start) != 1 || start[0].ContextMap()["TRIGGER_API_KEYS"] != "set" {
		t.Errorf("start-up line should show the keys as set: %v", start)
	}
	h.assertNoSecrets(t, []string{acme, globex})
}

func TestRunRetriesTransientFailuresWithGrowingPauses(t *testing.T) {
	h := newHarness(t)
	acme := h.fake.tenant(t, "acme", 2)
	reads, acks := 0, 0
	h.fake.fail = func(r *http.Request) int {
		switch r.URL.Path {
		case "/inbox":
			if reads++; reads <= 3 {
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
	receive(t, h.idle, "loop idle")
	h.stop(t)

	var retries []time.Duration
	for _, p := range h.recorded() {
		if p.reason == app.PauseRetry {
			retries = append(retries, p.d)
		}
	}
	// Three read failures (ceilings 100, 200, 250 ms: doubled, then capped), then one ack
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
	for id, n := range h.fake.ackCounts() {
		if n != 1 {
			t.Errorf("%s acknowledged %d times, want once", id, n)
		}
	}
	if p := h.fake.pending("acme"); len(p) != 0 {
		t.Errorf("still pending %v", p)
	}
	if n := len(h.logs.FilterMessage("read inbox failed; retrying").All()); n != 3 {
		t.Errorf("%d retry warnings for reads, want 3", n)
	}
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

	if p.reason != app.PauseRefused || p.d < 30*time.Second {
		t.Errorf("pause after 401 = %+v, want a refused pause of at least 30s", p)
	}
	if got := h.fake.readSizes("acme"); len(got) != 0 {
		t.Errorf("reads served %v", got)
	}
	if n := len(h.logs.FilterMessage("read inbox refused; check the key and TRIGGER_INBOX_URL").All()); n != 1 {
		t.Errorf("%d refusal errors logged, want 1", n)
	}
	h.assertNoSecrets(t, []string{revoked})
}

func TestRunFinishesTheEventInHandOnShutdown(t *testing.T) {
	h := newHarness(t)
	acme := h.fake.tenant(t, "acme", 3)
	inHand := make(chan string)
	release := make(chan struct{})
	h.start(t, []string{acme}, app.WithProcessor(func(ctx context.Context, ev app.Event) error {
		inHand <- ev.ID
		<-release
		if ctx.Err() != nil {
			return errors.New("processor context was cancelled by shutdown")
		}
		return nil
	}))
	first := receive(t, inHand, "first event in hand")
	h.cancel()
	close(release)
	if err := receive(t, h.done, "Run to return"); err != nil {
		t.Fatalf("Run: %v", err)
	}

	acks := h.fake.ackCounts()
	if len(acks) != 1 || acks[first] != 1 {
		t.Errorf("acks %v, want only %s once", acks, first)
	}
	if p := h.fake.pending("acme"); len(p) != 2 || slices.Contains(p, first) {
		t.Errorf("pending %v, want the two events not yet started", p)
	}
	if n := len(h.logs.FilterMessage("processing event").All()); n != 1 {
		t.Errorf("%d events started, want 1", n)
	}
}

func TestRunLeavesAFailedEventAndDoesNotSpin(t *testing.T) {
	h := newHarness(t)
	acme := h.fake.tenant(t, "acme", 3)
	h.start(t, []string{acme}, app.WithProcessor(func(_ context.Context, ev app.Event) error {
		if ev.ID == "evt_acme_01" {
			return errors.New("downstream said no")
		}
		return nil
	}))
	receive(t, h.idle, "loop idle")
	h.stop(t)

	if p := h.fake.pending("acme"); !slices.Equal(p, []string{"evt_acme_01"}) {
		t.Errorf("pending %v, want the failed event only", p)
	}
	// The page was full but not cleared, so the loop paused rather than rereading it at once.
	if got := h.fake.readSizes("acme"); !slices.Equal(got, []int{3}) {
		t.Errorf("page sizes %v, want [3]", got)
	}
}

func TestRunRejectsBadConfigWithoutShowingKeys(t *testing.T) {
	good := newFakeInbox().tenant(t, "acme", 0)
	malformed := good[:len(good)-1] + "x" // checksum no longer matches
	if malformed == good {
		malformed = good[:len(good)-1] + "y"
	}
	base := app.Config{InboxURL: "http://127.0.0.1:1", PollInterval: time.Second, BatchSize: 10, RequestTimeout: time.Second}
	cases := []struct {
		name string
		edit func(*app.Config)
		want string
	}{
		{"malformed-key", func(c *app.Config) { c.APIKeys = []string{good, malformed} }, "key 2 of 2"},
		{"empty-key", func(c *app.Config) { c.APIKeys = []string{good, ""} }, "key 2 of 2"},
		{"duplicate-key", func(c *app.Config) { c.APIKeys = []string{good, good} }, "key 2 repeats key 1"},
		{"no-keys", func(c *app.Config) { c.APIKeys = nil }, "no key"},
		{"batch-0", func(c *app.Config) { c.BatchSize = 0 }, "TRIGGER_BATCH_SIZE"},
		{"batch-101", func(c *app.Config) { c.BatchSize = 101 }, "TRIGGER_BATCH_SIZE"},
		{"relative-url", func(c *app.Config) { c.InboxURL = "/inbox" }, "TRIGGER_INBOX_URL"},
		{"url-with-credentials", func(c *app.Config) { c.InboxURL = "http://u:p@127.0.0.1" }, "TRIGGER_INBOX_URL"},
		{"zero-poll", func(c *app.Config) { c.PollInterval = 0 }, "TRIGGER_POLL_INTERVAL"},
		{"zero-timeout", func(c *app.Config) { c.RequestTimeout = 0 }, "TRIGGER_REQUEST_TIMEOUT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.APIKeys = []string{good}
			tc.edit(&cfg)
			err := app.Run(context.Background(), zap.NewNop(), cfg)
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
	b := app.Backoff{Base: time.Second, Max: 5 * time.Second}
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
