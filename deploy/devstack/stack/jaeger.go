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
	"time"
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

// FreeJaegerAddrs picks free loopback ports, so a test's or the bench's Jaeger never meets a
// developer's.
func FreeJaegerAddrs() (JaegerAddrs, error) {
	var ports [4]string
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return JaegerAddrs{}, err
		}
		ports[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return JaegerAddrs{OTLPGRPC: ports[0], OTLPHTTP: ports[1], Query: ports[2], QueryGRPC: ports[3]}, nil
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

// startJaeger runs Jaeger with the stack's configuration and waits for its query API. It
// returns the environment that points a binary's OTLP exporter at it.
func (s *Stack) startJaeger(ctx context.Context) ([]string, error) {
	a := s.opts.JaegerAddrs
	args, env, err := JaegerCommand(s.opts.JaegerBin, s.LogDir, a)
	if err != nil {
		return nil, err
	}
	p, err := spawn("jaeger", s.opts.JaegerBin, args, append(childEnviron(), env...), s.LogDir, s.streamFor("jaeger"), s.exited)
	if err != nil {
		return nil, err
	}
	s.jaeger = p
	s.JaegerURL = a.QueryURL()
	if err := waitHTTP(ctx, p, s.JaegerURL+"/api/services"); err != nil {
		return nil, err
	}
	s.progress("Jaeger on %s (OTLP %s, %s), log %s", s.JaegerURL, a.OTLPGRPC, a.OTLPHTTP, p.logPath)
	return a.OTLPEnv(), nil
}

// waitHTTP polls url until it answers 200, the process ends, or the deadline passes.
func waitHTTP(ctx context.Context, p *proc, url string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
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
		case <-p.done:
			return fmt.Errorf("%s exited during start-up (%v); last lines of %s:\n%s", p.name, p.err, p.logPath, tail(p.logPath, 15))
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("%s not ready at %s (last: %s); log %s", p.name, url, last, p.logPath), ctx.Err())
		case <-tick.C:
		}
	}
}
