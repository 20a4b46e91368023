package ingestapi

import (
	"context"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/backend"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/notify"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// Run serves the ingest API until ctx ends.
func Run(ctx context.Context, log *zap.Logger, cfg Config) error {
	b, err := backend.Open(ctx, log, ddb.ComponentIngest, cfg.Settings, cfg.AuthConfig)
	if err != nil {
		return err
	}
	tel := telemetry.FromContext(ctx)
	sender := notify.NewSender(cfg.PeersConfig, log, tel)
	go sender.Run(ctx)
	publisher := queue.NewPublisher(b.Events, queue.Options{Log: log, Tel: tel, Metrics: cfg.MetricsOptions, Notifier: sender})
	h := NewHandler(Deps{Log: log, Publisher: publisher, Auth: b.Auth, Ready: httpx.ServingUntil(ctx), Tel: tel})
	return httpx.Serve(ctx, log, cfg.HTTPAddr, cfg.ServerConfig, h)
}
