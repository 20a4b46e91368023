package stack

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/trigger-api/trigger-api/pkg/proc"
)

// replica is one running copy of a service, remembered so that CrashService can start it
// again as it was: same binary, same environment, same address.
type replica struct {
	component string
	index     int // into Stack.services
	env       []string
	addr      string // host:port, known once it has logged it
	crashes   int
}

// replicaCount is how many copies of component the stack runs.
func (s *Stack) replicaCount(component string) int {
	if component == KeysAdmin {
		return 1
	}
	return max(s.opts.Replicas, 1)
}

// replicaName keeps the first replica's name the component's, so a stack of one replica each
// names its logs as it always did; the others are <component>-2, <component>-3...
func replicaName(component string, i int) string {
	if i == 0 {
		return component
	}
	return component + "-" + strconv.Itoa(i+1)
}

func (s *Stack) spawnReplica(component string, i int, env []string) error {
	name := replicaName(component, i)
	env = slices.Clone(env)
	p, err := s.spawn(name, component, s.bin(component), nil, append(slices.Clone(env), "TRIGGER_HTTP_ADDR=127.0.0.1:0"), s.exited)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replicas[name] = &replica{component: component, index: len(s.services), env: env}
	s.services = append(s.services, p)
	return nil
}

// Replicas names the running replicas of component (Ingest, Inbox or KeysAdmin), in start
// order; each is also a key of ServiceURLs.
func (s *Stack) Replicas(component string) []string {
	out := make([]string, 0, s.replicaCount(component))
	for i := range s.replicaCount(component) {
		out = append(out, replicaName(component, i))
	}
	return out
}

// upstreams are the gateway's targets: every replica of every service.
func (s *Stack) upstreams() (Upstreams, error) {
	up := Upstreams{Replicas: map[string][]*url.URL{}}
	for _, component := range []string{Ingest, Inbox, KeysAdmin} {
		for i, name := range s.Replicas(component) {
			u, err := url.Parse(s.ServiceURLs[name])
			if err != nil {
				return Upstreams{}, err
			}
			switch {
			case i > 0:
				up.Replicas[component] = append(up.Replicas[component], u)
			case component == Ingest:
				up.Ingest = u
			case component == Inbox:
				up.Inbox = u
			default:
				up.KeysAdmin = u
			}
		}
	}
	return up, nil
}

// CrashService kills the service replica name with SIGKILL, as a crash would (no drain, no
// last log line), and starts it again on the same address, as Kubernetes restarts a
// container; it returns once the new process is ready. The crashed process's log is kept as
// <name>.crash<n>.log.
func (s *Stack) CrashService(ctx context.Context, name string) error {
	s.mu.Lock()
	r, ok := s.replicas[name]
	var old *proc.Process
	if ok {
		old = s.services[r.index]
	}
	s.mu.Unlock()
	if !ok || r.addr == "" {
		return fmt.Errorf("no running service replica %q", name)
	}
	old.Kill()
	r.crashes++
	kept := filepath.Join(s.LogDir, fmt.Sprintf("%s.crash%d.log", name, r.crashes))
	if err := os.Rename(old.LogPath(), kept); err != nil {
		return fmt.Errorf("keep %s's log: %w", name, err)
	}
	// The same address, so the gateway's target is the restarted process: the port was the
	// crashed one's until now, and the kernel gives outgoing connections other ports first.
	p, err := s.spawn(name, r.component, s.bin(r.component), nil, append(slices.Clone(r.env), "TRIGGER_HTTP_ADDR="+r.addr), s.exited)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.services[r.index] = p
	s.mu.Unlock()
	if err := waitReady(ctx, p, "http://"+r.addr); err != nil {
		return err
	}
	s.progress("%s crashed and restarted on %s, log %s (the crashed one's: %s)", name, r.addr, p.LogPath(), kept)
	return nil
}
