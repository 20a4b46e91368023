// Command worker is the mock Zap runner: for each configured tenant key it leases events from
// the inbox with long polls, processes them (a log line each) and acknowledges them in batches,
// until SIGTERM, when it finishes or hands back what it holds and exits.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/trigger-api/trigger-api/pkg/config"
	"github.com/trigger-api/trigger-api/pkg/logging"
	"github.com/trigger-api/trigger-api/worker/app"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	var cfg app.Config
	if help, err := config.Load(&cfg, args, stdout); help || err != nil {
		return err
	}
	log, err := logging.New("worker", cfg.Level)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Run(ctx, log, cfg)
}
