package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/proc"
)

// DefaultPrometheusAddr is where `OBSERVABILITY=1 make run` serves Prometheus.
const DefaultPrometheusAddr = "127.0.0.1:9090"

// DefaultScrapeInterval is how often the stack's Prometheus scrapes each binary: short, so a
// request just sent shows in a graph within seconds.
const DefaultScrapeInterval = 5 * time.Second

// ScrapeTarget is one binary's metrics endpoint: the job is its component, as a Deployment's
// pods share theirs in a cluster.
type ScrapeTarget struct {
	Job  string
	Addr string // host:port serving GET /metrics
}

// PrometheusConfig is the configuration of a Prometheus scraping targets every interval. The
// dashboard's queries join every metric to target_info on (job, instance), which is what one
// job per component with the default instance (the address) gives.
func PrometheusConfig(interval time.Duration, targets []ScrapeTarget) []byte {
	var b strings.Builder
	b.WriteString("# Written by the dev stack (deploy/local/devstack): every binary's GET /metrics.\n")
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n",
		model(interval), model(interval), model(interval))
	b.WriteString("scrape_configs:\n")
	byJob := map[string][]string{}
	var jobs []string
	for _, t := range targets {
		if _, ok := byJob[t.Job]; !ok {
			jobs = append(jobs, t.Job)
		}
		byJob[t.Job] = append(byJob[t.Job], strconv.Quote(t.Addr))
	}
	for _, job := range jobs {
		fmt.Fprintf(&b, "  - job_name: %s\n    static_configs:\n      - targets: [%s]\n", strconv.Quote(job), strings.Join(byJob[job], ", "))
	}
	return []byte(b.String())
}

// model writes d as Prometheus's durations want it: whole milliseconds with a unit.
func model(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// PrometheusCommand writes config into dir and returns the arguments that run Prometheus on
// addr with it, exemplar storage on and its database in dir. Prometheus 2.x keeps exemplars
// only behind that feature flag; 3.x still asks for it.
func PrometheusCommand(dir, addr string, config []byte) ([]string, error) {
	if err := loopback(addr); err != nil {
		return nil, fmt.Errorf("prometheus address %w", err)
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, config, 0o600); err != nil {
		return nil, err
	}
	return []string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "prometheus-data"),
		"--storage.tsdb.retention.time=1d",
		"--web.listen-address=" + addr,
		"--enable-feature=exemplar-storage",
	}, nil
}

// FindPrometheus returns bin when set, else the prometheus on PATH (Debian and Ubuntu package
// it as prometheus; Homebrew too).
func FindPrometheus(bin string) (string, error) {
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("prometheus binary %s: %w", bin, err)
		}
		return bin, nil
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		return "", errors.New("no prometheus on PATH: install it (apt-get install prometheus, brew install prometheus) or set PROMETHEUS_BIN")
	}
	return p, nil
}

func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s: want a loopback IP such as 127.0.0.1", addr)
	}
	return nil
}

// ScrapeTargets are the metrics endpoints of the running stack: each service replica's API
// port (the stack sets no TRIGGER_METRICS_ADDR for them) and the stack's own worker's metrics
// port. Workers added by StartWorker are not among them.
func (s *Stack) ScrapeTargets() []ScrapeTarget {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ScrapeTarget
	for _, component := range []string{Ingest, Inbox, KeysAdmin} {
		for _, name := range s.Replicas(component) {
			if r := s.replicas[name]; r != nil && r.addr != "" {
				out = append(out, ScrapeTarget{Job: component, Addr: r.addr})
			}
		}
	}
	if s.workerMetrics != "" {
		out = append(out, ScrapeTarget{Job: Worker, Addr: s.workerMetrics})
	}
	return out
}

// startPrometheus runs Prometheus over the stack's targets, once they are all known, and waits
// until it is ready. Without a fixed address it gets a free port, and another if one is taken
// before Prometheus binds it.
func (s *Stack) startPrometheus(ctx context.Context) error {
	addr, err := metricsAddrIn(ctx, s.worker)
	if err != nil {
		return err
	}
	s.workerMetrics = addr
	config := PrometheusConfig(s.opts.ScrapeInterval, s.ScrapeTargets())
	if a := s.opts.PrometheusAddr; a != "" {
		err = s.runPrometheus(ctx, a, config)
	} else {
		err = ddblocal.StartOnFreePorts(1, func(ports []int) error {
			return s.runPrometheus(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), config)
		})
	}
	if err != nil {
		return err
	}
	s.progress("Prometheus on %s scraping %d targets every %s, log %s", s.PrometheusURL, len(s.ScrapeTargets()), s.opts.ScrapeInterval, s.prometheus.LogPath())
	return nil
}

// runPrometheus starts Prometheus on addr. If it fails to come up it is stopped again, and its
// end is not the stack's failure: the caller may try another port.
func (s *Stack) runPrometheus(ctx context.Context, addr string, config []byte) error {
	args, err := PrometheusCommand(s.LogDir, addr, config)
	if err != nil {
		return err
	}
	url := "http://" + addr
	p, err := s.spawnHelper(ctx, "prometheus", s.opts.PrometheusBin, args, childEnviron(), func(p *proc.Process) error {
		return waitHTTP(ctx, p, http.MethodGet, url+"/-/ready", "")
	})
	if err != nil {
		return err
	}
	s.prometheus, s.PrometheusURL = p, url
	return nil
}

// metricsAddrIn waits for the worker's "serving metrics" line and returns its address.
func metricsAddrIn(ctx context.Context, p *proc.Process) (string, error) {
	return logAddrIn(ctx, p, "metrics address", func(path string) string { return logAddr(path, "serving metrics", "") })
}
