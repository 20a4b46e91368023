package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

const (
	// window is how long a peer's first pending notice waits for others to share its request.
	window = 5 * time.Millisecond
	// maxPending bounds what one peer holds unsent (distinct tenant, partition and time);
	// past it new notices for that peer are dropped.
	maxPending = 10_000
	// perRequest keeps each request small.
	perRequest = 500
	// sendTimeout: a notice later than this is worth less than the backstop it stands in for.
	sendTimeout = 2 * time.Second
	// futureGrain merges notices of future visibility this close together; a timer then fires
	// up to this much late.
	futureGrain = 10 * time.Millisecond
	// restMin and restMax bound how long a peer's loop rests after a request failed, doubling
	// while they keep failing. A replica that is down or gone would otherwise cost a dial per
	// window, 200 a second; its notices wait (merged, within maxPending) and go when it answers.
	restMin = 100 * time.Millisecond
	restMax = 500 * time.Millisecond
)

// Sender is a queue.Notifier that posts notices to every inbox replica's notify port.
type Sender struct {
	cfg     PeersConfig
	log     *zap.Logger
	client  *http.Client
	resolve func(ctx context.Context, host string) ([]string, error)
	obs     senderObs
	// maxPending and restMin are the package's constants, changed in tests.
	maxPending int
	restMin    time.Duration

	mu    sync.Mutex
	peers map[string]*peer // by ip:port
}

type senderObs struct {
	sent, dropped metric.Int64Counter
}

// NewSender returns a Sender to cfg.NotifyPeers; Run resolves them and sends until its ctx ends.
func NewSender(cfg PeersConfig, log *zap.Logger, tel *telemetry.Telemetry) *Sender {
	if tel == nil {
		tel = telemetry.Nop()
	}
	m := tel.MeterProvider.Meter(telemetry.ScopeName)
	sent, _ := m.Int64Counter("trigger.notify.sent", metric.WithDescription("events announced to an inbox replica, counted once per replica"), metric.WithUnit("{event}"))
	dropped, _ := m.Int64Counter("trigger.notify.dropped", metric.WithDescription("events whose announcement an inbox replica never got: its queue was full or its request failed"), metric.WithUnit("{event}"))
	return &Sender{
		cfg: cfg, log: log,
		client:     &http.Client{Timeout: sendTimeout},
		resolve:    net.DefaultResolver.LookupHost,
		obs:        senderObs{sent: sent, dropped: dropped},
		peers:      map[string]*peer{},
		maxPending: maxPending,
		restMin:    restMin,
	}
}

// Notify queues ns for every known peer without waiting.
func (s *Sender) Notify(ns ...queue.Notice) {
	if len(ns) == 0 {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.peers {
		if dropped := p.add(ns, now, s.maxPending); dropped > 0 {
			s.obs.dropped.Add(context.Background(), int64(dropped))
		}
	}
}

// Run keeps the peer set current and sends until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	if len(s.cfg.NotifyPeers) == 0 {
		// Nothing fails without peers; events only reach waiting long polls up to a backstop
		// late, which looks like a slow system rather than a missing setting.
		s.log.Warn("TRIGGER_NOTIFY_PEERS is empty: no inbox replica hears of new events, so long polls waiting for them wake only at their backstop (TRIGGER_LONG_POLL_BACKSTOP); set it to the inbox replicas' notify ports")
	}
	interval := s.cfg.NotifyResolveInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	s.refresh(ctx)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for addr, p := range s.peers {
				p.cancel()
				delete(s.peers, addr)
			}
			s.mu.Unlock()
			return
		case <-tick.C:
			s.refresh(ctx)
		}
	}
}

// Peers are the addresses notices go to now, sorted.
func (s *Sender) Peers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.peers))
	for addr := range s.peers {
		out = append(out, addr)
	}
	slices.Sort(out)
	return out
}

// refresh resolves the configured peers and starts or stops senders to match. A name that
// does not resolve keeps the addresses it had: a DNS hiccup must not silence every replica.
func (s *Sender) refresh(ctx context.Context) {
	want := map[string]bool{}
	s.mu.Lock()
	current := make(map[string]bool, len(s.peers))
	for addr := range s.peers {
		current[addr] = true
	}
	s.mu.Unlock()
	for _, entry := range s.cfg.NotifyPeers {
		addrs, err := s.lookup(ctx, entry)
		if err != nil {
			s.log.Warn("notify peers: resolve failed; keeping the last addresses", zap.String("peer", entry), zap.Error(err))
			for addr := range current {
				want[addr] = true
			}
			continue
		}
		for _, a := range addrs {
			want[a] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for addr, p := range s.peers {
		if !want[addr] {
			p.cancel()
			delete(s.peers, addr)
		}
	}
	for addr := range want {
		if s.peers[addr] == nil {
			s.peers[addr] = s.startPeer(ctx, addr)
		}
	}
}

func (s *Sender) lookup(ctx context.Context, entry string) ([]string, error) {
	host, port, err := net.SplitHostPort(entry)
	if err != nil {
		return nil, err
	}
	if net.ParseIP(host) != nil {
		return []string{entry}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := s.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = net.JoinHostPort(ip, port)
	}
	return out, nil
}

// peer is one inbox replica: its pending notices, coalesced, and the loop that sends them.
type peer struct {
	url    string
	cancel context.CancelFunc
	kick   chan struct{}
	// resting is set while the loop waits out a failure; tests read it.
	resting atomic.Bool

	mu      sync.Mutex
	pending map[pendingKey]*queue.Notice
}

// pendingKey merges notices: of one tenant's partition, all visible already (zero at), or
// visible at the same futureGrain.
type pendingKey struct {
	tenantID  string
	partition int
	at        int64
}

func (s *Sender) startPeer(ctx context.Context, addr string) *peer {
	ctx, cancel := context.WithCancel(ctx)
	p := &peer{url: "http://" + addr + Path, cancel: cancel, kick: make(chan struct{}, 1), pending: map[pendingKey]*queue.Notice{}}
	go s.loop(ctx, p)
	return p
}

// add merges ns into the pending notices and returns how many it had to drop.
func (p *peer) add(ns []queue.Notice, now time.Time, limit int) (dropped int) {
	p.mu.Lock()
	for _, n := range ns {
		k := pendingKey{tenantID: n.TenantID, partition: n.Partition}
		if n.VisibleAt.After(now) {
			k.at = n.VisibleAt.Add(futureGrain - 1).Truncate(futureGrain).UnixMilli()
		}
		if have := p.pending[k]; have != nil {
			have.Count += n.Count
			if n.VisibleAt.After(have.VisibleAt) {
				have.VisibleAt = n.VisibleAt
			}
			continue
		}
		if len(p.pending) >= limit {
			dropped += n.Count
			continue
		}
		n := n
		if k.at != 0 {
			n.VisibleAt = time.UnixMilli(k.at)
		}
		p.pending[k] = &n
	}
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return dropped
}

func (p *peer) take() []queue.Notice {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]queue.Notice, 0, len(p.pending))
	for _, n := range p.pending {
		out = append(out, *n)
	}
	clear(p.pending)
	return out
}

func (s *Sender) loop(ctx context.Context, p *peer) {
	wait := time.NewTimer(window)
	wait.Stop()
	var rest time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		wait.Reset(window)
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
		ns := p.take()
		failed := false
		for chunk := range slices.Chunk(ns, perRequest) {
			count := 0
			for _, n := range chunk {
				count += n.Count
			}
			if err := s.post(ctx, p.url, chunk); err != nil {
				s.obs.dropped.Add(ctx, int64(count))
				s.log.Debug("notify failed", zap.String("peer", p.url), zap.Error(err))
				failed = true
				continue
			}
			s.obs.sent.Add(ctx, int64(count))
		}
		if !failed {
			rest = 0
			continue
		}
		rest = min(max(2*rest, s.restMin), max(restMax, s.restMin))
		p.resting.Store(true)
		wait.Reset(rest)
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
		p.resting.Store(false)
	}
}

func (s *Sender) post(ctx context.Context, url string, ns []queue.Notice) error {
	msg := message{Notices: make([]wireNotice, len(ns))}
	for i, n := range ns {
		msg.Notices[i] = toWire(n)
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	// Read to the end, so the connection is kept for the next request.
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusNoContent {
		return fmt.Errorf("notify %s: %s", url, res.Status)
	}
	return nil
}
