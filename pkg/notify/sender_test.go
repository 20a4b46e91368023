package notify_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trigger-api/trigger-api/pkg/notify"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// sink records what a notify port received.
type sink struct {
	mu       sync.Mutex
	notices  []queue.Notice
	requests int
}

func (s *sink) Notify(ns ...queue.Notice) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notices = append(s.notices, ns...)
	s.requests++
}

func (s *sink) count(tenantID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, x := range s.notices {
		if x.TenantID == tenantID {
			n += x.Count
		}
	}
	return n
}

// port serves a notify port on addr ("127.0.0.1:0" for any) into a fresh sink.
func port(t *testing.T, addr string) (*sink, string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	srv := httptest.NewUnstartedServer(notify.Handler(s, nil))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return s, ln.Addr().String()
}

func run(t *testing.T, s *notify.Sender) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Notices sent in a burst reach the peer merged into a few requests, counts intact; a future
// visibility keeps its time.
func TestSenderCoalescesIntoFewRequests(t *testing.T) {
	got, addr := port(t, "127.0.0.1:0")
	s := notify.NewSender(notify.PeersConfig{NotifyPeers: []string{addr}}, zap.NewNop(), nil)
	run(t, s)
	waitFor(t, "the peer", func() bool { return len(s.Peers()) == 1 })
	now := time.Now()
	for range 100 {
		s.Notify(queue.Notice{TenantID: "acme", Count: 1, VisibleAt: now})
	}
	later := now.Add(time.Minute)
	s.Notify(queue.Notice{TenantID: "globex", Partition: 2, Count: 3, VisibleAt: later})
	waitFor(t, "every notice", func() bool { return got.count("acme") == 100 && got.count("globex") == 3 })
	got.mu.Lock()
	defer got.mu.Unlock()
	if got.requests >= 10 {
		t.Errorf("%d requests for one burst, want a few", got.requests)
	}
	entries := 0
	for _, n := range got.notices {
		if n.TenantID == "acme" {
			entries++
		}
		if n.TenantID == "globex" && (n.Partition != 2 || n.VisibleAt.Before(later) || n.VisibleAt.After(later.Add(10*time.Millisecond))) {
			t.Errorf("future notice arrived as %+v, want partition 2 visible at %v", n, later)
		}
	}
	if entries > got.requests {
		t.Errorf("%d notices of acme in %d requests, want them merged into one per request", entries, got.requests)
	}
}

// A peer list entry with a host name follows what the name resolves to; a failed lookup keeps
// the last addresses.
func TestSenderFollowsResolvedPeers(t *testing.T) {
	first, addr := port(t, "127.0.0.1:0")
	_, p, _ := net.SplitHostPort(addr)
	second, _ := port(t, "127.0.0.2:"+p)
	var mu sync.Mutex
	ips, fail := []string{"127.0.0.1"}, false
	s := notify.NewSender(notify.PeersConfig{NotifyPeers: []string{"inbox-notify:" + p}, NotifyResolveInterval: 10 * time.Millisecond}, zap.NewNop(), nil)
	s.SetResolver(func(_ context.Context, host string) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		if host != "inbox-notify" || fail {
			return nil, errors.New("no such host")
		}
		return ips, nil
	})
	run(t, s)
	waitFor(t, "the first peer", func() bool { return len(s.Peers()) == 1 })
	s.Notify(queue.Notice{TenantID: "acme", Count: 1, VisibleAt: time.Now()})
	waitFor(t, "the first peer's notice", func() bool { return first.count("acme") == 1 })

	mu.Lock()
	ips = []string{"127.0.0.1", "127.0.0.2"}
	mu.Unlock()
	waitFor(t, "the second peer", func() bool { return len(s.Peers()) == 2 })
	mu.Lock()
	fail = true
	mu.Unlock()
	s.Notify(queue.Notice{TenantID: "acme", Count: 1, VisibleAt: time.Now()})
	waitFor(t, "both peers' notices", func() bool { return first.count("acme") == 2 && second.count("acme") == 1 })
	if got := s.Peers(); len(got) != 2 {
		t.Fatalf("peers after a failed lookup: %v, want both kept", got)
	}
}

// A peer that does not keep up gets what fits in its queue; the rest is dropped, and the
// caller never waits for it.
func TestSenderDropsWhatAStuckPeerCannotTake(t *testing.T) {
	tel, err := telemetry.New(noop.NewTracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	got := &sink{}
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(held); <-release })
		notify.Handler(got, tel).ServeHTTP(w, r)
	}))
	t.Cleanup(stuck.Close)
	s := notify.NewSender(notify.PeersConfig{NotifyPeers: []string{stuck.Listener.Addr().String()}}, zap.NewNop(), tel)
	s.SetMaxPending(2)
	run(t, s)
	waitFor(t, "the peer", func() bool { return len(s.Peers()) == 1 })
	s.Notify(queue.Notice{TenantID: "first", Count: 1, VisibleAt: time.Now()})
	// The first request is in flight and held; what follows queues behind it.
	<-held
	start := time.Now()
	for i := range 5 {
		s.Notify(queue.Notice{TenantID: "t" + strconv.Itoa(i), Count: 1, VisibleAt: time.Now()})
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Notify waited %v for a stuck peer", took)
	}
	close(release)
	waitFor(t, "the queued notices", func() bool { return got.count("first") == 1 && got.count("t0")+got.count("t1") == 2 })
	for _, dropped := range []string{"t2", "t3", "t4"} {
		if got.count(dropped) != 0 {
			t.Errorf("notice for %s delivered past the queue's bound", dropped)
		}
	}
	// What the dashboard's notification panels read: three events announced and received,
	// three dropped. The sender counts a notice as sent once the peer's answer is back, which
	// can be after the peer has counted it received.
	for _, name := range []string{"trigger_notify_sent_total", "trigger_notify_received_total", "trigger_notify_dropped_total"} {
		three := regexp.MustCompile(`(?m)^` + name + `\{[^}]*\} 3$`)
		waitFor(t, name+" at 3", func() bool {
			w := httptest.NewRecorder()
			tel.Metrics.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
			return three.MatchString(w.Body.String())
		})
	}
}

// failingPeer answers 503 while failing is set, and counts those answers.
func failingPeer(t *testing.T, got *sink, tel *telemetry.Telemetry) (addr string, failing *atomic.Bool, requests *atomic.Int32) {
	failing, requests = &atomic.Bool{}, &atomic.Int32{}
	failing.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			requests.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		notify.Handler(got, tel).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), failing, requests
}

// A replica that fails costs one request per rest, not one per coalescing window.
func TestSenderRestsAfterAFailedRequest(t *testing.T) {
	tel, err := telemetry.New(noop.NewTracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	addr, _, requests := failingPeer(t, &sink{}, tel)
	// A healthy peer beside it shows when the notices have had time to go out.
	healthy := &sink{}
	good := httptest.NewServer(notify.Handler(healthy, tel))
	t.Cleanup(good.Close)
	s := notify.NewSender(notify.PeersConfig{NotifyPeers: []string{addr, good.Listener.Addr().String()}}, zap.NewNop(), tel)
	s.SetRest(time.Hour)
	run(t, s)
	waitFor(t, "the peers", func() bool { return len(s.Peers()) == 2 })
	s.Notify(queue.Notice{TenantID: "first", Count: 1, VisibleAt: time.Now()})
	waitFor(t, "the rest after the failed request", func() bool { return s.Resting(addr) })
	for i := range 20 {
		s.Notify(queue.Notice{TenantID: "t" + strconv.Itoa(i), Count: 1, VisibleAt: time.Now()})
		waitFor(t, "the healthy peer's notice", func() bool { return healthy.count("t"+strconv.Itoa(i)) == 1 })
	}
	if n := requests.Load(); n != 1 || !s.Resting(addr) {
		t.Fatalf("%d requests while resting (resting %v), want the failed one only", n, s.Resting(addr))
	}
}

// Once the replica answers again, what waited during the rest reaches it.
func TestSenderSendsWhatWaitedOnceThePeerAnswers(t *testing.T) {
	tel, err := telemetry.New(noop.NewTracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	got := &sink{}
	addr, failing, failed := failingPeer(t, got, tel)
	s := notify.NewSender(notify.PeersConfig{NotifyPeers: []string{addr}}, zap.NewNop(), tel)
	s.SetRest(300 * time.Millisecond)
	run(t, s)
	waitFor(t, "the peer", func() bool { return len(s.Peers()) == 1 })
	s.Notify(queue.Notice{TenantID: "lost", Count: 1, VisibleAt: time.Now()})
	waitFor(t, "the failed request", func() bool { return failed.Load() == 1 })
	failing.Store(false)
	// Queued while the loop rests (unless this goroutine was held up longer than the rest):
	// it goes when the rest ends.
	s.Notify(queue.Notice{TenantID: "later", Count: 1, VisibleAt: time.Now()})
	waitFor(t, "the notice sent after the rest", func() bool { return got.count("later") == 1 })
	if got.count("lost") != 0 {
		t.Error("the notice of the failed request arrived: it was counted as dropped")
	}
}

// The notify port takes only POST /notify, and skips notices that cannot be real.
func TestHandlerRefusesWhatIsNotANotice(t *testing.T) {
	got, addr := port(t, "127.0.0.1:0")
	base := "http://" + addr
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/notify", "", http.StatusMethodNotAllowed},
		{"POST", "/inbox/pull", "{}", http.StatusNotFound},
		{"POST", "/notify", "not json", http.StatusBadRequest},
		{"POST", "/notify", `{"notices":[{"tenant_id":"","count":1},{"tenant_id":"acme","count":0},{"tenant_id":"acme","count":2,"visible_at":1}]}`, http.StatusNoContent},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("%s %s %s: %d, want %d", tc.method, tc.path, tc.body, res.StatusCode, tc.status)
		}
	}
	if n := got.count("acme"); n != 2 || len(got.notices) != 1 {
		t.Fatalf("received %+v, want only the one real notice", got.notices)
	}
}

func TestSenderWithoutPeersWarnsAtStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		peers []string
		warns int
	}{
		{"no-peers-warns", nil, 1},
		{"peers-no-warning", []string{"127.0.0.1:1"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			s := notify.NewSender(notify.PeersConfig{NotifyPeers: tc.peers}, zap.New(core), nil)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			s.Run(ctx)
			if got := logs.FilterMessageSnippet("TRIGGER_NOTIFY_PEERS is empty").Len(); got != tc.warns {
				t.Fatalf("warnings about missing peers: %d, want %d (all: %v)", got, tc.warns, logs.All())
			}
		})
	}
}
