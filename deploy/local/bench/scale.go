package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
	"github.com/trigger-api/trigger-api/deploy/local/noisy"
	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
	"github.com/trigger-api/trigger-api/pkg/ddb"
)

// The scale suite's goals, reported next to the figures and never enforced.
const (
	goalIdleCallsPerTenant = 0.05
	goalScaleInboxRSSMiB   = 256
	goalScaleInboxCallsPS  = 500
	goalScaleP99MS         = 100
)

const (
	// scaleWait is the long poll's wait_seconds, the most the API takes and the worker's default.
	scaleWait = 20
	// scaleBaseline is how long the inbox is watched before the polls are opened: what it costs
	// with (almost) nothing waiting, to show that the idle figure is the polls' doing.
	scaleBaseline = 10 * time.Second
	// scaleAPITenants are created through keys-admin, to time that path; the rest go straight
	// into the tables, which is what makes 10,000 tenants quick to set up.
	scaleAPITenants  = 200
	scaleSeedWorkers = 16
	// scaleDrain is how long the latency phase waits for the last events' answers.
	scaleDrain = 10 * time.Second
	// fdsSpare leaves room for the bench's other files and connections besides the polls.
	fdsSpare = 1024
)

type scaleOptions struct {
	tenants  int
	idle     time.Duration
	rampRate float64
	settle   time.Duration
	sample   int
	rate     float64
	latency  time.Duration
	out      string
}

func registerScaleFlags(fs *flag.FlagSet, s *scaleOptions) {
	fs.IntVar(&s.tenants, "tenants", 10000, "scale: tenants, each with one long poll parked on one inbox replica")
	fs.DurationVar(&s.idle, "scale-idle", 60*time.Second, "scale: the idle window over which the inbox's DynamoDB calls are counted")
	fs.Float64Var(&s.rampRate, "scale-ramp-rate", 250, "scale: long polls opened per second until every tenant has one")
	fs.DurationVar(&s.settle, "scale-settle", 5*time.Second, "scale: wait between the last poll parked and the idle window")
	fs.IntVar(&s.sample, "scale-sample", 20, "scale: tenants besides the waiting ones that receive events in the latency phase")
	fs.Float64Var(&s.rate, "scale-rate", 20, "scale: events per second POSTed to the sample in the latency phase")
	fs.DurationVar(&s.latency, "scale-latency", 20*time.Second, "scale: how long latency is measured, after a 3 s lead not counted")
	fs.StringVar(&s.out, "scale-out", ".cache/bench/scale.json", "scale: where the JSON report goes; a relative path is taken from the workspace root")
}

func (s scaleOptions) validate() error {
	if s.tenants < 1 || s.sample < 1 {
		return errors.New("-tenants and -scale-sample must be positive")
	}
	if s.idle <= 0 || s.latency <= 0 || s.settle < 0 || s.rampRate <= 0 || s.rate <= 0 || s.rate > 1000 {
		return errors.New("-scale-idle, -scale-latency, -scale-ramp-rate and -scale-rate (at most 1000) must be positive, -scale-settle not negative")
	}
	return nil
}

// callWindow is a service's DynamoDB calls over one window.
type callWindow struct {
	Seconds float64 `json:"seconds"`
	Calls   float64 `json:"calls"`
	PerS    float64 `json:"per_s"`
	// ByKind is calls per second by "Operation outcome".
	ByKind map[string]float64 `json:"per_s_by_kind"`
}

func callRate(before, after ddbCalls, d time.Duration) callWindow {
	w := callWindow{Seconds: round(d.Seconds(), 2), ByKind: map[string]float64{}}
	if d <= 0 {
		return w
	}
	for k, v := range after {
		if n := v - before[k]; n > 0 {
			w.Calls += n
			w.ByKind[k] = round(n/d.Seconds(), 2)
		}
	}
	w.PerS = round(w.Calls/d.Seconds(), 2)
	return w
}

// perTenant is the inbox's calls a second per waiting tenant.
func perTenant(idle callWindow, tenants int) float64 {
	if tenants <= 0 {
		return 0
	}
	return round(idle.PerS/float64(tenants), 3)
}

// counts tallies outcomes by name.
type counts map[string]int

func (c counts) since(before counts) counts {
	out := counts{}
	for k, v := range c {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// outcome names a pull's answer: its status, with 200 split by whether it held events.
func outcome(page api.EventPage, err error) string {
	if err == nil {
		if len(page.Events) > 0 {
			return "200 events"
		}
		return "200 empty"
	}
	if e, ok := errors.AsType[*client.Error](err); ok {
		return strconv.Itoa(e.Status)
	}
	return "transport error"
}

// retryDelay is how long a poller waits after a failed pull: what the server asked, or a
// second, as the worker does.
func retryDelay(err error) time.Duration {
	if d := client.RetryAfter(err); d > 0 {
		return d
	}
	return time.Second
}

// pollers run long polls as the worker does: each one that ends is followed at once by the
// next. inFlight counts the pulls under way, which, between answers, is the polls parked.
type pollers struct {
	inFlight atomic.Int64
	mu       sync.Mutex
	answers  counts
	wg       sync.WaitGroup
}

func newPollers() *pollers { return &pollers{answers: counts{}} }

func (p *pollers) snapshot() counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.answers)
}

// start runs one poller until ctx ends; onEvents, when set, sees each answer that holds events
// and the time it was read.
func (p *pollers) start(ctx context.Context, c *client.Client, onEvents func(*client.Client, []api.Event, time.Time)) {
	wait := scaleWait
	req := api.PullRequest{WaitSeconds: &wait}
	p.wg.Go(func() {
		for ctx.Err() == nil {
			p.inFlight.Add(1)
			callCtx, cancel := context.WithTimeout(ctx, (scaleWait+15)*time.Second)
			page, err := c.Pull(callCtx, req)
			read := time.Now()
			cancel()
			p.inFlight.Add(-1)
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			p.answers[outcome(page, err)]++
			p.mu.Unlock()
			if err != nil {
				_ = client.Sleep(ctx, retryDelay(err))
				continue
			}
			if len(page.Events) > 0 && onEvents != nil {
				onEvents(c, page.Events, read)
			}
		}
	})
}

// pollsPerAddress is how many polls share a source address. Tenants reach a deployment from
// many hosts; from one address, thousands of first authentications at once would spend the
// services' per-address budget (20 unresolved keys in flight) and be refused with 429.
const pollsPerAddress = 8

// sourceAddr is the n-th loopback address the bench dials from: 127.1.0.0/16, all of it
// local on Linux, and apart from 127.0.0.1, which the services and DynamoDB Local use.
func sourceAddr(n int) net.IP {
	n %= 1 << 16
	return net.IPv4(127, 1, byte(n>>8), byte(n))
}

// pollClient carries every poll of the bench over its own connection: as many idle
// connections as polls, small buffers, since the answers are small and there are thousands
// of them, and connections dialed from a spread of source addresses.
func pollClient(conns int) *http.Client {
	var dialed atomic.Int64
	addresses := max(conns/pollsPerAddress, 1)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		n := int(dialed.Add(1)-1) % addresses
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: sourceAddr(n)}, Timeout: 10 * time.Second}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         dial,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     2 * time.Minute,
		DisableCompression:  true,
		ReadBufferSize:      2 << 10,
		WriteBufferSize:     2 << 10,
	}}
}

// raiseFileLimit lets the bench hold one connection per poll.
func raiseFileLimit(need uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	if lim.Cur < need {
		return lim.Cur, fmt.Errorf("open files limited to %d, and %d polls need about %d: raise the hard limit (ulimit -Hn) or lower -tenants", lim.Cur, need-fdsSpare, need)
	}
	return lim.Cur, nil
}

// rssPeaks samples the resident memory of a few processes until stopped.
type rssPeaks struct {
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	mu   sync.Mutex
	peak map[int]int64 // KiB
}

func sampleRSS(every time.Duration, pids ...int) *rssPeaks {
	r := &rssPeaks{done: make(chan struct{}), peak: map[int]int64{}}
	r.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			r.mu.Lock()
			for _, pid := range pids {
				if v, err := noisy.ProcStatusKiB(pid, "VmRSS"); err == nil {
					r.peak[pid] = max(r.peak[pid], v)
				}
			}
			r.mu.Unlock()
			select {
			case <-r.done:
				return
			case <-tick.C:
			}
		}
	})
	return r
}

// stop ends the sampling, if it still runs, and returns each process's peak in MiB.
func (r *rssPeaks) stop() map[int]float64 {
	r.once.Do(func() { close(r.done) })
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[int]float64{}
	for pid, v := range r.peak {
		out[pid] = round(float64(v)/1024, 1)
	}
	return out
}

// scaleReport is the suite's JSON report.
type scaleReport struct {
	Bench       string             `json:"bench"`
	Started     string             `json:"started"`
	Go          string             `json:"go"`
	CPUs        int                `json:"cpus"`
	LoadAvg     loadTriple         `json:"load_average"`
	DynamoDB    string             `json:"dynamodb"`
	Tenants     int                `json:"tenants"`
	WaitSeconds int                `json:"wait_seconds"`
	Setup       scaleSetup         `json:"setup"`
	Baseline    callWindow         `json:"inbox_calls_before_polls"`
	Idle        scaleIdle          `json:"idle"`
	Latency     scaleLatency       `json:"latency"`
	Goals       map[string]float64 `json:"goals"`
	Met         map[string]bool    `json:"met"`
	Valid       bool               `json:"valid"`
	Problems    []string           `json:"problems,omitempty"`
	Seconds     float64            `json:"suite_seconds"`
}

type scaleSetup struct {
	APITenants    int     `json:"api_tenants"`
	APIPerS       float64 `json:"api_tenants_per_s"`
	DirectTenants int     `json:"direct_tenants"`
	DirectPerS    float64 `json:"direct_tenants_per_s"`
	RampSeconds   float64 `json:"ramp_seconds"`
	FileLimit     uint64  `json:"open_files_limit"`
}

// scaleIdle is inbox replica 1 while every tenant's poll waits on it and nothing is published.
type scaleIdle struct {
	Calls     callWindow `json:"inbox_calls"`
	PerTenant float64    `json:"calls_per_s_per_waiting_tenant"`
	// InFlight is the fewest and most pulls under way, sampled during the window: with every
	// poll parked both equal the tenants.
	InFlightMin     int64   `json:"in_flight_min"`
	InFlightMax     int64   `json:"in_flight_max"`
	Answers         counts  `json:"pull_answers"`
	InboxPeakRSSMiB float64 `json:"inbox_peak_rss_mib"`
	InboxHWMMiB     float64 `json:"inbox_hwm_mib"`
	// The peak above spans the ramp, when every poll authenticates and makes its first read;
	// this one only the idle window, when they wait. The heap and goroutines are the inbox's
	// own figures at the window's end: what its last collection kept, and the heap in use with
	// the garbage since, which GOGC=400 lets grow up to the memory limit.
	InboxIdlePeakRSSMiB float64            `json:"inbox_idle_peak_rss_mib"`
	InboxHeapLiveMiB    float64            `json:"inbox_heap_live_mib"`
	InboxHeapInuseMiB   float64            `json:"inbox_heap_inuse_mib"`
	InboxGoroutines     int                `json:"inbox_goroutines"`
	BenchPeakRSSMiB     float64            `json:"bench_peak_rss_mib"`
	CPUCores            map[string]float64 `json:"cpu_cores"`
}

// scaleLatency is POST /events on either ingest replica to the answer of a long poll parked on
// either inbox replica, while the waiting tenants stay parked.
type scaleLatency struct {
	SampleTenants     int          `json:"sample_tenants"`
	Rate              float64      `json:"rate"`
	Seconds           float64      `json:"seconds"`
	Sent              int          `json:"sent"`
	Received          int          `json:"received"`
	Missing           int          `json:"missing"`
	AnsweredBefore202 int          `json:"answered_before_202"`
	PostErrors        int          `json:"post_errors"`
	FirstPostError    string       `json:"first_post_error,omitempty"`
	LatencyMS         latencyStats `json:"latency_ms"`
	Answers           counts       `json:"pull_answers"`
}

// scaleRig is what the suite's phases share.
type scaleRig struct {
	*rig
	opts   scaleOptions
	st     *stack.Stack
	tables ddb.Tables
	polls  *http.Client
	scrape *http.Client
	body   []byte
}

// runScale parks one long poll per tenant on one inbox replica of a stack of 2 ingest and 2
// inbox replicas, counts that replica's DynamoDB calls and memory while nothing happens, then
// times delivery to a sample of tenants while the others keep waiting.
func runScale(ctx context.Context, o options, r *rig, stdout io.Writer) error {
	began := time.Now()
	s := o.scale
	rep := scaleReport{
		Bench: "scale", Started: began.UTC().Format(time.RFC3339), Go: runtime.Version(), CPUs: runtime.NumCPU(),
		LoadAvg: loadTriple{Start: loadAverages()}, DynamoDB: r.ddbDesc, Tenants: s.tenants, WaitSeconds: scaleWait,
		Goals: map[string]float64{
			"idle_calls_per_s_per_tenant_at_most": goalIdleCallsPerTenant, "inbox_rss_mib_at_most": goalScaleInboxRSSMiB,
			"inbox_calls_per_s_at_most": goalScaleInboxCallsPS, "latency_p99_ms_at_most": goalScaleP99MS,
		},
	}
	limit, err := raiseFileLimit(uint64(s.tenants+s.sample) + fdsSpare)
	rep.Setup.FileLimit = limit
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	sr, stop, err := startScaleRig(ctx, o, r)
	if err != nil {
		return err
	}
	defer stop()
	if err := sr.measure(ctx, &rep); err != nil {
		return err
	}
	rep.LoadAvg.End = loadAverages()
	rep.Seconds = round(time.Since(began).Seconds(), 1)
	rep.finish()
	if err := writeReport(r.path(s.out), rep); err != nil {
		return err
	}
	printScale(stdout, rep)
	if !rep.Valid {
		return fmt.Errorf("scale: the run does not measure what it should: %v (logs in %s)", rep.Problems, filepath.Join(r.cacheDir, "scale"))
	}
	return nil
}

// startScaleRig starts the stack, two replicas each of ingest and inbox, on the rig's DynamoDB
// Local under tables of its own, as the chaos run does.
func startScaleRig(ctx context.Context, o options, r *rig) (*scaleRig, func(), error) {
	dir := filepath.Join(r.cacheDir, "scale")
	prefix := randomPrefix()
	st, err := stack.Start(ctx, stack.Options{
		Root: r.root, BinDir: filepath.Join(dir, "bin"), StateDir: dir, GatewayAddr: "127.0.0.1:0",
		DynamoDBEndpoint: r.endpoint, TablePrefix: prefix, Replicas: 2, LogLevel: o.logLevel,
		APIEnv: []string{"GOMEMLIMIT=" + podMemoryLimit},
		// The stack always runs a worker of its own. Given the first waiting tenant, its polls
		// share that tenant's watch in the inbox, so it adds no watch of its own to the count.
		Tenants: scaleTenantIDs(1, 0), Progress: logWriter{r.logf},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scale: start the stack: %w", err)
	}
	sr := &scaleRig{
		rig: r, opts: o.scale, st: st, tables: ddb.TableNames(prefix), body: eventBody(o.bodyBytes),
		polls: pollClient(o.scale.tenants + o.scale.sample), scrape: &http.Client{Timeout: 10 * time.Second},
	}
	stop := func() {
		sr.polls.CloseIdleConnections()
		_ = st.Stop()
		deleteTables(context.WithoutCancel(ctx), r.client, sr.tables)
	}
	if err := r.quietTTL(ctx, sr.tables); err != nil {
		stop()
		return nil, nil, fmt.Errorf("scale: %w", err)
	}
	return sr, stop, nil
}

// measure runs the phases in order; an error means the run is too broken to report.
func (sr *scaleRig) measure(ctx context.Context, rep *scaleReport) error {
	idleKeys, sampleKeys, err := sr.createTenants(ctx, &rep.Setup)
	if err != nil {
		return err
	}
	sr.logf("scale: %d tenants via keys-admin at %.0f/s, %d straight into the tables at %.0f/s",
		rep.Setup.APITenants, rep.Setup.APIPerS, rep.Setup.DirectTenants, rep.Setup.DirectPerS)
	sr.logf("scale: the inbox's DynamoDB calls before the polls, over %v", scaleBaseline)
	before, err := sr.inboxCalls(ctx)
	if err != nil {
		return err
	}
	from := time.Now()
	if err := client.Sleep(ctx, scaleBaseline); err != nil {
		return err
	}
	after, err := sr.inboxCalls(ctx)
	if err != nil {
		return err
	}
	rep.Baseline = callRate(before, after, time.Since(from))

	pollCtx, stopPolls := context.WithCancel(ctx)
	idle := newPollers()
	defer func() {
		stopPolls()
		idle.wg.Wait()
	}()
	if err := sr.idle(ctx, pollCtx, idleKeys, idle, rep); err != nil {
		return err
	}
	if err := sr.latency(ctx, pollCtx, sampleKeys, &rep.Latency); err != nil {
		return err
	}
	return sr.st.Err()
}

func scaleTenantIDs(tenants, sample int) []string {
	ids := make([]string, 0, tenants+sample)
	for i := range tenants {
		ids = append(ids, fmt.Sprintf("scale-%05d", i+1))
	}
	for i := range sample {
		ids = append(ids, fmt.Sprintf("scale-lat-%03d", i+1))
	}
	return ids
}

// createTenants makes the waiting tenants and the sample, a key each, and returns the keys.
func (sr *scaleRig) createTenants(ctx context.Context, setup *scaleSetup) (idle, sample []string, err error) {
	ids := scaleTenantIDs(sr.opts.tenants, sr.opts.sample)
	keys := make([]string, len(ids))
	nAPI := min(scaleAPITenants, len(ids))
	sr.logf("scale: creating %d tenants, a key each", len(ids))
	start := time.Now()
	err = parallel(ctx, scaleSeedWorkers, nAPI, func(ctx context.Context, i int) (err error) {
		keys[i], err = sr.st.CreateTenant(ctx, ids[i])
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scale: create tenants through keys-admin: %w", err)
	}
	setup.APITenants, setup.APIPerS = nAPI, round(float64(nAPI)/time.Since(start).Seconds(), 1)
	start = time.Now()
	rest := ids[nAPI:]
	err = parallel(ctx, scaleSeedWorkers, len(rest), func(ctx context.Context, i int) (err error) {
		keys[nAPI+i], err = seed(ctx, sr.client, sr.tables, rest[i])
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scale: create tenants in the tables: %w", err)
	}
	if len(rest) > 0 {
		setup.DirectTenants, setup.DirectPerS = len(rest), round(float64(len(rest))/time.Since(start).Seconds(), 1)
	}
	return keys[:sr.opts.tenants], keys[sr.opts.tenants:], nil
}

// parallel runs f for 0..n-1 on workers goroutines and returns the first error, after which
// the rest are skipped.
func parallel(ctx context.Context, workers, n int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// inboxCalls reads the DynamoDB call counts of inbox replica 1, where the waiting polls park.
func (sr *scaleRig) inboxCalls(ctx context.Context) (ddbCalls, error) {
	c, err := scrapeDDBCalls(ctx, sr.scrape, sr.st.ServiceURLs[stack.Inbox])
	if err != nil {
		return nil, fmt.Errorf("scale: inbox metrics: %w", err)
	}
	return c, nil
}

// replicaURLs are the loopback URLs of a component's replicas, bypassing the gateway.
func (sr *scaleRig) replicaURLs(component string) []string {
	var out []string
	for _, name := range sr.st.Replicas(component) {
		out = append(out, sr.st.ServiceURLs[name])
	}
	return out
}

// rssEvery is how often memory is sampled: often enough to catch the peak of a ramp.
const rssEvery = 200 * time.Millisecond

// idle opens one long poll per tenant on inbox replica 1 at the ramp rate, waits for them to
// settle, then counts that replica's DynamoDB calls, CPU and memory over the idle window.
func (sr *scaleRig) idle(ctx, pollCtx context.Context, keys []string, p *pollers, rep *scaleReport) error {
	inboxURL := sr.st.ServiceURLs[stack.Inbox]
	pids := sr.st.PIDs()
	inboxPID := pids[stack.Inbox]
	rss := sampleRSS(rssEvery, inboxPID, os.Getpid())
	defer rss.stop()
	sr.logf("scale: opening %d long polls on %s at %.0f/s", len(keys), inboxURL, sr.opts.rampRate)
	start := time.Now()
	if err := sr.ramp(ctx, pollCtx, inboxURL, keys, p); err != nil {
		return err
	}
	rep.Setup.RampSeconds = round(time.Since(start).Seconds(), 1)
	if err := client.Sleep(ctx, sr.opts.settle); err != nil {
		return err
	}
	if err := sr.awaitLastUseWrites(ctx); err != nil {
		return err
	}
	sr.logf("scale: %d pulls in flight; counting the inbox's DynamoDB calls for %v", p.inFlight.Load(), sr.opts.idle)
	cpu := []cpuGroup{{"bench", []int{os.Getpid()}}, {"inbox", []int{inboxPID}}, {"dynamodb_local", []int{sr.ddbPID}}}
	callsBefore, err := sr.inboxCalls(ctx)
	if err != nil {
		return err
	}
	answersBefore, cpuBefore, from := p.snapshot(), snapshotGroups(cpu), time.Now()
	idleRSS := sampleRSS(rssEvery, inboxPID)
	defer idleRSS.stop()
	lo, hi, err := watchInFlight(ctx, p, sr.opts.idle)
	if err != nil {
		return err
	}
	b, err := fetchMetrics(ctx, sr.scrape, inboxURL)
	if err != nil {
		return fmt.Errorf("scale: inbox metrics: %w", err)
	}
	rt, err := parseRuntime(b)
	if err != nil {
		return fmt.Errorf("scale: inbox metrics: %w", err)
	}
	callsAfter, err := sr.inboxCalls(ctx)
	if err != nil {
		return err
	}
	wall := time.Since(from)
	cpuAfter := snapshotGroups(cpu)
	in := &rep.Idle
	in.Calls = callRate(callsBefore, callsAfter, wall)
	in.PerTenant = perTenant(in.Calls, len(keys))
	in.InFlightMin, in.InFlightMax = lo, hi
	in.Answers = p.snapshot().since(answersBefore)
	in.CPUCores = cpuAfter.cores(cpuBefore, cpu, wall)
	m := rss.stop()
	in.InboxPeakRSSMiB, in.BenchPeakRSSMiB = m[inboxPID], m[os.Getpid()]
	in.InboxIdlePeakRSSMiB = idleRSS.stop()[inboxPID]
	in.InboxHeapLiveMiB, in.InboxHeapInuseMiB = round(rt.heapLive/(1<<20), 1), round(rt.heapInuse/(1<<20), 1)
	in.InboxGoroutines = int(rt.goroutines)
	if hwm, err := noisy.ProcStatusKiB(inboxPID, "VmHWM"); err == nil {
		in.InboxHWMMiB = round(float64(hwm)/1024, 1)
	}
	sr.logf("scale: idle: inbox %.1f DynamoDB calls/s (%.3f per waiting tenant), peak RSS %.1f MiB (%.1f MiB while idle; heap live %.1f MiB, in use %.1f MiB; %d goroutines)",
		in.Calls.PerS, in.PerTenant, in.InboxPeakRSSMiB, in.InboxIdlePeakRSSMiB, in.InboxHeapLiveMiB, in.InboxHeapInuseMiB, in.InboxGoroutines)
	return nil
}

// lastUseQuiet is how long the inbox's UpdateItem count must stay still before the idle
// window opens: longer than a long poll, since a key whose use found no free writer slot is
// recorded at its next request. lastUseWait is the most the suite waits for that.
const (
	lastUseQuiet = 25 * time.Second
	lastUseWait  = 4 * time.Minute
)

// awaitLastUseWrites waits until the inbox has recorded every key's first use (UpdateItem of
// last_used_at, a few at a time): a write per key per hour, which thousands of keys first seen
// together turn into a burst of a minute or more. It is the start-up's cost, not waiting's.
func (sr *scaleRig) awaitLastUseWrites(ctx context.Context) error {
	deadline := time.Now().Add(lastUseWait)
	prev, err := sr.inboxCalls(ctx)
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		if err := client.Sleep(ctx, lastUseQuiet); err != nil {
			return err
		}
		cur, err := sr.inboxCalls(ctx)
		if err != nil {
			return err
		}
		if cur["UpdateItem ok"] == prev["UpdateItem ok"] {
			return nil
		}
		sr.logf("scale: waiting for the keys' first-use writes: %.0f so far", cur["UpdateItem ok"])
		prev = cur
	}
	sr.logf("scale: first-use writes still going after %v; the idle window includes them", lastUseWait)
	return nil
}

// ramp opens one poll per key at the ramp rate: all at once would queue thousands of first
// pulls behind the inbox's read slots, which measures the burst rather than the waiting.
func (sr *scaleRig) ramp(ctx, pollCtx context.Context, inboxURL string, keys []string, p *pollers) error {
	start := time.Now()
	for i, key := range keys {
		at := start.Add(time.Duration(float64(i) / sr.opts.rampRate * float64(time.Second)))
		if err := client.Sleep(ctx, time.Until(at)); err != nil {
			return err
		}
		c, err := client.New(inboxURL, key, client.WithHTTPClient(sr.polls), client.WithRetries(0))
		if err != nil {
			return err
		}
		p.start(pollCtx, c, nil)
	}
	return nil
}

// watchInFlight samples the pulls under way for d and returns the fewest and the most.
func watchInFlight(ctx context.Context, p *pollers, d time.Duration) (lo, hi int64, err error) {
	lo = p.inFlight.Load()
	hi = lo
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := client.Sleep(ctx, min(250*time.Millisecond, time.Until(end))); err != nil {
			return lo, hi, err
		}
		n := p.inFlight.Load()
		lo, hi = min(lo, n), max(hi, n)
	}
	return lo, hi, nil
}

// scaleLead is sent before latency is counted: the sample's first pulls and key caches.
const scaleLead = 3 * time.Second

// latency parks one poll per sample tenant, alternating between the inbox replicas, and
// publishes to random sample tenants through random ingest replicas at a steady rate.
func (sr *scaleRig) latency(ctx, pollCtx context.Context, keys []string, rep *scaleLatency) error {
	inboxes, ingests := sr.replicaURLs(stack.Inbox), sr.replicaURLs(stack.Ingest)
	rep.SampleTenants, rep.Rate = len(keys), sr.opts.rate
	var mu sync.Mutex
	received := map[string]time.Time{}
	onEvents := func(c *client.Client, evs []api.Event, read time.Time) {
		refs := make([]api.LeaseRef, len(evs))
		mu.Lock()
		for i, e := range evs {
			if _, seen := received[e.EventID]; !seen {
				received[e.EventID] = read
			}
			refs[i] = api.LeaseRef{EventID: e.EventID, LeaseID: e.LeaseID}
		}
		mu.Unlock()
		// As a worker would, so the event is not delivered again; its outcome is not a figure.
		_, _ = c.AckLeases(ctx, refs)
	}
	sampleCtx, stopSample := context.WithCancel(pollCtx)
	p := newPollers()
	defer func() {
		stopSample()
		p.wg.Wait()
	}()
	var sends []sendFunc
	for i, key := range keys {
		c, err := client.New(inboxes[i%len(inboxes)], key, client.WithHTTPClient(sr.polls), client.WithRetries(0))
		if err != nil {
			return err
		}
		p.start(sampleCtx, c, onEvents)
		for _, u := range ingests {
			pub, err := client.New(u, key, client.WithHTTPClient(sr.polls), client.WithRetries(0))
			if err != nil {
				return err
			}
			sends = append(sends, publishID(pub, sr.body))
		}
	}
	send := func(ctx context.Context) (string, error) { return sends[rand.IntN(len(sends))](ctx) }
	sr.logf("scale: latency: %.0f events/s to %d tenants through %d ingest and %d inbox replicas for %v, the first %v not counted",
		sr.opts.rate, len(keys), len(ingests), len(inboxes), scaleLead+sr.opts.latency, scaleLead)
	before := p.snapshot()
	res := steadyLoad(ctx, sr.opts.rate, scaleLead, sr.opts.latency, send, nil)
	if err := ctx.Err(); err != nil {
		return err
	}
	waitReceived(ctx, &mu, received, res.sent, scaleDrain)
	mu.Lock()
	lat, missing, early := matchLatencies(res.sent, received)
	mu.Unlock()
	rep.Seconds = round(res.wall.Seconds(), 1)
	rep.Sent, rep.Received, rep.Missing, rep.AnsweredBefore202 = len(res.sent), len(lat), missing, early
	rep.PostErrors = res.errors
	if res.firstErr != nil {
		rep.FirstPostError = res.firstErr.Error()
	}
	rep.LatencyMS = summarise(lat)
	rep.Answers = p.snapshot().since(before)
	sr.logf("scale: latency p50 %.1f ms, p99 %.1f ms (%d events, %d missing)", rep.LatencyMS.P50, rep.LatencyMS.P99, rep.Sent, rep.Missing)
	return nil
}

// waitReceived waits up to d for every sent event to have been received.
func waitReceived(ctx context.Context, mu *sync.Mutex, received map[string]time.Time, sent []sentEvent, d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		mu.Lock()
		_, missing, _ := matchLatencies(sent, received)
		mu.Unlock()
		if missing == 0 || client.Sleep(ctx, 100*time.Millisecond) != nil {
			return
		}
	}
}

// matchLatencies times each sent event from its 202 to the answer that delivered it. An
// answer read before the 202 was (the poll was quicker than the publisher's own round trip)
// counts as 0 and is counted apart.
func matchLatencies(sent []sentEvent, received map[string]time.Time) (lat []time.Duration, missing, early int) {
	for _, s := range sent {
		r, ok := received[s.id]
		if !ok {
			missing++
			continue
		}
		d := r.Sub(s.returned)
		if d < 0 {
			early++
			d = 0
		}
		lat = append(lat, d)
	}
	return lat, missing, early
}

// finish decides validity and which goals the figures meet.
func (rep *scaleReport) finish() {
	in, l := rep.Idle, rep.Latency
	rep.Met = map[string]bool{
		"idle_calls_per_s_per_tenant": in.PerTenant <= goalIdleCallsPerTenant,
		"inbox_rss_mib":               in.InboxPeakRSSMiB <= goalScaleInboxRSSMiB,
		"inbox_calls_per_s":           in.Calls.PerS <= goalScaleInboxCallsPS,
		"latency_p99_ms":              l.Received > 0 && l.LatencyMS.P99 <= goalScaleP99MS,
	}
	rep.Problems = scaleProblems(rep.Tenants, in, l)
	rep.Valid = len(rep.Problems) == 0
}

// minWaitingShare is the share of the polls that must stay in flight throughout the idle
// window for its calls to be, roughly, those of the tenants it names. Fewer in flight and
// failed pulls are figures of an overloaded inbox, down to where most polls were not waiting.
const minWaitingShare = 0.5

// maxRefusedShare is the most of the idle window's pull answers that may be failures (a
// status other than 200, or no answer) for the window to be one of waiting polls.
const maxRefusedShare = 0.5

// refusals counts the failed pulls among answers, and all of them.
func refusals(answers counts) (failed, all int) {
	for k, n := range answers {
		all += n
		if !strings.HasPrefix(k, "200") {
			failed += n
		}
	}
	return failed, all
}

// scaleProblems names what keeps the figures from measuring the case they are meant for:
// polls that were not waiting during the idle window, or a latency phase that delivered too
// little to time. Slow or refused answers are figures, not problems.
func scaleProblems(tenants int, in scaleIdle, l scaleLatency) []string {
	var out []string
	if in.InFlightMax == 0 {
		out = append(out, "no poll was in flight during the idle window")
	} else if float64(in.InFlightMin) < minWaitingShare*float64(tenants) {
		out = append(out, fmt.Sprintf("as few as %d of %d polls were in flight during the idle window: the calls count fewer waiting tenants than it says", in.InFlightMin, tenants))
	}
	if failed, all := refusals(in.Answers); failed > 0 && float64(failed) > maxRefusedShare*float64(all) {
		out = append(out, fmt.Sprintf("%d of the %d pulls answered in the idle window failed: the polls were retrying, not waiting", failed, all))
	}
	if in.Calls.Seconds <= 0 {
		out = append(out, "no idle window")
	}
	if l.Sent == 0 {
		out = append(out, "no event accepted in the latency phase")
	} else if l.Received*2 < l.Sent {
		out = append(out, fmt.Sprintf("only %d of %d events reached a poll", l.Received, l.Sent))
	}
	return out
}

func printScale(w io.Writer, rep scaleReport) {
	in, l := rep.Idle, rep.Latency
	fmt.Fprintf(w, "\nscale: %d tenants, one long poll each (wait_seconds %d, re-polled at once) parked on inbox replica 1 of 2; load average %s -> %s; %.0f s\n",
		rep.Tenants, rep.WaitSeconds, rep.LoadAvg.Start, rep.LoadAvg.End, rep.Seconds)
	fmt.Fprintf(w, "setup: %d tenants via keys-admin at %.1f/s, %d straight into the tables at %.1f/s; polls opened in %.1f s\n\n",
		rep.Setup.APITenants, rep.Setup.APIPerS, rep.Setup.DirectTenants, rep.Setup.DirectPerS, rep.Setup.RampSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tfigure\tgoal\t")
	fmt.Fprintf(tw, "inbox DynamoDB calls/s, before the polls\t%.1f\t\t\n", rep.Baseline.PerS)
	fmt.Fprintf(tw, "inbox DynamoDB calls/s, %d waiting\t%.1f\t<= %d: %s\t\n", rep.Tenants, in.Calls.PerS, goalScaleInboxCallsPS, metWord(rep.Met["inbox_calls_per_s"]))
	fmt.Fprintf(tw, "per waiting tenant\t%.3f\t<= %.2f: %s\t\n", in.PerTenant, goalIdleCallsPerTenant, metWord(rep.Met["idle_calls_per_s_per_tenant"]))
	fmt.Fprintf(tw, "inbox peak RSS\t%.1f MiB\t<= %d MiB: %s\t\n", in.InboxPeakRSSMiB, goalScaleInboxRSSMiB, metWord(rep.Met["inbox_rss_mib"]))
	failed, all := refusals(in.Answers)
	fmt.Fprintf(tw, "pulls answered in the idle window that failed\t%d of %d\t\t\n", failed, all)
	fmt.Fprintf(tw, "delivery p50 / p99 (%d events)\t%.1f / %.1f ms\tp99 <= %d ms: %s\t\n", l.Received, l.LatencyMS.P50, l.LatencyMS.P99, goalScaleP99MS, metWord(rep.Met["latency_p99_ms"]))
	_ = tw.Flush()
	fmt.Fprintf(w, "\nidle window %.0f s: calls/s by kind %s\n", in.Calls.Seconds, describeCalls(in.Calls.ByKind))
	fmt.Fprintf(w, "inbox while idle: peak RSS %.1f MiB; at the end, heap live %.1f MiB (in use, with garbage, %.1f MiB), %d goroutines\n",
		in.InboxIdlePeakRSSMiB, in.InboxHeapLiveMiB, in.InboxHeapInuseMiB, in.InboxGoroutines)
	fmt.Fprintf(w, "pulls in flight %d-%d; pull answers %v; cores %v; the bench's own peak RSS %.1f MiB\n",
		in.InFlightMin, in.InFlightMax, map[string]int(in.Answers), in.CPUCores, in.BenchPeakRSSMiB)
	fmt.Fprintf(w, "latency: %d sample tenants, %.0f events/s for %.0f s: %d sent, %d received (%d before the 202 returned), %d missing, %d POST errors; pull answers %v\n",
		l.SampleTenants, l.Rate, l.Seconds, l.Sent, l.Received, l.AnsweredBefore202, l.Missing, l.PostErrors, map[string]int(l.Answers))
	b, err := json.Marshal(map[string]any{
		"bench": rep.Bench, "tenants": rep.Tenants, "idle_calls_per_s": in.Calls.PerS, "baseline_calls_per_s": rep.Baseline.PerS,
		"calls_per_s_per_waiting_tenant": in.PerTenant, "inbox_peak_rss_mib": in.InboxPeakRSSMiB,
		"latency_p50_ms": l.LatencyMS.P50, "latency_p99_ms": l.LatencyMS.P99, "met": rep.Met, "valid": rep.Valid,
		"load_average": rep.LoadAvg, "suite_seconds": rep.Seconds,
	})
	if err == nil {
		fmt.Fprintf(w, "%s\n", b)
	}
}

func metWord(met bool) string {
	if met {
		return "met"
	}
	return "not met"
}
