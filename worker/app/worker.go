// Package app is the worker, the mock Zap runner: one loop per tenant key reads the tenant's
// inbox, processes each event and acknowledges it.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/config"
)

// Processor acts on one event. Returning an error leaves the event unacknowledged, so a later
// inbox read offers it again. The context is not cancelled by shutdown: an event in hand is
// finished, not abandoned halfway.
type Processor func(ctx context.Context, ev Event) error

// Option changes how Run works; tests use them to observe and steer the loops.
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

// WithProcessor runs p for each event after its processing log line and before its ack.
func WithProcessor(p Processor) Option { return func(o *options) { o.process = p } }

// WithPauser replaces the timer every pause goes through.
func WithPauser(p Pauser) Option { return func(o *options) { o.pause = p } }

// WithBackoff replaces the default backoffs for transient failures and refusals.
func WithBackoff(retry, refused Backoff) Option {
	return func(o *options) { o.retryBackoff, o.refusedBackoff = retry, refused }
}

// Run starts one loop per key and returns when ctx ends and every loop has finished the event
// it had in hand. It returns an error only when it cannot start.
func Run(ctx context.Context, log *zap.Logger, cfg Config, opts ...Option) error {
	// Validated before it is logged: a URL carrying credentials is refused, never printed.
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log.Info("starting", config.Effective(&cfg)...)
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
	api, err := newInboxAPI(o.client, cfg.InboxURL)
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	for _, k := range keys {
		l := &loop{
			key: k.String(),
			api: api,
			cfg: cfg,
			o:   &o,
			// The prefix is the part of a key that may be shown; it tells two keys of one
			// tenant apart in the logs.
			log:    log.With(zap.String("tenant_id", k.TenantID), zap.String("key_prefix", k.Prefix())),
			tenant: k.TenantID,
		}
		wg.Go(func() { l.run(ctx) })
	}
	log.Info("running", zap.Int("loops", len(keys)))
	wg.Wait()
	log.Info("stopped")
	return nil
}

// parseKeys checks every key's format and checksum up front, so a typo fails the start-up
// rather than a loop at its first call. Errors name the key's position, never the key.
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

// loop serves one key. It holds at most one event at a time.
type loop struct {
	key    string
	tenant string
	api    *inboxAPI
	cfg    Config
	o      *options
	log    *zap.Logger

	readFailures int // consecutive failed inbox reads
	refusals     int // consecutive refusals, of reads or acks
}

func (l *loop) run(ctx context.Context) {
	for ctx.Err() == nil {
		page, err := l.read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if l.failed(ctx, "read inbox", err, &l.readFailures) != nil {
				return
			}
			continue
		}
		l.readFailures = 0
		allDone, err := l.handle(ctx, page)
		if err != nil {
			if l.failed(ctx, "ack", err, nil) != nil {
				return
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		// A full page that was cleared means more may be waiting right now. Anything less,
		// or an event left behind, means the next read would see the same: wait.
		if len(page) == l.cfg.BatchSize && allDone {
			continue
		}
		if l.o.pause(ctx, PauseIdle, l.cfg.PollInterval) != nil {
			return
		}
	}
}

func (l *loop) read(ctx context.Context) ([]inboxEventDTO, error) {
	rctx, cancel := context.WithTimeout(ctx, l.cfg.RequestTimeout)
	defer cancel()
	page, err := l.api.read(rctx, l.key, l.cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	l.refusals = 0
	l.log.Debug("inbox read", zap.Int("events", len(page)))
	return page, nil
}

// failed logs err and pauses as its kind asks: a growing pause for transient failures, a long
// one for refusals. counter counts consecutive transient failures of the caller's kind.
func (l *loop) failed(ctx context.Context, op string, err error, counter *int) error {
	kind := classify(err)
	if kind == transient && counter != nil {
		*counter++
		d := max(l.o.retryBackoff.Delay(*counter), retryAfter(err))
		l.log.Warn(op+" failed; retrying", zap.Error(err), zap.Int("attempt", *counter), zap.Duration("pause", d))
		return l.o.pause(ctx, PauseRetry, d)
	}
	// A 404 from GET /inbox means the URL is wrong, which is a refusal like any other 4xx.
	l.refusals++
	d := max(l.o.refusedBackoff.Delay(l.refusals), retryAfter(err))
	l.log.Error(op+" refused; check the key and TRIGGER_INBOX_URL", zap.Error(err), zap.Duration("pause", d))
	return l.o.pause(ctx, PauseRefused, d)
}

// handle processes and acknowledges a page, one event at a time. Once ctx ends it starts no
// new event. allDone is false when an event was left in the inbox; err is a refusal of the key.
func (l *loop) handle(ctx context.Context, page []inboxEventDTO) (allDone bool, err error) {
	allDone = true
	for _, dto := range page {
		if ctx.Err() != nil {
			return false, nil
		}
		if dto.EventID == "" {
			l.log.Warn("inbox entry without event_id skipped")
			allDone = false
			continue
		}
		done, err := l.deliver(ctx, dto.toEvent(l.tenant))
		if err != nil {
			return false, err
		}
		allDone = allDone && done
	}
	return allDone, nil
}

// deliver is the life of one event in hand: processed, then acknowledged, even if shutdown
// begins in between.
func (l *loop) deliver(ctx context.Context, ev Event) (done bool, err error) {
	log := l.log.With(zap.String("event_id", ev.ID), zap.String("event_type", ev.Type))
	log.Info("processing event", zap.Int("delivery_count", ev.DeliveryCount), zap.Int("payload_bytes", len(ev.Payload)))
	if l.o.process != nil {
		if err := l.o.process(context.WithoutCancel(ctx), ev); err != nil {
			log.Warn("processing failed; the event stays in the inbox", zap.Error(err))
			return false, nil
		}
	}
	return l.ack(ctx, log, ev.ID)
}

// ack runs on a context detached from shutdown, so the ack of an event already processed is
// still sent after SIGTERM; REQUEST_TIMEOUT bounds each attempt. Transient failures are
// retried until shutdown, after which one more attempt is made and then the event is left
// for redelivery.
func (l *loop) ack(ctx context.Context, log *zap.Logger, eventID string) (done bool, err error) {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.RequestTimeout)
		err := l.api.acknowledge(actx, l.key, eventID)
		cancel()
		if err == nil {
			l.refusals = 0
			log.Debug("event acknowledged")
			return true, nil
		}
		switch classify(err) {
		case gone:
			log.Warn("ack: event not found for this tenant; skipped", zap.Error(err))
			return true, nil
		case refused:
			var se *StatusError
			if errors.As(err, &se) && se.Status != http.StatusUnauthorized && se.Status != http.StatusForbidden {
				log.Error("ack rejected; the event stays in the inbox", zap.Error(err))
				return false, nil
			}
			return false, err
		}
		if ctx.Err() != nil {
			log.Warn("ack not confirmed before shutdown; the event stays in the inbox", zap.Error(err))
			return false, nil
		}
		d := max(l.o.retryBackoff.Delay(attempt), retryAfter(err))
		log.Warn("ack failed; retrying", zap.Error(err), zap.Int("attempt", attempt), zap.Duration("pause", d))
		// A pause cut short by shutdown still leads to the one last attempt above.
		_ = l.o.pause(ctx, PauseRetry, d)
	}
}
