// Command chaos is `make chaos`: two replicas each of ingest, inbox and the worker behind the
// dev gateway, DynamoDB Local behind the fault proxy, producers at a steady rate, then, in
// turn, a SIGKILL of one ingest, one inbox and one worker replica, a 10 s DynamoDB stall, and
// 30 s of 5 % 503s and 2 % applied-then-dropped calls. After a drain it prints the ledger,
// writes it to .cache/chaos/ledger.json and exits 1 if an invariant is broken.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/trigger-api/trigger-api/deploy/local/chaos/harness"
	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
)

// errInvariants is the exit of a run that completed and found an invariant broken.
var errInvariants = errors.New("chaos: invariants broken")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errInvariants) {
			fmt.Fprintln(os.Stderr, "chaos:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	short := fs.Bool("short", false, "the short plan `make test` runs (one crash of each kind, ~10 s of DynamoDB faults)")
	out := fs.String("out", "", "where to write the ledger; empty: <repo>/.cache/chaos/ledger.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := stack.FindRoot()
	if err != nil {
		return err
	}
	plan := harness.Full()
	if *short {
		plan = harness.Short()
	}
	if *out == "" {
		*out = filepath.Join(root, ".cache", "chaos", "ledger.json")
	}
	report, err := harness.Run(ctx, plan, harness.Options{Root: root, Progress: stderr})
	if err != nil {
		return err
	}
	report.PrintTable(stdout)
	if err := report.WriteJSON(*out); err != nil {
		return fmt.Errorf("write the ledger: %w", err)
	}
	fmt.Fprintf(stdout, "ledger written to %s\n", *out)
	if report.Failed() {
		return errInvariants
	}
	return nil
}
