// Package runner is the worker, the mock Zap runner: for each tenant key it leases events from
// the inbox with long polls, processes several at once, keeps their leases alive while they run
// and settles each one: a batched ack when it succeeds, a delayed nack when it fails. It speaks
// to the inbox through the API's Go client, pkg/client.
package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/client"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// Causes of a processor's context ending; context.Cause tells them apart.
var (
	// ErrLeaseLost: the inbox no longer holds the event for this worker (its lease expired and
	// may now be someone else's), so finishing it is wasted work and it will not be acknowledged.
	ErrLeaseLost = errors.New("lease lost")
	// ErrShutdownTimeout: the worker is stopping and TRIGGER_SHUTDOWN_TIMEOUT has passed; the
	// event has been handed back to the inbox.
	ErrShutdownTimeout = errors.New("shutdown timeout")
)

// Processor acts on one event. Returning nil acknowledges it; an error nacks it, so the inbox
// offers it again after TRIGGER_NACK_DELAY. The context is not cancelled by SIGTERM, since an
// event in hand is finished rather than abandoned halfway; it ends only when the event's lease
// is lost or the shutdown timeout passes (see ErrLeaseLost, ErrShutdownTimeout).
type Processor func(ctx context.Context, ev Event) error

// Option changes how Run works; tests use them to observe and steer the consumers.
type Option func(*options)

type options struct {
	client         *http.Client
	process        Processor
	pause          Pauser
	retryBackoff   Backoff
	refusedBackoff Backoff
}

// WithHTTPClient replaces the client built from the configuration.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithProcessor runs p for each event after its processing log line and before it is settled.
func WithProcessor(p Processor) Option { return func(o *options) { o.process = p } }

// WithPauser replaces the timer every pause between pulls and between ack retries goes through.
func WithPauser(p Pauser) Option { return func(o *options) { o.pause = p } }

// WithBackoff replaces the default backoffs for transient failures and refusals.
func WithBackoff(retry, refused Backoff) Option {
	return func(o *options) { o.retryBackoff, o.refusedBackoff = retry, refused }
}

// Run starts one consumer per key. When ctx ends it stops pulling at once, lets the events in
// hand finish for up to ShutdownTimeout (nacking those still running then), sends the pending
// acks and returns. It returns an error only when it cannot start.
func Run(ctx context.Context, log *zap.Logger, cfg Config, opts ...Option) error {
	// Validated before it is logged: a URL carrying credentials is refused, never printed.
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	keys, err := parseKeys(cfg.APIKeys)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	o := options{pause: sleep, retryBackoff: DefaultRetryBackoff, refusedBackoff: DefaultRefusedBackoff}
	for _, opt := range opts {
		opt(&o)
	}
	if o.client == nil {
		o.client = NewHTTPClient(cfg, len(keys))
	}
	tel := telemetry.FromContext(ctx)
	consumers, err := newConsumers(keys, cfg, &o, tel, log)
	if err != nil {
		return err
	}
	if cfg.MetricsAddr != "" {
		stop, err := serveMetrics(cfg.MetricsAddr, tel, log)
		if err != nil {
			return err
		}
		// Deferred first, so it runs last: the final acks are counted before scraping stops.
		defer stop()
	}

	// settle outlives ctx by ShutdownTimeout: it bounds the work that continues after SIGTERM
	// (processing, lease extensions, ack retries).
	settle, cancelSettle := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelSettle(nil)
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
		case <-finished:
			return
		}
		t := time.NewTimer(cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelSettle(ErrShutdownTimeout)
		case <-finished:
		}
	}()

	var wg sync.WaitGroup
	for _, c := range consumers {
		wg.Go(func() { c.run(ctx, settle) })
	}
	log.Info("running", zap.Int("consumers", len(consumers)))
	wg.Wait()
	log.Info("stopped")
	return nil
}

// newConsumers builds one consumer per key, each with an API client of its own key sharing
// one traced HTTP client. The clients never retry by themselves: the consumers retry with
// their own backoff and pauser, one settle span per attempt, and decide when to pull again.
func newConsumers(keys []apikey.Key, cfg Config, o *options, tel *telemetry.Telemetry, log *zap.Logger) ([]*consumer, error) {
	httpc := tracedClient(o.client, tel)
	out := make([]*consumer, 0, len(keys))
	for _, k := range keys {
		inbox, err := client.New(cfg.InboxURL, k.String(),
			client.WithHTTPClient(httpc), client.WithUserAgent("trigger-worker"), client.WithRetries(0))
		if err != nil {
			return nil, fmt.Errorf("inbox client: %w", err)
		}
		out = append(out, newConsumer(k.TenantID, inbox, cfg, o, newObs(tel, cfg.MetricsOptions, k.TenantID),
			// The prefix is the part of a key that may be shown; it tells two keys of one
			// tenant apart in the logs.
			log.With(zap.String("tenant_id", k.TenantID), zap.String("key_prefix", k.Prefix()))))
	}
	return out, nil
}

// serveMetrics serves GET /metrics and GET /livez on addr until stop is called.
func serveMetrics(addr string, tel *telemetry.Telemetry, log *zap.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("TRIGGER_METRICS_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.Metrics)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", zap.Error(err))
		}
	}()
	log.Info("serving metrics", zap.String("addr", ln.Addr().String()))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// parseKeys checks every key's format and checksum up front, so a typo fails the start-up
// rather than a consumer at its first call. Errors name the key's position, never the key.
func parseKeys(raw []string) ([]apikey.Key, error) {
	var keys []apikey.Key
	seen := map[string]int{}
	for i, r := range raw {
		k, err := apikey.Parse(strings.TrimSpace(r))
		if err != nil {
			return nil, fmt.Errorf("TRIGGER_API_KEYS: key %d of %d: %w", i+1, len(raw), err)
		}
		if j, dup := seen[k.String()]; dup {
			return nil, fmt.Errorf("TRIGGER_API_KEYS: key %d repeats key %d", i+1, j)
		}
		seen[k.String()] = i + 1
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("TRIGGER_API_KEYS: no key given")
	}
	return keys, nil
}
