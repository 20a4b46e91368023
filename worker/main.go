// Command worker is the mock Zap runner: for each configured tenant key it leases events from
// the inbox with long polls, processes them (a log line each) and acknowledges them in batches,
// until SIGTERM, when it finishes or hands back what it holds and exits.
//
// `worker demo` replays the demo sequence against the three services once and exits non-zero
// if any answer is not the expected one: the chart's `helm test` runs it in the cluster.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/demo"
	"github.com/trigger-api/trigger-api/pkg/startup"
	"github.com/trigger-api/trigger-api/worker/runner"
)

var program = startup.Program{
	Name:  "worker",
	Serve: startup.Cmd[runner.Config]("", "lease, process and settle each configured key's events", serve),
	Commands: []startup.Command{
		startup.Cmd[demo.Config]("demo", "replay the demo against keys-admin, ingest and the inbox, then exit", runDemo),
	},
}

func main() { startup.Main(program) }

func serve(ctx context.Context, log *zap.Logger, cfg runner.Config) error {
	return runner.Run(ctx, log, cfg)
}

// runDemo prints the demo's calls and answers to stdout, where `helm test --logs` shows them.
func runDemo(ctx context.Context, log *zap.Logger, cfg demo.Config) error {
	res, err := demo.Run(ctx, os.Stdout, cfg)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	log.Info("demo passed", zap.String("tenant_a", res.TenantA), zap.String("tenant_b", res.TenantB))
	return nil
}

func run(args []string, stdout io.Writer) error {
	return startup.Exec(context.Background(), program, args, stdout)
}
