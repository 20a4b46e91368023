// Package proc supervises child processes for the dev stack, the bench and DynamoDB Local:
// each child leads its own process group, writes to a log file of its own and, optionally, to
// a stream shared with its siblings, and is stopped, killed or signalled as a whole group.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// waitDelay bounds how long the end of a child waits for its output to be copied when a
// grandchild outside the group still holds the pipe.
const waitDelay = 3 * time.Second

// Options describe the child Start runs.
type Options struct {
	Name string // for error messages; empty: the binary's base name
	Path string // the binary
	Args []string
	// Env is the child's whole environment, as in exec.Cmd: nil gives it the supervisor's.
	Env []string
	Dir string // empty: the supervisor's working directory
	// LogPath receives the child's stdout and stderr, truncated at start; empty: discarded,
	// save for what Stream and OnLine see.
	LogPath string
	// Stream, when set, also receives every line of output, whole and led by Prefix.
	Stream *Stream
	Prefix string
	// OnLine, when set, sees every line of output without its newline, with the time the
	// supervisor read it; line is only valid during the call.
	OnLine func(line []byte, read time.Time)
	// OnExit is called once the child has ended, whatever the cause, after Done is closed.
	OnExit func(*Process)
}

// Process is a running or ended child.
type Process struct {
	name    string
	logPath string
	pid     int
	done    chan struct{}
	err     error // how it ended; written before done is closed
	// stopRequested is set once the supervisor asked it to end, so that end is not taken
	// for a failure.
	stopRequested atomic.Bool
}

// Start runs the child described by o.
func Start(o Options) (*Process, error) {
	if o.Path == "" {
		return nil, errors.New("proc: no binary to run")
	}
	if o.Name == "" {
		o.Name = filepath.Base(o.Path)
	}
	var logFile *os.File
	if o.LogPath != "" {
		f, err := os.OpenFile(o.LogPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("%s log: %w", o.Name, err)
		}
		logFile = f
	}
	cmd := exec.Command(o.Path, o.Args...)
	cmd.Env, cmd.Dir = o.Env, o.Dir
	var out *output
	switch {
	case o.Stream != nil || o.OnLine != nil:
		out = newOutput(logFile, o.Stream, o.Prefix, o.OnLine)
		// One writer value for both streams: os/exec then copies them through one pipe in one
		// goroutine, so stdout and stderr lines never interleave mid-line.
		cmd.Stdout, cmd.Stderr = out, out
		cmd.WaitDelay = waitDelay
	case logFile != nil:
		cmd.Stdout, cmd.Stderr = logFile, logFile
	}
	cmd.SysProcAttr = Attr()
	if err := cmd.Start(); err != nil {
		if logFile != nil {
			_ = logFile.Close()
		}
		return nil, fmt.Errorf("start %s: %w", o.Name, err)
	}
	p := &Process{name: o.Name, logPath: o.LogPath, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		if out != nil {
			out.flush()
		}
		if logFile != nil {
			_ = logFile.Close()
		}
		close(p.done)
		if o.OnExit != nil {
			o.OnExit(p)
		}
	}()
	return p, nil
}

// Name is the child's name, as given to Start.
func (p *Process) Name() string { return p.name }

// Pid is the child's process id, which is also its process group's.
func (p *Process) Pid() int { return p.pid }

// LogPath is the file its output goes to; empty if it has none.
func (p *Process) LogPath() string { return p.logPath }

// Done is closed once the child has ended and its output is written.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the child ended: nil for exit status 0, and nil while it runs.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Wait waits for the child to end and returns how it did, as Err.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// StopRequested reports whether Stop or Kill was called, so an end they caused can be told
// from a failure.
func (p *Process) StopRequested() bool { return p.stopRequested.Load() }

// Stop asks the child's whole group to end with SIGTERM and kills the group with SIGKILL if
// the child has not ended within grace. It returns how the child ended: nil for a clean exit,
// an error if it failed or had to be killed. A child that has already ended is left alone.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return p.err
	}
	p.stopRequested.Store(true)
	_ = p.signalGroup(syscall.SIGTERM)
	// A stalled child would otherwise hold the SIGTERM pending until the grace ran out.
	_ = p.signalGroup(syscall.SIGCONT)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		_ = p.signalGroup(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within %v and was killed", p.name, grace)
	}
}

// Kill ends the child's whole group at once with SIGKILL, as a crash would, and waits for
// the child to end. Nothing in the group can act on it: no drain, no last log line.
func (p *Process) Kill() {
	p.stopRequested.Store(true)
	_ = p.signalGroup(syscall.SIGKILL)
	<-p.done
}

// Signal sends sig to the child's whole group, for instance SIGSTOP and SIGCONT to stall it
// and let it go on. It returns os.ErrProcessDone once the child has ended.
func (p *Process) Signal(sig syscall.Signal) error { return p.signalGroup(sig) }

func (p *Process) signalGroup(sig syscall.Signal) error {
	// After the end the id may be reused; the group is only signalled while its leader lives.
	if p.Exited() {
		return os.ErrProcessDone
	}
	return syscall.Kill(-p.pid, sig)
}

// Tail is the last n lines of the child's log, each indented by four spaces, for an error
// message that points at a failure.
func (p *Process) Tail(n int) string {
	var b strings.Builder
	for _, l := range TailFile(p.logPath, n) {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// tailBytes is how much of the end of a file TailFile reads: a log can be large, and an
// error message needs only its last few lines.
const tailBytes = 256 << 10

// TailFile returns the last n lines of the file at path; none if it cannot be read.
func TailFile(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil || n <= 0 {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	from := max(st.Size()-tailBytes, 0)
	data, err := io.ReadAll(io.NewSectionReader(f, from, st.Size()-from))
	if err != nil {
		return nil
	}
	if from > 0 {
		// The first line read is likely only the end of one.
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	text := strings.TrimRight(string(data), "\n")
	if text == "" {
		return nil
	}
	lines := strings.Split(text, "\n")
	return lines[max(len(lines)-n, 0):]
}
