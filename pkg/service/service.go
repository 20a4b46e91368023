// Package service is the start-up every binary shares: configuration, logger, signals, and
// for the tenant-facing services the DynamoDB backend behind them.
package service

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/config"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/logging"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
)

// Config is a binary's envconfig struct, which embeds logging.Options.
type Config[C any] interface {
	*C
	LogLevel() string
}

// Main runs a binary until SIGINT or SIGTERM and is the only place it exits.
func Main[C any, P Config[C]](name string, run func(context.Context, *zap.Logger, C) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run[C, P](ctx, name, os.Args[1:], os.Stdout, run)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Run loads the configuration (--help prints the settings to stdout), builds the logger at the
// configured level, logs the effective settings with secrets as set/unset, sets up telemetry
// (telemetry.FromContext(ctx) inside run) and calls run. Telemetry is flushed when run returns.
func Run[C any, P Config[C]](ctx context.Context, name string, args []string, stdout io.Writer, run func(context.Context, *zap.Logger, C) error) error {
	var cfg C
	if help, err := config.Load(P(&cfg), args, stdout); help || err != nil {
		return err
	}
	log, err := logging.New(name, P(&cfg).LogLevel())
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	log.Info("starting", config.Effective(P(&cfg))...)
	tel, shutdown, err := telemetry.Setup(ctx, name, version())
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	defer func() {
		// ctx is over by now; the flush gets its own short budget.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("telemetry flush", zap.Error(err))
		}
	}()
	return run(telemetry.NewContext(ctx, tel), log, cfg)
}

// version is the main module's version as the toolchain recorded it.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

// Backend is what ingest and inbox stand on: one DynamoDB client, the event store and the key
// authenticator.
type Backend struct {
	Client *dynamodb.Client
	Tables ddb.Tables
	Events *eventsdb.Store
	Auth   *tenant.Authenticator
}

// OpenBackend builds the backend from the shared settings.
func OpenBackend(ctx context.Context, s ddb.Settings, auth tenant.AuthConfig) (*Backend, error) {
	client, err := ddb.NewClient(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("dynamodb client: %w", err)
	}
	tables := ddb.TableNames(s.TablePrefix)
	return &Backend{
		Client: client,
		Tables: tables,
		Events: eventsdb.New(client, tables),
		Auth:   tenant.NewAuthenticator(tenantdb.New(client, tables), auth, nil),
	}, nil
}

// Ready reports whether every table answers: the readiness probe.
func (b *Backend) Ready(ctx context.Context) error { return ddb.Ping(ctx, b.Client, b.Tables.All()...) }
