package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// childMode makes the test binary, run again as a child, act as one of the children below
// instead of running the tests.
const childMode = "PROC_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childMode); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

// runChild is the child side. Children that must outlive a test's checks sleep rather than
// block on nothing, which the runtime would take for a deadlock.
func runChild(mode string) int {
	switch mode {
	case "exit0":
		fmt.Println("fine")
		return 0
	case "exit3":
		fmt.Fprintln(os.Stderr, "about to fail")
		return 3
	case "env":
		wd, _ := os.Getwd()
		fmt.Printf("value=%s dir=%s\n", os.Getenv("PROC_TEST_VALUE"), wd)
		return 0
	case "serve":
		// Exits cleanly on SIGTERM, as the services do.
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		fmt.Println("ready")
		<-term
		fmt.Println("bye")
		return 0
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	case "family-serve", "family-stubborn":
		return family(strings.TrimPrefix(mode, "family-"))
	case "chatter":
		chatter()
		return 0
	case "no-newline":
		fmt.Print("last words")
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown child mode", mode)
	return 2
}

// family starts a grandchild acting as mode, reports its pid, and then acts as mode itself.
func family(mode string) int {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childMode+"="+mode)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("grandchild %d\n", cmd.Process.Pid)
	return runChild(mode)
}

// chatter writes numbered lines to stdout and stderr in turn, each in several pieces.
func chatter() {
	for i := range chatterLines {
		for _, f := range []*os.File{os.Stdout, os.Stderr} {
			name := map[*os.File]string{os.Stdout: "out", os.Stderr: "err"}[f]
			_, _ = f.WriteString(name + " ")
			_, _ = f.WriteString(strconv.Itoa(i) + " ")
			_, _ = f.WriteString(strings.Repeat("x", i%50) + "\n")
		}
	}
}

const chatterLines = 200

// start runs the test binary as a child acting as mode.
func start(t *testing.T, mode string, o Options) *Process {
	t.Helper()
	o.Path = os.Args[0]
	// The race detector would otherwise hold every clean exit back by a second.
	o.Env = append(o.Env, append(os.Environ(), childMode+"="+mode, "GORACE=atexit_sleep_ms=0")...)
	if o.LogPath == "" {
		o.LogPath = filepath.Join(t.TempDir(), mode+".log")
	}
	p, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	return p
}

// eventually polls cond until it holds, and fails the test if it does not within 15 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func logged(p *Process) string {
	b, _ := os.ReadFile(p.LogPath())
	return string(b)
}

func waitLogged(t *testing.T, p *Process, s string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%q in %s's log", s, p.Name()), func() bool { return strings.Contains(logged(p), s) })
}

func TestExitStatusIsReported(t *testing.T) {
	cases := []struct {
		name, mode string
		code       int
		inLog      string
	}{
		{"exit-0-is-nil", "exit0", 0, "fine"},
		{"exit-3-is-an-exit-error", "exit3", 3, "about to fail"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var exits atomic.Int32
			var seen atomic.Pointer[Process]
			p := start(t, tc.mode, Options{Name: tc.mode, OnExit: func(p *Process) {
				exits.Add(1)
				seen.Store(p)
			}})
			err := p.Wait()
			if tc.code == 0 && err != nil {
				t.Fatalf("Wait = %v, want nil", err)
			}
			var exitErr *exec.ExitError
			if tc.code != 0 && (!errors.As(err, &exitErr) || exitErr.ExitCode() != tc.code) {
				t.Fatalf("Wait = %v, want exit status %d", err, tc.code)
			}
			if p.Err() != err || p.StopRequested() {
				t.Errorf("Err %v, StopRequested %v after an exit on its own", p.Err(), p.StopRequested())
			}
			eventually(t, "OnExit", func() bool { return seen.Load() == p })
			if exits.Load() != 1 {
				t.Errorf("OnExit called %d times", exits.Load())
			}
			if !strings.Contains(p.Tail(5), "    "+tc.inLog+"\n") {
				t.Errorf("tail %q lacks %q", p.Tail(5), tc.inLog)
			}
		})
	}
}

func TestEnvAndDirReachTheChild(t *testing.T) {
	dir := t.TempDir()
	p := start(t, "env", Options{Env: []string{"PROC_TEST_VALUE=seven"}, Dir: dir})
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if want := "value=seven dir=" + dir + "\n"; logged(p) != want {
		t.Errorf("child printed %q, want %q", logged(p), want)
	}
}

func TestStartFailsForAMissingBinary(t *testing.T) {
	_, err := Start(Options{Name: "ghost", Path: filepath.Join(t.TempDir(), "nothing"), LogPath: filepath.Join(t.TempDir(), "g.log")})
	if err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("Start = %v, want an error naming the child", err)
	}
}

func TestStopEndsACooperativeChildCleanly(t *testing.T) {
	stopSeen := make(chan bool, 1)
	p := start(t, "serve", Options{OnExit: func(p *Process) { stopSeen <- p.StopRequested() }})
	waitLogged(t, p, "ready")
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("Stop = %v, want a clean exit", err)
	}
	if !strings.Contains(logged(p), "bye") {
		t.Error("the child did not act on SIGTERM")
	}
	select {
	case requested := <-stopSeen:
		if !requested {
			t.Error("OnExit saw no stop request")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("OnExit was not called")
	}
	if err := p.Stop(time.Second); err != nil {
		t.Errorf("second Stop = %v, want the same clean exit", err)
	}
}

func TestStopKillsAChildThatIgnoresSIGTERM(t *testing.T) {
	p := start(t, "stubborn", Options{})
	waitLogged(t, p, "ready")
	err := p.Stop(300 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Stop = %v, want an error saying it was killed", err)
	}
	if !killedBy(p.Err(), syscall.SIGKILL) {
		t.Errorf("Err = %v, want death by SIGKILL", p.Err())
	}
}

func TestKillEndsAChildAtOnce(t *testing.T) {
	p := start(t, "serve", Options{})
	waitLogged(t, p, "ready")
	p.Kill()
	if !killedBy(p.Err(), syscall.SIGKILL) || !p.StopRequested() {
		t.Fatalf("Err = %v, StopRequested %v; want death by SIGKILL on request", p.Err(), p.StopRequested())
	}
	if strings.Contains(logged(p), "bye") {
		t.Error("the child shut down gracefully; a kill leaves it no chance to")
	}
	if err := p.Signal(syscall.SIGCONT); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after the end = %v, want os.ErrProcessDone", err)
	}
}

func TestSignalsReachTheGrandchildren(t *testing.T) {
	cases := []struct {
		name, mode string
		end        func(*Process)
	}{
		{"stop-terminates-the-group", "family-serve", func(p *Process) { _ = p.Stop(10 * time.Second) }},
		{"stop-kills-a-stubborn-group", "family-stubborn", func(p *Process) { _ = p.Stop(300 * time.Millisecond) }},
		{"kill-kills-the-group", "family-stubborn", (*Process).Kill},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, tc.mode, Options{})
			eventually(t, "both ready", func() bool { return strings.Count(logged(p), "ready") == 2 })
			m := regexp.MustCompile(`grandchild (\d+)`).FindStringSubmatch(logged(p))
			if m == nil {
				t.Fatalf("no grandchild pid in %q", logged(p))
			}
			grandchild, _ := strconv.Atoi(m[1])
			t.Cleanup(func() { _ = syscall.Kill(grandchild, syscall.SIGKILL) })
			tc.end(p)
			eventually(t, "the grandchild to end", func() bool { return !alive(grandchild) })
		})
	}
}

func TestSignalStallsAndResumesTheChild(t *testing.T) {
	p := start(t, "serve", Options{})
	waitLogged(t, p, "ready")
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/stat", p.Pid())); err != nil {
		t.Skip("no /proc to read a process's state from")
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the child to stall", func() bool { return state(p.Pid()) == 'T' })
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the child to resume", func() bool { s := state(p.Pid()); return s != 'T' && s != 0 })
	if p.Exited() {
		t.Fatal("the child ended on SIGSTOP/SIGCONT")
	}
}

func TestStopReachesAStalledChild(t *testing.T) {
	p := start(t, "serve", Options{})
	waitLogged(t, p, "ready")
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// A stalled child holds SIGTERM pending; without the SIGCONT that Stop sends as well it
	// would be killed when the grace ran out.
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("Stop = %v, want the stalled child to exit cleanly", err)
	}
}

func killedBy(err error, sig syscall.Signal) bool {
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return false
	}
	ws, ok := exitErr.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// alive reports whether pid runs; a zombie, which no one may reap here, counts as ended.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	return state(pid) != 'Z'
}

// state is a process's state letter from /proc (R, S, T, Z, ...); 0 where it cannot be read.
func state(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces; the state follows it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}
