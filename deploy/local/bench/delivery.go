package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
	"github.com/trigger-api/trigger-api/pkg/ddb"
)

// Issue 3's goals, reported next to the figures and never enforced.
const (
	goalP50MS           = 50
	goalP99MS           = 250
	goalDrainOverIngest = 0.5
)

const (
	// preloadBatch is the most events POST /events/batch takes in one call.
	preloadBatch = api.MaxBatchEvents
	// preloadInFlight keeps the preload quick without it becoming a benchmark of its own.
	preloadInFlight = 8
	// maxInFlight bounds the steady producer's outstanding requests: if ingest stalls the
	// producer skips ticks (and counts them) rather than piling up goroutines.
	maxInFlight = 64
	// probeInterval is how often a drain asks whether the inbox is empty: the resolution of
	// its end time.
	probeInterval = 100 * time.Millisecond
	maxReplicas   = 16
	// maxWorkerBatch is the most events the inbox leases in one pull.
	maxWorkerBatch = api.MaxPullEvents
)

type deliveryOptions struct {
	rate         float64
	latency      time.Duration
	lead         time.Duration
	drainEvents  int
	replicas     string
	drainTimeout time.Duration
	rehearse     bool
	out          string
	// concurrency and batchSize set the worker's TRIGGER_CONCURRENCY and TRIGGER_BATCH_SIZE;
	// 0 keeps the worker's defaults, which the chart deploys.
	concurrency int
	batchSize   int
}

func (d deliveryOptions) validate() error {
	if d.rate <= 0 || d.rate > 1000 {
		return fmt.Errorf("-rate %v: want more than 0 and at most 1000 events/s", d.rate)
	}
	if d.latency <= 0 || d.lead < 0 || d.drainTimeout <= 0 {
		return errors.New("-latency-duration and -drain-timeout must be positive, -latency-lead not negative")
	}
	if d.drainEvents < 1 {
		return errors.New("-drain-events must be positive")
	}
	if d.concurrency < 0 || d.concurrency > 1000 || d.batchSize < 0 || d.batchSize > maxWorkerBatch {
		return errors.New("-worker-concurrency must be from 0 to 1000 and -worker-batch-size from 0 to 100 (0: the worker's default)")
	}
	_, err := parseReplicas(d.replicas)
	return err
}

// parseReplicas reads -drain-replicas: a comma-separated list of replica counts.
func parseReplicas(s string) ([]int, error) {
	out, ok := commaInts(s, 1, maxReplicas)
	if !ok {
		return nil, fmt.Errorf("-drain-replicas %q: want counts from 1 to %d, comma-separated", s, maxReplicas)
	}
	return out, nil
}

// commaInts reads comma-separated integers, each from lo to hi; false when one is not.
func commaInts(s string, lo, hi int) ([]int, bool) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < lo || n > hi {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

// workerKind is how a worker replica is configured; everything not named keeps the worker's
// default, as the chart deploys it.
type workerKind struct {
	Name         string `json:"name"`
	WaitSeconds  int    `json:"wait_seconds"`
	PollInterval string `json:"poll_interval"`
}

var (
	longPollWorker = workerKind{Name: "long-poll", WaitSeconds: 20, PollInterval: "1s"}
	// As the seed's worker: a plain pull every 2 s while the inbox is empty.
	pollWorker = workerKind{Name: "poll-2s", WaitSeconds: 0, PollInterval: "2s"}
)

func (k workerKind) pollInterval() time.Duration {
	d, _ := time.ParseDuration(k.PollInterval)
	return d
}

// ingestFigure is the ingest suite's POST /events rate, when it ran in the same run.
type ingestFigure struct {
	EventsPerS  float64 `json:"events_per_s"`
	Valid       bool    `json:"valid"`
	Concurrency int     `json:"concurrency"`
	// CPUMicrosPerEvent is the ingest service's CPU per event written; 0 when the bench did
	// not run it (-ingest-url).
	CPUMicrosPerEvent float64 `json:"service_cpu_us_per_event,omitempty"`
}

// deliveryRig is the delivery suite's share of the rig: the inbox service and the clients.
type deliveryRig struct {
	*rig
	opts  deliveryOptions
	inbox *child
	http  *http.Client
	body  []byte
}

// tenantClient is the API client of one tenant's key, over the bench's connection pool. Every
// call is made once, whatever the client's retry rules: a retry would time two attempts as one
// round trip, or a refused preload call as a slow one.
func (d *deliveryRig) tenantClient(key string) (*client.Client, error) {
	return client.New(d.ingest.url, key, client.WithHTTPClient(d.http), client.WithRetries(0))
}

// runDelivery drains first and measures latency after: the drains run right after the
// ingest suite, so their ratio compares rates taken under the same conditions, and they warm
// DynamoDB Local's lease and ack paths before the latencies are taken.
func runDelivery(ctx context.Context, o options, r *rig, ingest *ingestFigure, stdout io.Writer) error {
	d := o.delivery
	replicas, err := parseReplicas(d.replicas)
	if err != nil {
		return err
	}
	inbox, err := r.startInbox(ctx, o, "inbox.log")
	if err != nil {
		return err
	}
	defer inbox.stop()
	r.logf("inbox listening on %s (log: %s)", inbox.url, inbox.LogPath())
	dr := &deliveryRig{rig: r, opts: d, inbox: inbox, http: loadClient(maxInFlight), body: eventBody(o.bodyBytes)}
	defer dr.http.CloseIdleConnections()

	rep := deliveryReport{
		Bench: "delivery", Started: time.Now().UTC().Format(time.RFC3339), Go: runtime.Version(),
		CPUs: runtime.NumCPU(), DynamoDB: r.ddbDesc, BodyBytes: len(dr.body), Ingest: ingest,
		Goals:    deliveryGoals{P50MS: goalP50MS, P99MS: goalP99MS, DrainOverIngest: goalDrainOverIngest},
		LoadAvg1: loadPair{Start: loadAvg1()},
		Method:   deliveryMethod,
		Worker:   workerSettings{Concurrency: settingOrDefault(d.concurrency), BatchSize: settingOrDefault(d.batchSize)},
	}
	if d.rehearse && len(replicas) > 0 {
		// The ingest suite's rate comes after a warm-up; a drain on a DynamoDB Local that has
		// not yet run lease and ack at this pace would be measured against it cold.
		n := slices.Max(replicas)
		dr.logf("drain rehearsal: the store drains %d events with %d puller(s), unmeasured", d.drainEvents, n)
		reh, err := dr.storeDrain(ctx, "bench-drain-rehearsal", n, d)
		if err != nil {
			return fmt.Errorf("drain rehearsal: %w", err)
		}
		rep.RehearsalEvents = reh.Events
	}
	var errs []error
	for i, n := range replicas {
		tenantID := fmt.Sprintf("bench-drain-%d-%d", i+1, n)
		res, err := dr.drain(ctx, tenantID, n, d)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("drain with %d replicas: %w", n, err))
			continue
		}
		r.logf("drain %d replica(s): %d events in %.2fs after %.0f ms start-up = %.1f events/s (complete %v, redeliveries %d)",
			n, res.Events, res.RunningSeconds, res.StartupMS, res.EventsPerS, res.Complete, res.Redeliveries)
		r.logf("drain %d replica(s): the inbox's DynamoDB calls per event: %s", n, describeCalls(res.InboxCallsPerEvent))
		store, err := dr.storeDrain(ctx, fmt.Sprintf("bench-store-drain-%d-%d", i+1, n), n, d)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("store drain with %d pullers: %w", n, err))
		} else {
			res.Store = &store
			r.logf("store drain %d puller(s): %d events in %.2fs = %.1f events/s (complete %v); DynamoDB calls per event: %s",
				n, store.Events, store.Seconds, store.EventsPerS, store.Complete, describeCalls(store.CallsPerEvent))
		}
		res.ratio(ingest)
		rep.Drain = append(rep.Drain, res)
	}
	for _, k := range []workerKind{longPollWorker, pollWorker} {
		res, err := dr.latency(ctx, "bench-latency-"+k.Name, k, d)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("latency, %s worker: %w", k.Name, err))
			continue
		}
		rep.Latency = append(rep.Latency, res)
		r.logf("latency %-9s p50 %7.1f ms  p99 %7.1f ms  (%d events, %d missing)", k.Name, res.LatencyMS.P50, res.LatencyMS.P99, res.Events, res.Missing)
	}
	rep.LoadAvg1.End = loadAvg1()
	rep.finish()

	if err := writeReport(r.path(d.out), rep); err != nil {
		return err
	}
	printDeliveryTable(stdout, rep, d)
	b, err := json.Marshal(rep.summary())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", b)
	if !rep.Valid {
		errs = append(errs, fmt.Errorf("a delivery phase lost events or failed to ingest; the figures are not a measurement (see %s and the worker logs in %s)", inbox.LogPath(), r.cacheDir))
	}
	return errors.Join(errs...)
}

// deliveryMethod says in the report how its figures were taken.
const deliveryMethod = "latency_ms: the worker's own log time of its \"processing event\" line (millisecond resolution) " +
	"minus the time POST /events returned 202 to the bench, one machine clock; read_latency_ms: the time the bench read " +
	"that line from the worker's output instead. Drain: events loaded by POST /events/batch, then the replicas start; " +
	"the drain ends at the first probe (every 100 ms) that finds the tenant's inbox index empty, i.e. every event acked."

// startWorkers runs n replicas of the worker on one key, each with its own log, all feeding
// rec with their lines.
func (d *deliveryRig) startWorkers(phase string, n int, key string, k workerKind, rec *receipts) ([]*child, error) {
	env := childEnv(
		"TRIGGER_INBOX_URL="+d.inbox.url, "TRIGGER_API_KEYS="+key, "TRIGGER_LOG_LEVEL=info",
		"TRIGGER_WAIT_SECONDS="+strconv.Itoa(k.WaitSeconds), "TRIGGER_POLL_INTERVAL="+k.PollInterval,
		// Nothing is in hand when the bench stops a worker; this only bounds a stuck stop.
		"TRIGGER_SHUTDOWN_TIMEOUT=5s",
	)
	if d.opts.concurrency > 0 {
		env = append(env, "TRIGGER_CONCURRENCY="+strconv.Itoa(d.opts.concurrency))
	}
	if d.opts.batchSize > 0 {
		env = append(env, "TRIGGER_BATCH_SIZE="+strconv.Itoa(d.opts.batchSize))
	}
	var out []*child
	for i := range n {
		logPath := filepath.Join(d.cacheDir, fmt.Sprintf("worker-%s-%d.log", phase, i+1))
		c, err := spawn("worker", filepath.Join(d.binDir, "worker"), nil, env, logPath, rec.observe)
		if err != nil {
			stopAll(out)
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func anyExited(cs []*child) *child {
	for _, c := range cs {
		if c.Exited() {
			return c
		}
	}
	return nil
}

// cpuGroups names the processes whose CPU a delivery phase reports.
func (d *deliveryRig) cpuGroups(workers []*child) []cpuGroup {
	w := make([]int, len(workers))
	for i, c := range workers {
		w[i] = c.Pid()
	}
	return []cpuGroup{
		{"bench", []int{os.Getpid()}},
		{"ingest", []int{d.ingest.Pid()}},
		{"inbox", []int{d.inbox.Pid()}},
		{"worker", w},
		{"dynamodb_local", []int{d.ddbPID}},
	}
}

// latency sends events at a steady pace through ingest to a fresh tenant that one worker of
// kind k consumes, and times each from its 202 to the worker's log line for it.
func (d *deliveryRig) latency(ctx context.Context, tenantID string, k workerKind, o deliveryOptions) (latencyReport, error) {
	rep := latencyReport{Worker: k, TargetRate: o.rate, LoadAvg1: loadPair{Start: loadAvg1()}}
	key, err := seed(ctx, d.client, d.tables, tenantID)
	if err != nil {
		return rep, err
	}
	pub, err := d.tenantClient(key)
	if err != nil {
		return rep, err
	}
	rec := newReceipts()
	workers, err := d.startWorkers("latency-"+k.Name, 1, key, k, rec)
	if err != nil {
		return rep, err
	}
	defer stopAll(workers)
	groups := d.cpuGroups(workers)

	var before groupSnapshot
	var measureStart time.Time
	send := publishID(pub, d.body)
	d.logf("latency %s: %v/s for %v, the first %v not counted", k.Name, o.rate, o.lead+o.latency, o.lead)
	p := steadyLoad(ctx, o.rate, o.lead, o.latency, send, func() {
		measureStart = time.Now()
		before = snapshotGroups(groups)
	})
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if len(p.sent) == 0 {
		return rep, fmt.Errorf("no event accepted by ingest (see %s): %v", d.ingest.LogPath(), p.firstErr)
	}

	// The poller may have just missed the last events; allow it a few of its cycles.
	ids := make([]string, len(p.sent))
	for i, s := range p.sent {
		ids[i] = s.id
	}
	deadline := time.Now().Add(3*k.pollInterval() + 5*time.Second)
	for rec.countOf(ids) < len(ids) && time.Now().Before(deadline) {
		if c := anyExited(workers); c != nil {
			return rep, fmt.Errorf("worker exited (see %s)", c.LogPath())
		}
		if err := client.Sleep(ctx, 50*time.Millisecond); err != nil {
			return rep, err
		}
	}
	after := snapshotGroups(groups)
	rep.CPUCores = after.cores(before, groups, time.Since(measureStart))
	rep.LoadAvg1.End = loadAvg1()

	v := rec.snapshot()
	byLog, byRead, missing, negative := deliveryLatencies(p.sent, v.first)
	rep.Seconds = round(p.wall.Seconds(), 3)
	rep.Events = len(p.sent)
	rep.SentRate = round(float64(len(p.sent))/p.wall.Seconds(), 1)
	rep.Received, rep.Missing, rep.LoggedBefore202 = len(byLog), missing, negative
	rep.Errors, rep.Skipped = p.errors, p.skipped
	if p.firstErr != nil {
		rep.FirstError = p.firstErr.Error()
	}
	rep.Redeliveries, rep.WorkerWarnings, rep.FirstWarning = v.redeliveries, v.warnings, v.firstWarning
	rep.LatencyMS = summarise(byLog)
	rep.ReadLatencyMS = summarise(byRead)
	rep.IngestMS = summarise(p.roundTrips)
	return rep, nil
}

// loadTenant creates tenantID with a key and loads the drain's events into its inbox through
// ingest; what names the phase in the log.
func (d *deliveryRig) loadTenant(ctx context.Context, tenantID, what string, o deliveryOptions) (key string, pre preloadReport, err error) {
	if key, err = seed(ctx, d.client, d.tables, tenantID); err != nil {
		return "", pre, err
	}
	pub, err := d.tenantClient(key)
	if err != nil {
		return "", pre, err
	}
	d.logf("%s: loading %d events through POST /events/batch", what, o.drainEvents)
	if pre, err = preload(ctx, pub, d.body, o.drainEvents); err != nil {
		return "", pre, fmt.Errorf("preload (see %s): %w", d.ingest.LogPath(), err)
	}
	return key, pre, nil
}

// drain loads n events into a fresh tenant's inbox, then starts replicas workers on it and
// times them until every event is acknowledged.
func (d *deliveryRig) drain(ctx context.Context, tenantID string, replicas int, o deliveryOptions) (drainReport, error) {
	rep := drainReport{Replicas: replicas, LoadAvg1: loadPair{Start: loadAvg1()}}
	key, pre, err := d.loadTenant(ctx, tenantID, fmt.Sprintf("drain %d replica(s)", replicas), o)
	rep.Preload = pre
	if err != nil {
		return rep, err
	}
	rep.Events = rep.Preload.Accepted
	if left, err := d.unacked(ctx, tenantID); err != nil || !left {
		return rep, fmt.Errorf("the loaded inbox looks empty before any worker ran (err %v)", err)
	}

	// The inbox's own count of its DynamoDB calls: what a drained event costs, in calls,
	// whatever the machine's speed.
	callsBefore, err := scrapeDDBCalls(ctx, d.http, d.inbox.internalURL)
	if err != nil {
		return rep, fmt.Errorf("inbox metrics: %w", err)
	}
	rec := newReceipts()
	start := time.Now()
	workers, err := d.startWorkers(fmt.Sprintf("drain-%d", replicas), replicas, key, longPollWorker, rec)
	if err != nil {
		return rep, err
	}
	defer stopAll(workers)
	groups := d.cpuGroups(workers)
	before, cpuFrom := snapshotGroups(groups), time.Now()

	deadline := start.Add(o.drainTimeout)
	var end time.Time
	for end.IsZero() && time.Now().Before(deadline) {
		if err := client.Sleep(ctx, probeInterval); err != nil {
			return rep, err
		}
		if c := anyExited(workers); c != nil {
			return rep, fmt.Errorf("worker exited (see %s)", c.LogPath())
		}
		left, err := d.unacked(ctx, tenantID)
		if err != nil {
			return rep, err
		}
		if !left {
			end = time.Now()
		}
	}
	rep.Complete = !end.IsZero()
	if !rep.Complete {
		end = time.Now()
	}
	after := snapshotGroups(groups)
	rep.LoadAvg1.End = loadAvg1()
	callsAfter, err := scrapeDDBCalls(ctx, d.http, d.inbox.internalURL)
	if err != nil {
		return rep, fmt.Errorf("inbox metrics: %w", err)
	}
	rep.InboxCallsPerEvent = callsAfter.perEventSince(callsBefore, rep.Events)

	v := rec.snapshot()
	rep.Received = len(v.first)
	rep.Redeliveries, rep.WorkerWarnings, rep.FirstWarning = v.redeliveries, v.warnings, v.firstWarning
	rep.drainTimes(start, end, v)
	rep.Timeline = receiptTimeline(v, timelineBucket)
	wall := end.Sub(cpuFrom)
	rep.CPUCores = after.cores(before, groups, wall)
	if rep.Events > 0 {
		rep.CPUMicrosPerEvent = perEvent(rep.CPUCores, wall, rep.Events)
	}
	return rep, nil
}

// unacked reports whether the tenant's inbox index still holds an entry. The index is sparse:
// an event leaves it only when acknowledged (or dead-lettered), while a leased one stays with
// a future sort key. GET /inbox would not do: it lists only visible events, so it is empty as
// soon as everything is leased, before anything is acked. The key layout is the adapter's,
// for a tenant of one partition.
func (d *deliveryRig) unacked(ctx context.Context, tenantID string) (bool, error) {
	out, err := d.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(d.tables.Events),
		IndexName:                 aws.String(ddb.InboxIndex),
		KeyConditionExpression:    aws.String("inbox_pk = :pk"),
		ExpressionAttributeValues: ddb.Item{":pk": ddb.S(tenantID + "#0")},
		Select:                    types.SelectCount,
		Limit:                     aws.Int32(1),
	})
	if err != nil {
		return false, fmt.Errorf("probe the inbox index: %w", err)
	}
	return out.Count > 0, nil
}

// sendFunc sends one event and returns its id.
type sendFunc func(ctx context.Context) (string, error)

// steadyResult is what a steady load produced during its measured window.
type steadyResult struct {
	sent       []sentEvent // accepted events sent in the measured window
	roundTrips []time.Duration
	errors     int
	firstErr   error
	skipped    int // ticks with maxInFlight requests already outstanding
	wall       time.Duration
}

// steadyLoad sends rate events per second for lead+measure, keeping to a fixed schedule
// whatever the responses take (an open loop, as independent producers behave), and keeps the
// events sent after lead. onMeasure runs once, as the measured window opens.
func steadyLoad(ctx context.Context, rate float64, lead, measure time.Duration, send sendFunc, onMeasure func()) steadyResult {
	var (
		out steadyResult
		mu  sync.Mutex
		wg  sync.WaitGroup
	)
	interval := time.Duration(float64(time.Second) / rate)
	sem := make(chan struct{}, maxInFlight)
	// A request under way finishes even if the bench is interrupted, so its result is whole.
	opCtx := context.WithoutCancel(ctx)
	start := time.Now()
	measuring := false
	var measureStart time.Time
	for i := 0; ; i++ {
		offset := time.Duration(i) * interval
		if offset >= lead+measure {
			break
		}
		if err := client.Sleep(ctx, time.Until(start.Add(offset))); err != nil {
			break
		}
		counted := offset >= lead
		if counted && !measuring {
			measuring = true
			// The schedule's time, not the loop's: a late wake-up on a busy machine must not
			// shorten the window the rate is taken over.
			measureStart = start.Add(lead)
			if onMeasure != nil {
				onMeasure()
			}
		}
		select {
		case sem <- struct{}{}:
		default:
			if counted {
				out.skipped++
			}
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t0 := time.Now()
			id, err := send(opCtx)
			t1 := time.Now()
			if !counted {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.errors++
				if out.firstErr == nil {
					out.firstErr = err
				}
				return
			}
			out.sent = append(out.sent, sentEvent{id: id, sent: t0, returned: t1})
			out.roundTrips = append(out.roundTrips, t1.Sub(t0))
		})
	}
	wg.Wait()
	if measuring {
		out.wall = time.Since(measureStart)
	}
	return out
}

// publishID returns a send that publishes one event and returns the id the 202 gave it.
func publishID(pub *client.Client, body []byte) sendFunc {
	return func(ctx context.Context) (string, error) {
		accepted, _, err := pub.Publish(ctx, body, "")
		if err != nil {
			return "", err
		}
		if accepted.EventID == "" {
			return "", errors.New("POST /events: no event_id in the answer")
		}
		return accepted.EventID, nil
	}
}

// batchOf is a POST /events/batch of n copies of event; each copy becomes its own event with
// its own id.
func batchOf(event []byte, n int) []json.RawMessage {
	out := make([]json.RawMessage, n)
	for i := range out {
		out[i] = event
	}
	return out
}

// batchFailure says how many of a batch's k events failed, and why the first one did.
func batchFailure(out api.BatchAnswer, k int) error {
	for _, r := range out.Results {
		if r.Error != nil {
			return fmt.Errorf("POST /events/batch: %d of %d events failed, the first with %s: %s", out.FailedCount, k, r.Error.Code, r.Error.Message)
		}
	}
	return fmt.Errorf("POST /events/batch: %d of %d events failed", out.FailedCount, k)
}

// batchSizes splits n events into POST /events/batch calls.
func batchSizes(n int) []int {
	var out []int
	for n > 0 {
		k := min(n, preloadBatch)
		out = append(out, k)
		n -= k
	}
	return out
}

// preload ingests n events through POST /events/batch, a few calls in flight.
func preload(ctx context.Context, pub *client.Client, event []byte, n int) (preloadReport, error) {
	rep := preloadReport{Method: "POST /events/batch", BatchSize: preloadBatch, InFlight: preloadInFlight}
	jobs := make(chan int)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range preloadInFlight {
		wg.Go(func() {
			for k := range jobs {
				out, err := pub.PublishBatch(ctx, batchOf(event, k))
				mu.Lock()
				switch {
				case err != nil:
					rep.Failed += k
					firstErr = cmp.Or(firstErr, err)
				default:
					rep.Accepted += len(out.Results) - out.FailedCount
					rep.Failed += out.FailedCount
					if out.FailedCount > 0 {
						firstErr = cmp.Or(firstErr, batchFailure(out, k))
					}
				}
				mu.Unlock()
			}
		})
	}
	for _, k := range batchSizes(n) {
		select {
		case jobs <- k:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	wall := time.Since(start)
	rep.Seconds = round(wall.Seconds(), 3)
	rep.EventsPerS = round(float64(rep.Accepted)/wall.Seconds(), 1)
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if rep.Failed > 0 {
		return rep, firstErr
	}
	return rep, nil
}
