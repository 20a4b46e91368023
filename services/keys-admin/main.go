// Command keys-admin serves the admin API for tenants and their API keys. Run as
// `keys-admin ensure-tables` it creates the DynamoDB tables and exits.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/config"
	"github.com/trigger-api/trigger-api/pkg/logging"
	"github.com/trigger-api/trigger-api/pkg/startup"
	"github.com/trigger-api/trigger-api/services/keys-admin/adminapi"
)

const name = "keys-admin"

func main() {
	// This logger only reports why the program stopped; run builds the service's own logger
	// once the configuration, and with it the level, is known.
	log, err := logging.New(name, "info")
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		log.Error("exiting", zap.Error(err))
		_ = log.Sync()
		os.Exit(1)
	}
	_ = log.Sync()
}

// run is the whole program but for the exit: it returns what main reports.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "ensure-tables" {
		return ensureTables(ctx, args[1:], stdout)
	}
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		return fmt.Errorf("unknown command %q; the only command is ensure-tables", args[0])
	}
	// The serving path shares every binary's start-up, telemetry included.
	err := startup.Run[adminapi.Config](ctx, name, args, stdout, adminapi.Run)
	if slices.ContainsFunc(args, config.IsHelpFlag) {
		fmt.Fprintf(stdout, "\nUsage:\n  %[1]s                 serve the admin API\n  %[1]s ensure-tables   create the DynamoDB tables and exit (settings: %[1]s ensure-tables --help)\n", name)
	}
	return err
}

func ensureTables(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg adminapi.TablesConfig
	help, err := config.Load(&cfg, args, stdout)
	if help || err != nil {
		return err
	}
	log, err := logging.New(name, cfg.Level)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	log.Info("ensuring tables", config.Effective(&cfg)...)
	return adminapi.EnsureTables(ctx, log, cfg)
}
