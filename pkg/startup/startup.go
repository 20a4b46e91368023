// Package startup is the one start-up every binary shares: its commands, configuration from
// the environment, logger, signals and telemetry, around run functions that return an error.
// main calls Main and is the only place a binary exits.
package startup

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/buildinfo"
	"github.com/trigger-api/trigger-api/pkg/config"
	"github.com/trigger-api/trigger-api/pkg/logging"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// Config is a binary's envconfig struct, which embeds logging.Options.
type Config[C any] interface {
	*C
	LogLevel() string
}

// Program is one binary: what it does when started without a command (Serve) and the other
// commands it takes as its first argument.
type Program struct {
	Name     string
	Serve    Command
	Commands []Command
}

// Command is a run function with the configuration it reads.
type Command struct {
	Name    string // the first argument that selects it; "" for Serve
	Summary string // one line for --help
	run     func(ctx context.Context, name string, args []string, stdout io.Writer) error
}

// Cmd makes a command of run, which gets its configuration C loaded from the environment.
func Cmd[C any, P Config[C]](name, summary string, run func(context.Context, *zap.Logger, C) error) Command {
	return Command{Name: name, Summary: summary, run: func(ctx context.Context, binary string, args []string, stdout io.Writer) error {
		return Run[C, P](ctx, binary, args, stdout, run)
	}}
}

// Main runs prog with the process's arguments until SIGINT or SIGTERM, and is the only place
// a binary exits.
func Main(prog Program) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Exec(ctx, prog, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, prog.Name+":", err)
		os.Exit(1)
	}
}

// Exec runs the command args name (Serve when the first argument is a flag or absent). With
// --help it prints that command's settings, and for Serve the list of commands too; with
// --version, the build and nothing else.
func Exec(ctx context.Context, prog Program, args []string, stdout io.Writer) error {
	if slices.ContainsFunc(args, isVersionFlag) {
		_, err := fmt.Fprintln(stdout, prog.Name, buildinfo.Get())
		return err
	}
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		for _, c := range prog.Commands {
			if c.Name == args[0] {
				return c.run(ctx, prog.Name, args[1:], stdout)
			}
		}
		return fmt.Errorf("unknown command %q; %s", args[0], prog.commandList())
	}
	err := prog.Serve.run(ctx, prog.Name, args, stdout)
	if len(prog.Commands) > 0 && slices.ContainsFunc(args, config.IsHelpFlag) {
		fmt.Fprintf(stdout, "\nUsage:\n  %-28s %s\n", prog.Name, prog.Serve.Summary)
		for _, c := range prog.Commands {
			fmt.Fprintf(stdout, "  %-28s %s (settings: %s %s --help)\n", prog.Name+" "+c.Name, c.Summary, prog.Name, c.Name)
		}
	}
	return err
}

func (p Program) commandList() string {
	if len(p.Commands) == 0 {
		return "this program takes no command"
	}
	names := make([]string, len(p.Commands))
	for i, c := range p.Commands {
		names[i] = c.Name
	}
	return "the commands are " + strings.Join(names, ", ")
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
	bi := buildinfo.Get()
	log.Info("starting", append(buildFields(bi), config.Effective(P(&cfg))...)...)
	tuneGC(log, os.Getenv, cgroupMemoryLimit)
	tel, shutdown, err := telemetry.Setup(ctx, name, bi.Version)
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
	if err := telemetry.RegisterBuildInfo(tel.MeterProvider, bi); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	return run(telemetry.NewContext(ctx, tel), log, cfg)
}

func isVersionFlag(arg string) bool { return arg == "--version" || arg == "-version" }

func buildFields(bi buildinfo.Info) []zap.Field {
	return []zap.Field{
		zap.String("version", bi.Version),
		zap.String("commit", bi.Commit),
		zap.String("build_date", bi.Date),
		zap.String("go_version", bi.GoVersion),
	}
}
