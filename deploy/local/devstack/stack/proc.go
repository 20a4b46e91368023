package stack

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/trigger-api/trigger-api/pkg/proc"
)

// streamPrefix leads a component's lines on the shared stream, aligned in one column.
func streamPrefix(name string) string { return fmt.Sprintf("%-10s| ", name) }

// spawn starts one supervised child, named name, logging to <LogDir>/<name>.log and, unless
// Options.StreamOnly leaves component out, to the shared stream too.
func (s *Stack) spawn(name, component, bin string, args, env []string, onExit func(*proc.Process)) (*proc.Process, error) {
	return proc.Start(proc.Options{
		Name: name, Path: bin, Args: args, Env: env,
		LogPath: filepath.Join(s.LogDir, name+".log"),
		Stream:  s.streamFor(component), Prefix: streamPrefix(name),
		OnExit: onExit,
	})
}

// endedErr says that p ended when it should not have, and shows why as far as its log tells.
func endedErr(p *proc.Process, when string) error {
	return fmt.Errorf("%s exited %s (%v); last lines of %s:\n%s", p.Name(), when, p.Err(), p.LogPath(), p.Tail(15))
}

// LogTails renders the last n lines of every log in dir, for a failed test to show.
func LogTails(dir string, n int) string {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var b strings.Builder
	for _, p := range paths {
		lines := proc.TailFile(p, n)
		fmt.Fprintf(&b, "--- %s (last %d lines)\n%s\n", filepath.Base(p), len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}

// spawnHelper starts a helper (Jaeger, Prometheus) and waits for ready. If it does not come up
// it is stopped again and its end is not the stack's failure: the caller may try other ports.
// Once up, its end is, as any child's.
func (s *Stack) spawnHelper(ctx context.Context, name, bin string, args, env []string, ready func(*proc.Process) error) (*proc.Process, error) {
	var adopted atomic.Bool
	p, err := s.spawn(name, name, bin, args, env, func(p *proc.Process) {
		if adopted.Load() {
			s.exited(p)
		}
	})
	if err != nil {
		return nil, err
	}
	if err := ready(p); err != nil {
		_ = p.Stop(stopGrace)
		return nil, err
	}
	adopted.Store(true)
	// An end between the readiness answer and the adoption was not reported above.
	if p.Exited() {
		s.exited(p)
	}
	return p, nil
}

// logAddrIn waits until find reads an address from p's log, naming what it waits for in the
// error when p ends or the start-up deadline passes first.
func logAddrIn(ctx context.Context, p *proc.Process, what string, find func(logPath string) string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if addr := find(p.LogPath()); addr != "" {
			return addr, nil
		}
		select {
		case <-p.Done():
			return "", endedErr(p, "during start-up")
		case <-ctx.Done():
			return "", errors.Join(fmt.Errorf("%s logged no %s; log %s", p.Name(), what, p.LogPath()), ctx.Err())
		case <-tick.C:
		}
	}
}
