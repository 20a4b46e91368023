// Command ingest serves POST /events and GET /events/{id}.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/trigger-api/trigger-api/pkg/config"
	"github.com/trigger-api/trigger-api/pkg/logging"
	"github.com/trigger-api/trigger-api/services/ingest/app"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var cfg app.Config
	if help, err := config.Load(&cfg, args, os.Stdout); help || err != nil {
		return err
	}
	log, err := logging.New("ingest", cfg.Level)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Run(ctx, log, cfg)
}
