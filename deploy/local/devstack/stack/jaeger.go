package stack

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/proc"
)

//go:embed jaeger.yaml
var jaegerConfig []byte

// JaegerAddrs are where Jaeger listens; every one is a loopback host:port.
type JaegerAddrs struct {
	OTLPGRPC, OTLPHTTP string // where the binaries send spans
	Query, QueryGRPC   string // the query API (HTTP, and the gRPC one Jaeger insists on)
}

// DefaultJaegerAddrs are the usual ports, the ones `TRACING=jaeger make run` uses.
var DefaultJaegerAddrs = JaegerAddrs{
	OTLPGRPC: "127.0.0.1:4317", OTLPHTTP: "127.0.0.1:4318",
	Query: "127.0.0.1:16686", QueryGRPC: "127.0.0.1:16685",
}

// DefaultJaegerBin is where `make jaeger` builds Jaeger from its tools module.
func DefaultJaegerBin(root string) string { return filepath.Join(root, ".cache", "bin", "jaeger") }

// FreeJaegerAddrs picks free loopback ports outside the ephemeral range, so a test's or the
// bench's Jaeger never meets a developer's.
func FreeJaegerAddrs() (JaegerAddrs, error) {
	ports, err := ddblocal.FreePorts(4)
	if err != nil {
		return JaegerAddrs{}, err
	}
	return jaegerAddrsOn(ports), nil
}

func jaegerAddrsOn(ports []int) JaegerAddrs {
	addr := func(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])) }
	return JaegerAddrs{OTLPGRPC: addr(0), OTLPHTTP: addr(1), Query: addr(2), QueryGRPC: addr(3)}
}

func (a JaegerAddrs) validate() error {
	for _, addr := range []string{a.OTLPGRPC, a.OTLPHTTP, a.Query, a.QueryGRPC} {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("jaeger address %q: %w", addr, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("jaeger address %s: want a loopback IP such as 127.0.0.1", addr)
		}
	}
	return nil
}

// QueryURL is the base of Jaeger's query API.
func (a JaegerAddrs) QueryURL() string { return "http://" + a.Query }

// OTLPEnv points a binary's OTLP exporter at this Jaeger.
func (a JaegerAddrs) OTLPEnv() []string {
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + a.OTLPHTTP,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		// Spans reach Jaeger within a second instead of the default five.
		"OTEL_BSP_SCHEDULE_DELAY=1000",
	}
}

// JaegerCommand checks bin, writes the configuration into dir and returns the arguments and
// the environment additions that run Jaeger at a.
func JaegerCommand(bin, dir string, a JaegerAddrs) (args, env []string, err error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, nil, fmt.Errorf("jaeger binary %s: %w (build it with `make jaeger`)", bin, err)
	}
	if err := a.validate(); err != nil {
		return nil, nil, err
	}
	cfg := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(cfg, jaegerConfig, 0o600); err != nil {
		return nil, nil, err
	}
	return []string{"--config", cfg}, []string{
		"JAEGER_OTLP_GRPC=" + a.OTLPGRPC, "JAEGER_OTLP_HTTP=" + a.OTLPHTTP,
		"JAEGER_QUERY_HTTP=" + a.Query, "JAEGER_QUERY_GRPC=" + a.QueryGRPC,
	}, nil
}

// startJaeger runs Jaeger with the stack's configuration and waits until it takes spans and
// answers queries. Without fixed addresses it gets free ports, and new ones if another process
// takes one before Jaeger binds it. It returns the environment that points a binary's OTLP
// exporter at it.
func (s *Stack) startJaeger(ctx context.Context) ([]string, error) {
	a := s.opts.JaegerAddrs
	var err error
	if a != (JaegerAddrs{}) {
		err = s.runJaeger(ctx, a)
	} else {
		err = ddblocal.StartOnFreePorts(4, func(ports []int) error {
			a = jaegerAddrsOn(ports)
			return s.runJaeger(ctx, a)
		})
	}
	if err != nil {
		return nil, err
	}
	s.progress("Jaeger on %s (OTLP %s, %s), log %s", s.JaegerURL, a.OTLPGRPC, a.OTLPHTTP, s.jaeger.LogPath())
	return a.OTLPEnv(), nil
}

// runJaeger starts Jaeger at a. If it fails to come up, it is stopped again before this returns,
// and its end is not the stack's failure: the caller may try other ports.
func (s *Stack) runJaeger(ctx context.Context, a JaegerAddrs) error {
	args, env, err := JaegerCommand(s.opts.JaegerBin, s.LogDir, a)
	if err != nil {
		return err
	}
	p, err := s.spawnHelper(ctx, "jaeger", s.opts.JaegerBin, args, append(childEnviron(), env...), func(p *proc.Process) error {
		// The OTLP receiver starts last, after the query API: its answer means every port is bound.
		if err := waitHTTP(ctx, p, http.MethodPost, "http://"+a.OTLPHTTP+"/v1/traces", "{}"); err != nil {
			return err
		}
		return waitHTTP(ctx, p, http.MethodGet, a.QueryURL()+"/api/services", "")
	})
	if err != nil {
		return err
	}
	s.jaeger, s.JaegerURL = p, a.QueryURL()
	return nil
}

// waitHTTP sends method to url (with body as JSON, unless empty) until it answers 200, the
// process ends, or the deadline passes.
func waitHTTP(ctx context.Context, p *proc.Process, method, url, body string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
		if err != nil {
			return err
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.Done():
			return endedErr(p, "during start-up")
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("%s not ready at %s (last: %s); log %s", p.Name(), url, last, p.LogPath()), ctx.Err())
		case <-tick.C:
		}
	}
}
