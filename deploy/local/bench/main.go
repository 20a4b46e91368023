// Command bench measures Trigger API's real binaries on one DynamoDB Local, in suites that run
// one after the other (-suite picks one):
//
//   - ingest: POST /events through the ingest binary against a bare aws-sdk-go-v2 PutItem loop
//     writing the same item with the same options to the same table at one concurrency, and
//     their ratio.
//   - tracing: POST /events through three ingest binaries: tracing off, no OTLP endpoint (the
//     default), and exporting every span to a Jaeger the bench starts (make jaeger builds it).
//   - delivery: how long an event takes from POST /events returning to the worker binary
//     receiving it, for the long-poll worker and for a worker that polls every 2 s as the seed
//     did; then how fast 1 and 4 worker replicas drain a loaded inbox, against the ingest rate
//     and against the events store's own Lease and Ack draining the same load in-process (the
//     drain's baseline, as the bare PutItem loop is ingest's).
//   - cost: the DynamoDB capacity units an event costs to ingest, lease, ack and list, for
//     payloads of 1, 16 and 64 KiB, as the services count what DynamoDB reports, and its price.
//   - isolation: the noisy neighbour (package noisy) through the whole stack: one tenant's
//     latencies alone, while another abuses the API, and alone again; the inbox's peak memory
//     during the abuse; every status the abuser got.
//   - scale (only on its own, -suite scale): one long poll parked per tenant, by thousands of
//     tenants, on one inbox replica: its DynamoDB calls a second and memory while nothing
//     happens, then delivery latency across 2 ingest and 2 inbox replicas.
//
// It measures and reports: the figures never make it fail, only a run too broken to measure
// does. Everything shares the machine's cores (the load generator, the services, the workers,
// DynamoDB Local and whatever else runs), so the CPU each process used in each phase is
// reported next to the rates: on a small machine it is what explains them.
//
// Run it from the repository as `make bench` or `go run ./deploy/local/bench [flags]` (-help lists
// them). It needs what `make test` needs: Go, Java 17+ and `make dynamodb-local`. Each suite
// prints a table, then its summary as one line of JSON, and writes its full report to
// .cache/bench/<suite>.json. The binaries' logs and DynamoDB
// Local's go to .cache/bench too. Everything listens on 127.0.0.1 only.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/notify"
	"github.com/trigger-api/trigger-api/pkg/queue"
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

// Suites: -suite picks one, or all in this order, so the delivery figures are compared with
// an ingest rate measured minutes earlier on the same DynamoDB Local.
const (
	suiteAll       = "all"
	suiteIngest    = "ingest"
	suiteTracing   = "tracing"
	suiteDelivery  = "delivery"
	suiteCost      = "cost"
	suiteIsolation = "isolation"
	// suiteScale is heavy (thousands of connections and tenants), so only -suite scale runs it.
	suiteScale = "scale"
)

type options struct {
	suite       string
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	order       string
	endpoint    string
	out         string
	tracingOut  string
	logLevel    string
	// serviceProcs is the GOMAXPROCS of the services the bench starts; 0 leaves it to Go.
	serviceProcs int
	bodyBytes    int
	// external names a running stack's ingest (make run's): the ingest suite sends to it
	// instead of starting its own, and the bare loop writes beside it in its tables.
	external  externalIngest
	delivery  deliveryOptions
	cost      costOptions
	isolation isolationOptions
	scale     scaleOptions
}

// runs reports whether suite is to run: -suite names one, all, or several separated by commas
// (ingest,delivery measures the drain against an ingest rate of the same run).
func (o options) runs(suite string) bool {
	return o.suite == suiteAll || slices.Contains(strings.Split(o.suite, ","), suite)
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == abuserMode {
		os.Exit(runAbuser(os.Args[2:]))
	}
	var o options
	flag.StringVar(&o.suite, "suite", suiteAll, "what to measure: ingest (POST /events against bare PutItem), tracing (ingest with tracing off against exporting to Jaeger), delivery (latency to the worker, drain throughput), cost (DynamoDB capacity units per event), isolation (a tenant's latencies while another abuses the API), all of these, or scale (what idle long polls cost; heavy, never part of all)")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "ingest: length of each measured phase")
	// On a busy 2-core machine DynamoDB Local's CPU per write kept falling for about a minute
	// of load; a shorter warm-up makes the first phase pay for it, whatever the order.
	flag.DurationVar(&o.warmup, "warmup", 30*time.Second, "ingest: unmeasured load of each kind, alternating, before the first phase: DynamoDB Local's JIT, caches, connections")
	flag.IntVar(&o.concurrency, "concurrency", 32, "ingest: operations in flight, the same for both kinds")
	flag.StringVar(&o.order, "order", "ABBA", "ingest: phase sequence: A is POST /events via the service, B is bare PutItem; ABBA cancels a linear drift")
	flag.StringVar(&o.endpoint, "endpoint", "", "a running DynamoDB Local on loopback (http://127.0.0.1:PORT); empty starts one in memory")
	flag.StringVar(&o.out, "out", ".cache/bench/ingest.json", "ingest: where the full JSON report goes; a relative path is taken from the workspace root")
	flag.IntVar(&o.serviceProcs, "service-procs", podCPUs, "GOMAXPROCS of the ingest and inbox the bench starts: the chart's CPU limit of each, 1, as deployed; 0 lets them use every core")
	flag.StringVar(&o.logLevel, "log-level", "info", "the services' TRIGGER_LOG_LEVEL; info keeps the per-request access log a deployment pays for (the worker always logs at info: the bench reads its lines)")
	flag.StringVar(&o.tracingOut, "tracing-out", ".cache/bench/tracing.json", "tracing: where the JSON report goes; a relative path is taken from the workspace root")
	flag.IntVar(&o.bodyBytes, "body-bytes", defaultBodyBytes, "pad the event body to this many bytes; 0 sends the seed's small event (81 bytes)")
	flag.StringVar(&o.external.url, "ingest-url", "", "ingest: a running ingest on loopback (make run's: http://127.0.0.1:PORT) to send to instead of starting one; needs -endpoint and -ingest-key of that stack")
	flag.StringVar(&o.external.key, "ingest-key", "", "ingest: with -ingest-url, an API key of a tenant whose rate_limit lets the load through")
	flag.StringVar(&o.external.prefix, "table-prefix", "", "ingest: with -ingest-url, that stack's TRIGGER_TABLE_PREFIX (make run's is empty unless set); the bare loop writes to its events table")
	d := &o.delivery
	flag.Float64Var(&d.rate, "rate", 25, "delivery: events per second sent to POST /events while latency is measured, at a steady pace")
	flag.DurationVar(&d.latency, "latency-duration", 20*time.Second, "delivery: how long latency is measured for each worker kind")
	flag.DurationVar(&d.lead, "latency-lead", 5*time.Second, "delivery: events sent before the measurement starts and not counted: the worker's start, first pulls, key caches")
	flag.IntVar(&d.drainEvents, "drain-events", 5000, "delivery: events loaded before each drain")
	flag.StringVar(&d.replicas, "drain-replicas", "1,4", "delivery: worker replicas of each drain, comma-separated; each drain gets fresh events")
	flag.BoolVar(&d.rehearse, "drain-rehearsal", true, "delivery: before the first drain, the events store drains as many events unmeasured, so DynamoDB Local's first pass over the drain's calls (its JIT) stays out of the figures")
	flag.DurationVar(&d.drainTimeout, "drain-timeout", 2*time.Minute, "delivery: longest a drain may take before it is reported incomplete")
	flag.IntVar(&d.concurrency, "worker-concurrency", 0, "delivery: the workers' TRIGGER_CONCURRENCY; 0 keeps the worker's default")
	flag.IntVar(&d.batchSize, "worker-batch-size", 0, "delivery: the workers' TRIGGER_BATCH_SIZE; 0 keeps the worker's default")
	flag.StringVar(&d.out, "delivery-out", ".cache/bench/delivery.json", "delivery: where the JSON report goes; a relative path is taken from the workspace root")
	flag.IntVar(&o.cost.events, "cost-events", 40, "cost: events of each size taken through each step")
	flag.StringVar(&o.cost.sizes, "cost-sizes", "1,16,64", "cost: payload sizes in KiB, comma-separated")
	flag.StringVar(&o.cost.out, "cost-out", ".cache/bench/cost.json", "cost: where the JSON report goes; a relative path is taken from the workspace root")
	flag.DurationVar(&o.isolation.phase, "isolation-phase", 40*time.Second, "isolation: length of each phase (B alone, B while A abuses, B alone again); at 40 s B's p99 is its 8th slowest answer of 800, not one stall among 400")
	flag.DurationVar(&o.isolation.rehearsal, "isolation-rehearsal", 10*time.Second, "isolation: A runs this long, unmeasured, then rests as long, before B's first phase: the first pass over A's paths (DynamoDB Local's JIT) stays out of the figures; 0: none")
	flag.StringVar(&o.isolation.out, "isolation-out", ".cache/bench/isolation.json", "isolation: where the JSON report goes; a relative path is taken from the workspace root")
	registerScaleFlags(flag.CommandLine, &o.scale)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// rig is what every suite shares: one DynamoDB Local, one set of tables, the built binaries
// and the ingest service.
type rig struct {
	root, cacheDir, binDir string
	endpoint               string
	ddbDesc                string
	ddbPID                 int
	ownDDB                 bool // the bench started this DynamoDB Local
	client                 *dynamodb.Client
	prefix                 string
	notifyAddr             string // the inbox's notify address, once the ingest is started
	tag                    string // names the logs of a rig afresh made for one suite
	tables                 ddb.Tables
	ingest                 *child
	logf                   func(format string, args ...any)
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	if err := validateOptions(o); err != nil {
		return err
	}
	r, err := newRig(stderr)
	if err != nil {
		return err
	}
	stopDDB, err := r.startDynamoDB(ctx, o.endpoint, "dynamodb-local.log")
	if err != nil {
		return err
	}
	defer stopDDB()
	if o.external.url != "" {
		r.prefix, r.tables = o.external.prefix, ddb.TableNames(o.external.prefix)
		return runSuites(ctx, o, r, stdout)
	}
	if err := r.createTables(ctx); err != nil {
		return err
	}
	defer deleteTables(context.WithoutCancel(ctx), r.client, r.tables)
	if err := r.startIngest(ctx, o); err != nil {
		return err
	}
	defer r.ingest.stop()
	return runSuites(ctx, o, r, stdout)
}

// fresh is what a suite needs of its own when it gets a fresh DynamoDB Local.
type fresh int

const (
	freshDynamoDB fresh = iota // the suite creates what it uses
	freshTables                // and the rig's tables on it
	freshIngest                // and the rig's ingest on those
)

// afresh is r, or when the bench owns DynamoDB Local and earlier suites of the run wrote to
// it (used), a copy with a DynamoDB Local of its own and what need names on it. The suites
// before leave a few hundred thousand events there, and in a full run DynamoDB Local then
// stalled every caller for 0.3-0.9 s every few seconds: the figures of the suites after would
// be those stalls. Stop ends what afresh started.
func (r *rig) afresh(ctx context.Context, o options, suite string, used bool, need fresh) (_ *rig, stop func(), err error) {
	if o.endpoint != "" || !used {
		return r, func() {}, nil
	}
	f := *r
	f.tag = "-" + suite
	stop, err = f.startDynamoDB(ctx, "", "dynamodb-local"+f.tag+".log")
	if err != nil || need == freshDynamoDB {
		return &f, stop, wrapSuite(suite, err)
	}
	err = f.createTables(ctx)
	if err == nil && need == freshTables {
		return &f, stop, nil
	}
	if err == nil {
		err = f.startIngest(ctx, o)
	}
	if err != nil {
		stop()
		return nil, nil, wrapSuite(suite, err)
	}
	stopDDB := stop
	return &f, func() { f.ingest.stop(); stopDDB() }, nil
}

func wrapSuite(suite string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", suite, err)
}

// newRig finds the workspace and makes the bench's cache directory, where its binaries,
// logs and reports go.
func newRig(stderr io.Writer) (*rig, error) {
	r := &rig{}
	r.logf = func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	root, err := stack.FindRoot()
	if err != nil {
		return nil, err
	}
	r.root = root
	r.cacheDir = filepath.Join(root, ".cache", "bench")
	r.binDir = filepath.Join(r.cacheDir, "bin")
	if err := os.MkdirAll(r.cacheDir, 0o755); err != nil {
		return nil, err
	}
	return r, nil
}

// startDynamoDB starts an in-memory DynamoDB Local, or uses the one at endpoint, and connects
// to it. The returned stop ends only one the bench started.
func (r *rig) startDynamoDB(ctx context.Context, endpoint, logName string) (stop func(), err error) {
	stop = func() {}
	r.endpoint = endpoint
	if r.endpoint == "" {
		r.logf("starting DynamoDB Local (in memory)")
		srv, err := ddblocal.Start(ctx, ddblocal.Options{LogPath: filepath.Join(r.cacheDir, logName)})
		if err != nil {
			return nil, fmt.Errorf("dynamodb local: %w", err)
		}
		stop = srv.Stop
		r.endpoint, r.ddbPID, r.ownDDB = srv.Endpoint, srv.Pid(), true
		r.ddbDesc = "DynamoDB Local, in memory, started by the bench, TTL off on the events tables"
	} else {
		r.ddbDesc = "DynamoDB Local at " + r.endpoint
		r.ddbPID = r.listenerOf(r.endpoint, "DynamoDB Local")
		r.ownDDB = false
	}
	if r.client, err = ddblocal.Client(ctx, r.endpoint); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// createTables makes this run's own set of tables.
func (r *rig) createTables(ctx context.Context) error {
	r.prefix = randomPrefix()
	r.tables = ddb.TableNames(r.prefix)
	if err := ddb.EnsureTables(ctx, r.client, r.tables); err != nil {
		return fmt.Errorf("ensure tables: %w", err)
	}
	return r.quietTTL(ctx, r.tables)
}

// quietTTL turns TTL off on the events table of a DynamoDB Local the bench started. Its TTL
// job stops every caller of the table for a time that grows with the items in it (a put's
// worst case: 24-34 ms at 100,000-300,000 items with TTL off, 112 ms, 291 ms and 385 ms at
// 100,000, 200,000 and 300,000 with it on), and a suite writes a few hundred thousand events.
// DynamoDB deletes expired items in the background, with no effect on other calls; nothing
// the bench measures waits for an expiry.
func (r *rig) quietTTL(ctx context.Context, t ddb.Tables) error {
	if !r.ownDDB {
		return nil
	}
	_, err := r.client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(t.Events),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(ddb.EventsTTLAttribute), Enabled: aws.Bool(false),
		},
	})
	if err != nil {
		return fmt.Errorf("turn TTL off on %s: %w", t.Events, err)
	}
	return nil
}

// startIngest builds the binaries the chosen suites run and starts the ingest service they
// all send to.
func (r *rig) startIngest(ctx context.Context, o options) error {
	pkgs := []string{"./services/ingest"}
	if o.runs(suiteDelivery) {
		pkgs = append(pkgs, "./services/inbox", "./worker")
	} else if o.runs(suiteCost) {
		pkgs = append(pkgs, "./services/inbox")
	}
	r.logf("building %s into %s", strings.Join(pkgs, " "), r.binDir)
	if err := buildBinaries(ctx, r.root, r.binDir, pkgs...); err != nil {
		return err
	}
	ports, err := ddblocal.FreePorts(1)
	if err != nil {
		return err
	}
	// The inbox the delivery and cost suites start listens for notices here, as the chart's
	// inbox does; the ingest tells it of every event, as deployed.
	r.notifyAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
	if r.ingest, err = startProfiledService(ctx, "ingest", filepath.Join(r.binDir, "ingest"), r.endpoint, r.prefix, o, filepath.Join(r.cacheDir, "ingest"+r.tag+".log"),
		"TRIGGER_NOTIFY_PEERS="+r.notifyAddr); err != nil {
		return err
	}
	r.logf("ingest listening on %s (log: %s)", r.ingest.url, r.ingest.LogPath())
	return nil
}

// runSuites runs the chosen suites in order. A suite whose figures are not a measurement does
// not stop the next one: its error is returned once everything has been reported.
func runSuites(ctx context.Context, o options, r *rig, stdout io.Writer) error {
	var errs []error
	var ingestRate *ingestFigure
	if o.runs(suiteIngest) {
		rep, err := runIngest(ctx, o, r, stdout)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if rep != nil {
			ingestRate = &ingestFigure{EventsPerS: rep.Ingest.EventsPerS, Valid: rep.Valid, Concurrency: o.concurrency}
			if c := rep.Ingest.CPUMicrosPerEvent; c != nil {
				ingestRate.CPUMicrosPerEvent = c.Ingest
			}
		}
		errs = append(errs, err)
	}
	if o.runs(suiteTracing) {
		tr, stop, err := r.afresh(ctx, o, "tracing", o.runs(suiteIngest), freshTables)
		if err == nil {
			err = runTracing(ctx, o, tr, stdout)
			stop()
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if o.runs(suiteDelivery) {
		dr, stop, err := r.afresh(ctx, o, "delivery", o.runs(suiteIngest) || o.runs(suiteTracing), freshIngest)
		if err == nil {
			err = runDelivery(ctx, o, dr, ingestRate, stdout)
			stop()
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if o.runs(suiteCost) {
		errs = append(errs, runCost(ctx, o, r, stdout))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if o.runs(suiteIsolation) {
		errs = append(errs, runIsolation(ctx, o, r, stdout))
	}
	if o.suite == suiteScale {
		errs = append(errs, runScale(ctx, o, r, stdout))
	}
	return errors.Join(errs...)
}

// runIngest is the ingest suite: POST /events through the service against bare PutItem.
// It returns the report whenever the phases ran, with an error if they do not measure.
func runIngest(ctx context.Context, o options, r *rig, stdout io.Writer) (*report, error) {
	logf := r.logf
	rep := report{
		Bench: "ingest-vs-putitem", Concurrency: o.concurrency, PhaseSeconds: o.duration.Seconds(),
		WarmupSeconds: o.warmup.Seconds(), Order: o.order, Goal: goal, CPUs: runtime.NumCPU(),
		Go: runtime.Version(), Started: time.Now().UTC().Format(time.RFC3339),
		LoadAvg1: loadPair{Start: loadAvg1()}, DynamoDB: r.ddbDesc,
	}
	target, err := r.ingestTarget(ctx, o)
	if err != nil {
		return nil, err
	}
	defer target.stop()
	switch {
	case o.external.url != "":
		rep.ServiceProcsText = "of a running stack"
	case o.serviceProcs > 0:
		rep.ServiceProcs, rep.ServiceProcsText = o.serviceProcs, fmt.Sprintf("at GOMAXPROCS=%d", o.serviceProcs)
	default:
		rep.ServiceProcsText = "on every core"
	}
	key := target.key

	body := eventBody(o.bodyBytes)
	rep.BodyBytes = len(body)
	httpClient := loadClient(o.concurrency)
	defer httpClient.CloseIdleConnections()
	ops := map[string]op{modeIngest: ingestPost(httpClient, target.url, key, body)}

	// One event first: it proves the service accepts the key and body, and the item it stores
	// is the template of the bare writes.
	if err := ops[modeIngest](ctx); err != nil {
		return nil, fmt.Errorf("first event through the service (see %s): %w", target.log, err)
	}
	tmpl, err := templateItem(ctx, r.client, r.tables.Events, target.tenant)
	if err != nil {
		return nil, err
	}
	rep.ItemBytes = itemBytes(tmpl)
	ops[modePutItem] = barePut(r.client, r.tables.Events, tmpl)
	logf("warm-up: %v of each kind, alternating", o.warmup)
	if err := warmUp(ctx, o, ops, logf); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}

	pids := processes{bench: os.Getpid(), ingest: target.pid, ddb: r.ddbPID}
	samples := map[string][]time.Duration{}
	profiled := false
	for i, letter := range o.order {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		mode := modeIngest
		if letter == 'B' {
			mode = modePutItem
		}
		// Only the first ingest phase is profiled: sampling costs the service a little CPU,
		// which then weighs on one ingest phase and never on the bare side.
		var prof <-chan profileResult
		if mode == modeIngest && !profiled && r.ingest != nil {
			profiled = true
			prof = profilePhase(ctx, r, o.duration, i+1)
		}
		before := pids.snapshot()
		res := closedLoop(ctx, o.concurrency, o.duration, ops[mode])
		after := pids.snapshot()
		var pr profileResult
		if prof != nil {
			if pr = <-prof; pr.err != nil {
				logf("phase %d: profiles of the service: %v", i+1, pr.err)
			}
			rep.Profile, rep.Allocs = pr.cpu, pr.allocs
		}
		p := phaseReport{
			N: i + 1, Mode: mode, Seconds: round(res.wall.Seconds(), 3), Events: len(res.latencies),
			Errors: res.errors, EventsPerS: round(float64(len(res.latencies))/res.wall.Seconds(), 1),
			CPUSeconds: after.sub(before), LoadAvg1: loadAvg1(),
		}
		if res.firstErr != nil {
			p.FirstError = res.firstErr.Error()
		}
		if pr.allocs != nil {
			pr.allocs.perEvent(p.EventsPerS)
		}
		samples[mode] = append(samples[mode], res.latencies...)
		p.Latency = summarise(res.latencies)
		rep.Phases = append(rep.Phases, p)
		logf("phase %d %-7s %8.1f events/s  p50 %6.2f ms  p99 %6.2f ms  errors %d", p.N, mode, p.EventsPerS, p.Latency.P50, p.Latency.P99, p.Errors)
	}
	rep.LoadAvg1.End = loadAvg1()
	rep.finish(samples)

	if err := writeIngest(r.path(o.out), stdout, rep); err != nil {
		return nil, err
	}
	if !rep.Valid {
		return &rep, fmt.Errorf("more than %.0f%% of the operations of an ingest phase failed; the figures are not a measurement (see %s)", 100*maxErrorRate, target.log)
	}
	return &rep, nil
}

// externalIngest is a running stack's ingest, named by flags.
type externalIngest struct{ url, key, prefix string }

// ingestTarget is the ingest the suite sends to: its own, with a seeded tenant and a sink for
// its notices, or a running stack's.
type ingestTarget struct {
	url, key, tenant, log string
	pid                   int
	stop                  func()
}

func (r *rig) ingestTarget(ctx context.Context, o options) (ingestTarget, error) {
	if x := o.external; x.url != "" {
		k, err := apikey.Parse(x.key)
		if err != nil {
			return ingestTarget{}, fmt.Errorf("-ingest-key: %w", err)
		}
		t := ingestTarget{url: strings.TrimSuffix(x.url, "/"), key: x.key, tenant: k.TenantID, log: "the stack's ingest log", stop: func() {}}
		t.pid = r.listenerOf(t.url, "the ingest")
		return t, nil
	}
	key, err := seed(ctx, r.client, r.tables, benchTenant)
	if err != nil {
		return ingestTarget{}, err
	}
	// No inbox runs in this suite; a sink on the notify address takes ingest's notices, so
	// ingest pays for sending them as it does where an inbox listens.
	stopSink, err := sinkNotices(r.notifyAddr)
	if err != nil {
		return ingestTarget{}, err
	}
	return ingestTarget{url: r.ingest.url, key: key, tenant: benchTenant, log: r.ingest.LogPath(), pid: r.ingest.Pid(), stop: stopSink}, nil
}

type profileResult struct {
	cpu    *cpuProfile
	allocs *allocProfile
	err    error
}

// profilePhase fetches a CPU and an allocation profile of the ingest service, over the same
// window, during the phase about to start.
func profilePhase(ctx context.Context, r *rig, phase time.Duration, n int) <-chan profileResult {
	out := make(chan profileResult, 1)
	secs := profileSeconds(phase)
	cpuPath, allocsPath := filepath.Join(r.cacheDir, "ingest-cpu.pprof"), filepath.Join(r.cacheDir, "ingest-allocs.pprof")
	go func() {
		allocsErr := make(chan error, 1)
		go func() { allocsErr <- fetchProfile(ctx, r.ingest.internalURL, profileAllocs, secs, allocsPath) }()
		var res profileResult
		err := fetchProfile(ctx, r.ingest.internalURL, profileCPU, secs, cpuPath)
		if err == nil {
			res.cpu, err = summariseProfile(cpuPath)
		}
		aerr := <-allocsErr
		if aerr == nil {
			res.allocs, aerr = summariseAllocs(allocsPath)
		}
		if res.cpu != nil {
			res.cpu.Phase, res.cpu.Seconds = n, secs
		}
		if res.allocs != nil {
			res.allocs.Phase, res.allocs.Seconds = n, secs
		}
		res.err = errors.Join(err, aerr)
		out <- res
	}()
	return out
}

// writeIngest writes the full report to path, and prints the table and the one-line summary.
func writeIngest(path string, stdout io.Writer, rep report) error {
	if err := writeReport(path, rep); err != nil {
		return err
	}
	printTable(stdout, rep)
	line := rep
	line.Phases, line.Profile, line.Allocs = nil, nil, nil
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return nil
}

// path resolves a report path: a relative one is taken from the workspace root.
// startInbox starts an inbox that listens for notices where the ingest sends them, as the
// chart's inbox does.
func (r *rig) startInbox(ctx context.Context, o options, logName string) (*child, error) {
	return startService(ctx, "inbox", filepath.Join(r.binDir, "inbox"), r.endpoint, r.prefix, o, filepath.Join(r.cacheDir, logName),
		"TRIGGER_NOTIFY_ADDR="+r.notifyAddr, "TRIGGER_NOTIFY_PEERS="+r.notifyAddr)
}

func (r *rig) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.root, p)
}

func validateOptions(o options) error {
	switch o.suite {
	case suiteAll:
	case suiteScale:
		if err := o.scale.validate(); err != nil {
			return err
		}
	default:
		for _, s := range strings.Split(o.suite, ",") {
			if !slices.Contains([]string{suiteIngest, suiteTracing, suiteDelivery, suiteCost, suiteIsolation}, s) {
				return fmt.Errorf("-suite %q: want %s, %s, or some of %s, %s, %s, %s and %s separated by commas", o.suite, suiteAll, suiteScale, suiteIngest, suiteTracing, suiteDelivery, suiteCost, suiteIsolation)
			}
		}
	}
	if o.serviceProcs < 0 {
		return errors.New("-service-procs must not be negative")
	}
	if o.runs(suiteIsolation) && o.isolation.phase <= 0 {
		return errors.New("-isolation-phase must be positive")
	}
	if o.runs(suiteIngest) || o.runs(suiteTracing) {
		if o.duration <= 0 || o.warmup < 0 || o.concurrency < 1 {
			return errors.New("-duration and -concurrency must be positive, -warmup not negative")
		}
		if strings.Trim(o.order, "AB") != "" || !strings.Contains(o.order, "A") || !strings.Contains(o.order, "B") {
			return fmt.Errorf("-order %q: use the letters A and B, each at least once", o.order)
		}
	}
	if o.runs(suiteDelivery) {
		if err := o.delivery.validate(); err != nil {
			return err
		}
	}
	if o.runs(suiteCost) {
		if err := o.cost.validate(); err != nil {
			return err
		}
	}
	if o.external.url != "" {
		if o.suite != suiteIngest || o.endpoint == "" || o.external.key == "" {
			return errors.New("-ingest-url: only with -suite ingest, and with -endpoint and -ingest-key (and -table-prefix, if it has one) of the same stack")
		}
		if err := loopbackURL(o.external.url); err != nil {
			return fmt.Errorf("-ingest-url: %w", err)
		}
	}
	if o.endpoint != "" {
		if err := loopbackURL(o.endpoint); err != nil {
			return fmt.Errorf("-endpoint: only a loopback DynamoDB Local is benchmarked: %w", err)
		}
	}
	return nil
}

// loopbackURL refuses a URL that leaves this machine: the bench only loads its own processes.
func loopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not on loopback", raw)
	}
	return nil
}

// listenerOf is the process listening where url points, one the bench did not start and so
// finds by its port; 0, logged, when it cannot be found: its CPU is then not reported.
func (r *rig) listenerOf(url, what string) int {
	port, err := endpointPort(url)
	if err == nil {
		var pid int
		if pid, err = listenerPID(port); err == nil {
			return pid
		}
	}
	r.logf("%s's CPU will not be reported: %v", what, err)
	return 0
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

// sinkNotices answers POST /notify on addr as an inbox's notify port does, and drops what it
// hears, until the returned function stops it.
func sinkNotices(addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("notice sink: %w", err)
	}
	srv := &http.Server{Handler: notify.Handler(dropNotices{}, nil), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

type dropNotices struct{}

func (dropNotices) Notify(...queue.Notice) {}
