package stack

import (
	"fmt"
	"path/filepath"
	"strings"

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
