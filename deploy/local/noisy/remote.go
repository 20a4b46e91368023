package noisy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// abuserSpec is what A's own process is told: where to call, with which keys, how hard.
type abuserSpec struct {
	GatewayURL string            `json:"gateway_url"`
	Config     Config            `json:"config"`
	Keys       map[string]string `json:"keys"`
	Phase      string            `json:"phase"`
}

// abuserReport is what A's own process saw, written when its stdin closes.
type abuserReport struct {
	Progress Progress  `json:"progress"`
	Answers  actorView `json:"answers"`
}

type remoteAbuser struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	errs   strings.Builder
}

// abuserStartTimeout bounds how long A's process takes to say it has started.
const abuserStartTimeout = 30 * time.Second

// startRemote starts A's process, sends it the spec and waits until it reports its loops
// running, so that A's phase starts when A does.
func (a *abuse) startRemote(ctx context.Context) error {
	s := a.s
	keys := map[string]string{}
	for _, t := range []string{readsTenant, burstTenant, parkedTenant, deadTenant} {
		keys[t] = s.keys[t]
	}
	spec, err := json.Marshal(abuserSpec{GatewayURL: s.target.GatewayURL, Config: s.cfg, Keys: keys, Phase: s.Phase()})
	if err != nil {
		return err
	}
	r := &remoteAbuser{}
	r.cmd = exec.Command(s.target.AbuserCommand[0], s.target.AbuserCommand[1:]...)
	r.cmd.Stderr = &r.errs
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		return err
	}
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	r.stdout = bufio.NewReader(out)
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("noisy: start A's process: %w", err)
	}
	a.remote = r
	started := make(chan error, 1)
	go func() {
		if _, err := r.stdin.Write(append(spec, '\n')); err != nil {
			started <- err
			return
		}
		line, err := r.stdout.ReadString('\n')
		if err == nil && strings.TrimSpace(line) != abuserRunning {
			err = fmt.Errorf("unexpected %q", line)
		}
		started <- err
	}()
	select {
	case err = <-started:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(abuserStartTimeout):
		err = errors.New("no answer")
	}
	if err != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		return fmt.Errorf("noisy: A's process did not start: %w; stderr: %s", err, r.errs.String())
	}
	return nil
}

// stopRemote closes A's stdin, which stops it, and takes over what it saw.
func (a *abuse) stopRemote() {
	r := a.remote
	_ = r.stdin.Close()
	var rep abuserReport
	decErr := json.NewDecoder(r.stdout).Decode(&rep)
	waitErr := r.cmd.Wait()
	if err := errors.Join(decErr, waitErr); err != nil {
		a.s.abuserRec.note(Finding{Route: "A's process", Error: fmt.Sprintf("%v; stderr: %s", err, r.errs.String())})
		return
	}
	a.s.abuserRec.add(rep.Answers)
	a.reported = &rep.Progress
}

// abuserRunning is the line A's process writes once its loops run.
const abuserRunning = "running"

// ServeAbuser is A's own process: it reads the spec from the first line of in, runs A until in
// closes, then writes what it saw to out. A non-empty via replaces the spec's gateway: one
// this process serves itself, so that proxying A's calls costs A's process and not the
// caller's, where B's client runs.
func ServeAbuser(ctx context.Context, in io.Reader, out io.Writer, via string) error {
	br := bufio.NewReader(in)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read the spec: %w", err)
	}
	var spec abuserSpec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("read the spec: %w", err)
	}
	if via != "" {
		spec.GatewayURL = via
	}
	s := &Scenario{cfg: spec.Config, target: Target{GatewayURL: spec.GatewayURL}, keys: spec.Keys}
	s.SetPhase(spec.Phase)
	s.newAbuser()
	if err := s.a.start(ctx); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, abuserRunning); err != nil {
		s.a.halt()
		return err
	}
	_, _ = io.Copy(io.Discard, br) // until the parent closes it
	s.a.halt()
	return json.NewEncoder(out).Encode(abuserReport{Progress: s.Progress(), Answers: s.abuserRec.view()})
}

// AbuserMain is ServeAbuser on the process's own stdin and stdout, for a command's main.
func AbuserMain(ctx context.Context, via string) int {
	if err := ServeAbuser(ctx, os.Stdin, os.Stdout, via); err != nil {
		fmt.Fprintln(os.Stderr, "noisy abuser:", err)
		return 1
	}
	return 0
}
