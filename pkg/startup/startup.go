// Package service is the start-up every binary shares: configuration, logger, signals, and
// for the tenant-facing services the DynamoDB backend behind them.
package startup

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/config"
	"github.com/trigger-api/trigger-api/pkg/logging"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
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
