// Package localimage builds the project's images where no registry can be reached: a dockerd of
// the caller's own, and the Dockerfile's two bases made from this machine's Go toolchain, busybox
// and CA certificates. The image tests and the cluster tests share it.
package localimage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Engine is the Docker engine the tests build with: a dockerd of their own, with its data
// (images, BuildKit's cache mounts) under .cache/images/docker so a second run is warm, and its
// socket, pidfile and runtime state in a temporary directory, so it never meets a daemon the
// machine already runs. TRIGGER_TEST_DOCKER_HOST names an engine to use instead (where the
// tests cannot run dockerd as root).
type Engine struct {
	Host    string // DOCKER_HOST
	cmd     *exec.Cmd
	exited  chan error
	runDir  string
	logPath string
	unlock  func()
}

func StartEngine(cacheDir string) (*Engine, error) {
	if h := os.Getenv("TRIGGER_TEST_DOCKER_HOST"); h != "" {
		e := &Engine{Host: h, unlock: func() {}}
		return e, e.waitReady(30 * time.Second)
	}
	if _, err := exec.LookPath("dockerd"); err != nil {
		return nil, fmt.Errorf("no dockerd to start (Debian: apt-get install docker.io; .ci/run does): %w", err)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("dockerd needs root; run as root or set TRIGGER_TEST_DOCKER_HOST to an engine")
	}
	dataRoot := filepath.Join(cacheDir, "docker")
	if err := os.MkdirAll(dataRoot, 0o700); err != nil {
		return nil, err
	}
	// Two test runs of this checkout would share the data root, which dockerd refuses.
	unlock, err := lockFile(filepath.Join(cacheDir, "docker.lock"))
	if err != nil {
		return nil, err
	}
	// Short on purpose: containerd's socket lives under it, and a unix socket path has 108 bytes.
	runDir, err := os.MkdirTemp("", "trigger-dockerd-")
	if err != nil {
		unlock()
		return nil, err
	}
	e := &Engine{Host: "unix://" + filepath.Join(runDir, "docker.sock"), runDir: runDir,
		logPath: filepath.Join(cacheDir, "dockerd.log"), exited: make(chan error, 1), unlock: unlock}
	logf, err := os.Create(e.logPath)
	if err != nil {
		e.cleanup()
		return nil, err
	}
	defer logf.Close()
	// A configuration of its own, so the machine's /etc/docker/daemon.json (hosts, data-root)
	// neither clashes with these flags nor leaks in.
	config := filepath.Join(runDir, "daemon.json")
	if err := os.WriteFile(config, []byte("{}\n"), 0o600); err != nil {
		e.cleanup()
		return nil, err
	}
	// No bridge, no iptables: nothing the host's networking or another daemon relies on is
	// touched. Builds need no network (the Go base carries its modules) and the tests run
	// the images with --network none.
	e.cmd = exec.Command("dockerd", "--config-file", config,
		"--data-root", dataRoot, "--exec-root", runDir, "--pidfile", filepath.Join(runDir, "dockerd.pid"),
		"--host", e.Host, "--bridge", "none", "--iptables=false", "--ip-masq=false")
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	// The daemon dies with the test binary even if the binary is killed before stop.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := e.cmd.Start(); err != nil {
		e.cleanup()
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	go func() { e.exited <- e.cmd.Wait() }()
	if err := e.waitReady(60 * time.Second); err != nil {
		e.Stop()
		return nil, fmt.Errorf("%w\n%s", err, Tail(e.logPath, 20))
	}
	return e, nil
}

// waitReady polls the engine's /_ping until it answers OK, the daemon exits or the time is up.
func (e *Engine) waitReady(within time.Duration) error {
	if !strings.HasPrefix(e.Host, "unix://") {
		return pingCLI(e.Host, within)
	}
	sock := strings.TrimPrefix(e.Host, "unix://")
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	deadline := time.Now().Add(within)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get("http://docker/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case werr := <-e.exited:
			return fmt.Errorf("dockerd exited before answering: %v", werr)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("docker engine at %s did not answer within %s: %v", e.Host, within, err)
		}
	}
}

// pingCLI waits for an engine that is not on a unix socket, through the docker CLI.
func pingCLI(host string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+host)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker engine at %s: %v\n%s", host, err, out)
	}
	return nil
}

// Stop ends the daemon this run started (SIGTERM, then SIGKILL after 30 s) and removes its
// runtime directory; an engine named by TRIGGER_TEST_DOCKER_HOST is left alone.
func (e *Engine) Stop() {
	if e.cmd != nil && e.cmd.Process != nil {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(30 * time.Second):
			_ = e.cmd.Process.Kill()
			<-e.exited
		}
	}
	e.cleanup()
}

// Prune drops what each run with changed sources leaves behind (the images its tags moved off,
// build cache beyond a few GB) and keeps the rest, so the next run stays warm and .cache bounded.
// An engine the tests did not start is not theirs to prune.
func (e *Engine) Prune() {
	if e.cmd == nil {
		return
	}
	for _, args := range [][]string{{"image", "prune", "-f"}, {"builder", "prune", "-f", "--keep-storage", "4gb"}} {
		cmd := exec.Command("docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.Host)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func (e *Engine) cleanup() {
	if e.runDir != "" {
		_ = os.RemoveAll(e.runDir)
	}
	e.unlock()
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func Tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
