package inboxapi

import (
	"context"
	"errors"
	"fmt"
	"net"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/backend"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/notify"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// Run serves the inbox API, and the notify port when one is set, until ctx ends.
func Run(ctx context.Context, log *zap.Logger, cfg Config) error {
	b, err := backend.Open(ctx, log, ddb.ComponentInbox, cfg.Settings, cfg.AuthConfig)
	if err != nil {
		return err
	}
	tel := telemetry.FromContext(ctx)
	var inbox *queue.Inbox
	// Without peers this replica is the only one it can tell of what it settles.
	var notices queue.Notifier = queue.NotifierFunc(func(ns ...queue.Notice) { inbox.Notify(ns...) })
	if len(cfg.NotifyPeers) > 0 {
		sender := notify.NewSender(cfg.PeersConfig, log, tel)
		go sender.Run(ctx)
		notices = sender
	}
	inbox = queue.NewInbox(b.Events, queue.Options{
		Log: log, Tel: tel, Metrics: cfg.MetricsOptions, Notifier: notices,
		LongPollBackstop: cfg.LongPollBackstop, WorkBudget: b.Auth.Rate, Paid: b.Auth.Paid,
	})
	h := NewHandler(Deps{Log: log, Inbox: inbox, Auth: b.Auth, Ready: httpx.ServingUntil(ctx), Tel: tel})
	// Parked long polls answer (200, no events) the moment the process is told to stop, so
	// the server's graceful shutdown does not wait out their 20 s.
	stop := context.AfterFunc(ctx, inbox.Drain)
	defer stop()
	if cfg.NotifyAddr == "" {
		return httpx.Serve(ctx, log, cfg.HTTPAddr, cfg.ServerConfig, h)
	}
	ln, err := net.Listen("tcp", cfg.NotifyAddr)
	if err != nil {
		return fmt.Errorf("notify: listen %s: %w", cfg.NotifyAddr, err)
	}
	// Both run until ctx ends; if one fails, the other is stopped too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		err := httpx.ServeListener(ctx, log.With(zap.String("server", "notify")), ln, cfg.ShutdownTimeout, notify.Handler(inbox, tel))
		cancel()
		errc <- err
	}()
	err = httpx.Serve(ctx, log, cfg.HTTPAddr, cfg.ServerConfig, h)
	cancel()
	return errors.Join(err, <-errc)
}
