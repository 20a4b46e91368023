// Command bench measures POST /events through the real ingest binary against a bare
// aws-sdk-go-v2 PutItem loop writing the same item to the same table, on one DynamoDB Local
// at one concurrency, and reports both and their ratio. It measures and reports: the figures
// never make it fail, only a run too broken to measure does.
//
// Everything shares the machine's cores (the load generator, the service, DynamoDB Local and
// whatever else runs), so the CPU each process used in each phase is reported next to the
// rates: on a small machine it is what explains the ratio.
//
// Run it from the repository as `make bench` or `go run ./deploy/bench [flags]` (-help lists
// them). It needs what `make test` needs: Go, Java 17+ and `make dynamodb-local`. It prints a
// table, then the summary as one line of JSON (the last line of stdout), and writes the same
// summary with every phase to .cache/bench/ingest.json. The service's log and DynamoDB Local's
// go to .cache/bench too. Everything listens on 127.0.0.1 only.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
)

// Phase modes: A sends POST /events to the service, B calls PutItem directly.
const (
	modeIngest  = "ingest"
	modePutItem = "putitem"
)

// goal is issue 2's target for ingest as a fraction of the bare PutItem rate.
const goal = 0.85

// maxErrorRate is the share of failed operations above which a phase's figures describe
// failures rather than throughput, and the run is reported as invalid.
const maxErrorRate = 0.01

type options struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	order       string
	endpoint    string
	out         string
	logLevel    string
	bodyBytes   int
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "length of each measured phase")
	// On a busy 2-core machine DynamoDB Local's CPU per write kept falling for about a minute
	// of load; a shorter warm-up makes the first phase pay for it, whatever the order.
	flag.DurationVar(&o.warmup, "warmup", 30*time.Second, "unmeasured load of each kind, alternating, before the first phase: DynamoDB Local's JIT, caches, connections")
	flag.IntVar(&o.concurrency, "concurrency", 32, "operations in flight, the same for both kinds")
	flag.StringVar(&o.order, "order", "ABBA", "phase sequence: A is POST /events via the service, B is bare PutItem; ABBA cancels a linear drift")
	flag.StringVar(&o.endpoint, "endpoint", "", "a running DynamoDB Local on loopback (http://127.0.0.1:PORT); empty starts one in memory")
	flag.StringVar(&o.out, "out", ".cache/bench/ingest.json", "where the full JSON report goes; a relative path is taken from the workspace root")
	flag.StringVar(&o.logLevel, "log-level", "info", "the service's TRIGGER_LOG_LEVEL; info keeps the per-request access log a deployment pays for")
	flag.IntVar(&o.bodyBytes, "body-bytes", 0, "pad the event body to this many bytes; 0 sends the seed's small event")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	if err := validateOptions(o); err != nil {
		return err
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	root, err := workspaceRoot()
	if err != nil {
		return err
	}
	cacheDir := filepath.Join(root, ".cache", "bench")
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return err
	}
	rep := report{
		Bench: "ingest-vs-putitem", Concurrency: o.concurrency, PhaseSeconds: o.duration.Seconds(),
		WarmupSeconds: o.warmup.Seconds(), Order: o.order, Goal: goal, CPUs: runtime.NumCPU(),
		Go: runtime.Version(), Started: time.Now().UTC().Format(time.RFC3339),
		LoadAvg1: loadPair{Start: loadAvg1()},
	}

	endpoint := o.endpoint
	if endpoint == "" {
		logf("starting DynamoDB Local (in memory)")
		logFile, err := os.Create(filepath.Join(cacheDir, "dynamodb-local.log"))
		if err != nil {
			return err
		}
		defer logFile.Close()
		srv, err := ddblocal.Start(ctx, ddblocal.Options{Log: logFile})
		if err != nil {
			return fmt.Errorf("dynamodb local: %w", err)
		}
		defer srv.Stop()
		endpoint = srv.Endpoint
		rep.DynamoDB = "DynamoDB Local, in memory, started by the bench"
	} else {
		rep.DynamoDB = "DynamoDB Local at " + endpoint
	}
	ddbPID := 0
	if port, err := endpointPort(endpoint); err == nil {
		if ddbPID, err = listenerPID(port); err != nil {
			logf("DynamoDB Local's CPU will not be reported: %v", err)
		}
	}

	client, err := ddblocal.Client(ctx, endpoint)
	if err != nil {
		return err
	}
	prefix := randomPrefix()
	tables := ddb.TableNames(prefix)
	if err := ddb.EnsureTables(ctx, client, tables); err != nil {
		return fmt.Errorf("ensure tables: %w", err)
	}
	defer deleteTables(context.WithoutCancel(ctx), client, tables)
	key, err := seed(ctx, client, tables)
	if err != nil {
		return err
	}

	logf("building ./services/ingest")
	bin := filepath.Join(cacheDir, "ingest")
	if err := buildIngest(ctx, root, bin); err != nil {
		return err
	}
	svc, err := startIngest(ctx, bin, endpoint, prefix, o.logLevel, filepath.Join(cacheDir, "ingest.log"))
	if err != nil {
		return err
	}
	defer svc.stop()
	logf("ingest listening on %s (log: %s)", svc.url, svc.log)

	body := eventBody(o.bodyBytes)
	rep.BodyBytes = len(body)
	httpClient := loadClient(o.concurrency)
	defer httpClient.CloseIdleConnections()
	ops := map[string]op{modeIngest: ingestPost(httpClient, svc.url, key, body)}

	// One event first: it proves the service accepts the key and body, and the item it stores
	// is the template of the bare writes.
	if err := ops[modeIngest](ctx); err != nil {
		return fmt.Errorf("first event through the service (see %s): %w", svc.log, err)
	}
	tmpl, err := templateItem(ctx, client, tables.Events)
	if err != nil {
		return err
	}
	rep.ItemBytes = itemBytes(tmpl)
	ops[modePutItem] = barePut(client, tables.Events, tmpl)
	logf("warm-up: %v of each kind, alternating", o.warmup)
	if err := warmUp(ctx, o, ops, logf); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}

	pids := processes{bench: os.Getpid(), ingest: svc.cmd.Process.Pid, ddb: ddbPID}
	samples := map[string][]time.Duration{}
	for i, letter := range o.order {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		mode := modeIngest
		if letter == 'B' {
			mode = modePutItem
		}
		before := pids.snapshot()
		r := closedLoop(ctx, o.concurrency, o.duration, ops[mode])
		after := pids.snapshot()
		p := phaseReport{
			N: i + 1, Mode: mode, Seconds: round(r.wall.Seconds(), 3), Events: len(r.latencies),
			Errors: r.errors, EventsPerS: round(float64(len(r.latencies))/r.wall.Seconds(), 1),
			CPUSeconds: after.sub(before), LoadAvg1: loadAvg1(),
		}
		if r.firstErr != nil {
			p.FirstError = r.firstErr.Error()
		}
		samples[mode] = append(samples[mode], r.latencies...)
		p.Latency = summarise(r.latencies)
		rep.Phases = append(rep.Phases, p)
		logf("phase %d %-7s %8.1f events/s  p50 %6.2f ms  p99 %6.2f ms  errors %d", p.N, mode, p.EventsPerS, p.Latency.P50, p.Latency.P99, p.Errors)
	}
	rep.LoadAvg1.End = loadAvg1()
	rep.finish(samples)

	out := o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := writeReport(out, rep); err != nil {
		return err
	}
	printTable(stdout, rep)
	line := rep
	line.Phases = nil
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", b)
	if !rep.Valid {
		return fmt.Errorf("more than %.0f%% of the operations of a phase failed; the figures are not a measurement (see %s)", 100*maxErrorRate, svc.log)
	}
	return nil
}

func validateOptions(o options) error {
	if o.duration <= 0 || o.warmup < 0 || o.concurrency < 1 {
		return errors.New("-duration and -concurrency must be positive, -warmup not negative")
	}
	if strings.Trim(o.order, "AB") != "" || !strings.Contains(o.order, "A") || !strings.Contains(o.order, "B") {
		return fmt.Errorf("-order %q: use the letters A and B, each at least once", o.order)
	}
	if o.endpoint != "" {
		u, err := url.Parse(o.endpoint)
		if err != nil {
			return fmt.Errorf("-endpoint: %w", err)
		}
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("-endpoint %q: only a loopback DynamoDB Local is benchmarked", o.endpoint)
		}
	}
	return nil
}

func endpointPort(endpoint string) (int, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(u.Port())
}

// warmUpChunk is the longest stretch of one kind of warm-up load before switching to the other.
const warmUpChunk = 5 * time.Second

// warmUp runs unmeasured load of both kinds in alternating chunks. DynamoDB Local's JIT keeps
// speeding it up for tens of seconds of load; warming both request paths side by side means
// neither kind's first measured phase pays for compiling code the other kind already warmed.
// It fails only if a kind completed nothing at all, which means the setup is broken rather
// than slow.
func warmUp(ctx context.Context, o options, ops map[string]op, logf func(string, ...any)) error {
	for done := time.Duration(0); done < o.warmup; done += warmUpChunk {
		d := min(warmUpChunk, o.warmup-done)
		for _, mode := range []string{modeIngest, modePutItem} {
			r := closedLoop(ctx, o.concurrency, d, ops[mode])
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(r.latencies) == 0 {
				if r.firstErr != nil {
					return fmt.Errorf("%s: %w", mode, r.firstErr)
				}
				return fmt.Errorf("%s: no operation completed", mode)
			}
			// Rates that still climb from chunk to chunk say the warm-up was too short.
			logf("warm-up %-7s %8.1f events/s", mode, float64(len(r.latencies))/r.wall.Seconds())
		}
	}
	return nil
}

// eventBody is the seed's event, padded with a filler field when a larger body is asked for.
func eventBody(size int) []byte {
	b := []byte(`{"event_type":"customer.created","customer_id":"123","email":"alice@example.com"}`)
	const filler = `,"pad":""}`
	if pad := size - len(b) - len(filler) + 1; pad > 0 {
		b = append(b[:len(b)-1], `,"pad":"`...)
		b = append(b, strings.Repeat("x", pad)...)
		b = append(b, `"}`...)
	}
	return b
}
