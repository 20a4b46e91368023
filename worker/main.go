// Command worker is the mock Zap runner: for each configured tenant key it leases events from
// the inbox with long polls, processes them (a log line each) and acknowledges them in batches,
// until SIGTERM, when it finishes or hands back what it holds and exits.
package main

import (
	"context"
	"io"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/startup"
	"github.com/trigger-api/trigger-api/worker/runner"
)

var program = startup.Program{
	Name:  "worker",
	Serve: startup.Cmd[runner.Config]("", "lease, process and settle each configured key's events", serve),
}

func main() { startup.Main(program) }

func serve(ctx context.Context, log *zap.Logger, cfg runner.Config) error {
	return runner.Run(ctx, log, cfg)
}

func run(args []string, stdout io.Writer) error {
	return startup.Exec(context.Background(), program, args, stdout)
}
