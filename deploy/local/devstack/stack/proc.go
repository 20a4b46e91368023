package stack

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is one supervised child: a service binary or the worker.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // how it ended; read only after done is closed
	// stopping is set once it was asked to stop, so its end is not reported as a failure.
	stopping atomic.Bool
}

// spawn starts bin with env, its output going to its own log file and, when stream is not nil,
// to stream with a name prefix. exited is called once the process has ended, whatever the cause.
func spawn(name, bin string, args, env []string, logDir string, stream io.Writer, exited func(*proc)) (*proc, error) {
	logPath := logDir + "/" + name + ".log"
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	if stream != nil {
		w := io.MultiWriter(f, &prefixWriter{prefix: fmt.Sprintf("%-10s| ", name), out: stream})
		cmd.Stdout, cmd.Stderr = w, w
		// A copy goroutine feeds the writers; this bounds how long Wait waits for it if a
		// grandchild kept the pipe open.
		cmd.WaitDelay = 3 * time.Second
	}
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
		exited(p)
	}()
	return p, nil
}

// stop asks the process group to end (SIGTERM), and kills it after grace. It returns how the
// process ended: nil for a clean exit 0.
func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.stopping.Store(true)
	// The child leads its own process group, so this reaches anything it started too.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within %v and was killed", p.name, grace)
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// prefixWriter writes whole lines, each led by prefix and in one Write to out (a syncWriter),
// so the output of several children can share one terminal without lines breaking up.
type prefixWriter struct {
	prefix string
	out    io.Writer
	buf    []byte
}

// syncWriter makes one Write at a time reach w, so lines written whole stay whole.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := make([]byte, 0, len(w.prefix)+i+1)
		line = append(append(append(line, w.prefix...), w.buf[:i]...), '\n')
		_, err := w.out.Write(line)
		if err != nil {
			return len(b), nil // the terminal going away must not stop the child; the file has it all
		}
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

// tail returns the last n lines of a file, for error messages that point at a failure.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// LogTails renders the last n lines of every log in dir, for a failed test to show.
func LogTails(dir string, n int) string {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "--- %s (last %d lines)\n%s\n", filepath.Base(p), len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}
