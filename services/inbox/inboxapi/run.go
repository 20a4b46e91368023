package inboxapi

import (
	"context"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/backend"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// Run serves the inbox API until ctx ends.
func Run(ctx context.Context, log *zap.Logger, cfg Config) error {
	b, err := backend.Open(ctx, log, cfg.Settings, cfg.AuthConfig)
	if err != nil {
		return err
	}
	tel := telemetry.FromContext(ctx)
	inbox := queue.NewInbox(b.Events, queue.Options{
		Log: log, Tel: tel, Metrics: cfg.MetricsOptions,
		LongPollBackstop: cfg.LongPollBackstop,
	})
	h := NewHandler(Deps{Log: log, Inbox: inbox, Auth: b.Auth, Ready: httpx.ServingUntil(ctx), Tel: tel})
	// Parked long polls answer (200, no events) the moment the process is told to stop, so
	// the server's graceful shutdown does not wait out their 20 s.
	stop := context.AfterFunc(ctx, inbox.Drain)
	defer stop()
	return httpx.Serve(ctx, log, cfg.HTTPAddr, cfg.ServerConfig, h)
}
