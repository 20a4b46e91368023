package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// cpuGroup is a named set of processes whose CPU time is reported together, such as the
// replicas of the worker. A pid of 0 is unknown and counts nothing.
type cpuGroup struct {
	name string
	pids []int
}

// groupSnapshot is the cumulative CPU time of each group, in the groups' order, and of the
// whole machine; ok is false where /proc is unavailable.
type groupSnapshot struct {
	ok     bool
	per    []time.Duration
	system systemCPU
}

func snapshotGroups(groups []cpuGroup) groupSnapshot {
	var s groupSnapshot
	var err error
	if s.system, err = readSystemCPU(); err != nil {
		return s
	}
	s.ok = true
	s.per = make([]time.Duration, len(groups))
	for i, g := range groups {
		for _, pid := range g.pids {
			if pid == 0 {
				continue
			}
			// A process that has gone reads as nothing; snapshots are taken while all run.
			d, _ := procCPU(pid)
			s.per[i] += d
		}
	}
	return s
}

// cores is each group's CPU between two snapshots over the wall time between them: the
// cores it kept busy. "other" is the rest of the machine's busy time, "idle" its idle time.
func (s groupSnapshot) cores(before groupSnapshot, groups []cpuGroup, wall time.Duration) map[string]float64 {
	if !s.ok || !before.ok || wall <= 0 || len(s.per) != len(groups) || len(before.per) != len(groups) {
		return nil
	}
	out := make(map[string]float64, len(groups)+2)
	var attributed time.Duration
	for i, g := range groups {
		d := s.per[i] - before.per[i]
		attributed += d
		out[g.name] = round(d.Seconds()/wall.Seconds(), 2)
	}
	busy := s.system.busy - before.system.busy
	// Per-process and machine counters tick independently, so the difference can dip below
	// zero by a tick or two.
	out["other"] = round(max(busy-attributed, 0).Seconds()/wall.Seconds(), 2)
	out["idle"] = round((s.system.idle-before.system.idle).Seconds()/wall.Seconds(), 2)
	return out
}

// perEvent turns cores over wall into CPU microseconds per event.
func perEvent(cores map[string]float64, wall time.Duration, events int) map[string]float64 {
	if cores == nil || events == 0 {
		return nil
	}
	out := make(map[string]float64, len(cores))
	for k, v := range cores {
		if k == "idle" {
			continue
		}
		out[k] = round(v*wall.Seconds()*1e6/float64(events), 0)
	}
	return out
}

type latencyReport struct {
	Worker     workerKind `json:"worker"`
	TargetRate float64    `json:"target_rate_per_s"`
	SentRate   float64    `json:"sent_rate_per_s"`
	Seconds    float64    `json:"seconds"`
	// Events were accepted in the measured window; Received of them reached the worker.
	Events   int `json:"events"`
	Received int `json:"received"`
	Missing  int `json:"missing"`
	// LoggedBefore202 counts events the worker logged before their 202 reached the bench.
	LoggedBefore202 int          `json:"logged_before_202"`
	Errors          int          `json:"errors"`
	FirstError      string       `json:"first_error,omitempty"`
	Skipped         int          `json:"skipped"`
	Redeliveries    int          `json:"redeliveries"`
	WorkerWarnings  int          `json:"worker_warnings"`
	FirstWarning    string       `json:"first_warning,omitempty"`
	LatencyMS       latencyStats `json:"latency_ms"`
	ReadLatencyMS   latencyStats `json:"read_latency_ms"`
	// IngestMS is the POST /events round trip of the same events.
	IngestMS latencyStats       `json:"ingest_ms"`
	CPUCores map[string]float64 `json:"cpu_cores,omitempty"`
	LoadAvg1 loadPair           `json:"load_avg_1m"`
}

type preloadReport struct {
	Method     string  `json:"method"`
	BatchSize  int     `json:"batch_size"`
	InFlight   int     `json:"in_flight"`
	Accepted   int     `json:"accepted"`
	Failed     int     `json:"failed"`
	Seconds    float64 `json:"seconds"`
	EventsPerS float64 `json:"events_per_s"`
}

type drainReport struct {
	Replicas int           `json:"replicas"`
	Preload  preloadReport `json:"preload"`
	Events   int           `json:"events"`
	Complete bool          `json:"complete"`
	// Seconds runs from starting the replicas to the first probe that found every event
	// acknowledged. StartupMS is its share before the first replica logged "running" (process
	// start, configuration), which a long-running deployment does not pay per event, so
	// EventsPerS is Events over RunningSeconds, the rest; EventsPerSWithStartup over Seconds.
	Seconds               float64 `json:"seconds"`
	StartupMS             float64 `json:"startup_ms"`
	RunningSeconds        float64 `json:"running_seconds"`
	EventsPerS            float64 `json:"events_per_s"`
	EventsPerSWithStartup float64 `json:"events_per_s_with_startup"`
	// FirstReceiptMS is when the first event was received and LastReceiptSeconds when the
	// last distinct one was, both by the workers' log times and counted from "running".
	FirstReceiptMS     float64 `json:"first_receipt_ms"`
	LastReceiptSeconds float64 `json:"last_receipt_seconds"`
	ReceivedPerS       float64 `json:"received_per_s"`
	Received           int     `json:"received"`
	Redeliveries       int     `json:"redeliveries"`
	WorkerWarnings     int     `json:"worker_warnings"`
	FirstWarning       string  `json:"first_warning,omitempty"`
	// DrainOverIngest is EventsPerS over the ingest suite's POST /events rate of this run.
	DrainOverIngest float64 `json:"drain_over_ingest,omitempty"`
	GoalMet         *bool   `json:"goal_met,omitempty"`
	// Store is the baseline drained right after, by the events store alone, and OverStore
	// this drain's EventsPerS over the baseline's: what the inbox and workers leave of it.
	Store     *storeDrainReport `json:"store_drain,omitempty"`
	OverStore float64           `json:"drain_over_store_drain,omitempty"`
	// CPUBoundOverIngest is the ingest service's CPU per event over the inbox's per drained
	// event: the drain/ingest ratio that one CPU for each inbox and each ingest replica allows
	// where DynamoDB is not the bound (DynamoDB Local is, on this machine).
	CPUBoundOverIngest float64            `json:"cpu_bound_drain_over_ingest,omitempty"`
	CPUCores           map[string]float64 `json:"cpu_cores,omitempty"`
	CPUMicrosPerEvent  map[string]float64 `json:"cpu_us_per_event,omitempty"`
	// InboxCallsPerEvent is the inbox's DynamoDB calls during the drain per event, by
	// "Operation outcome", from its trigger.dynamodb.call.duration counts.
	InboxCallsPerEvent map[string]float64 `json:"inbox_dynamodb_calls_per_event,omitempty"`
	// Timeline is the first-receipt rate (events/s) of each 5 s from "running"; the last
	// bucket is usually partial.
	Timeline []float64 `json:"receipts_per_s_by_5s,omitempty"`
	LoadAvg1 loadPair  `json:"load_avg_1m"`
}

// drainTimes derives the drain's durations and rates. start (the replicas were started) and
// end (the probe that found the inbox empty, or the deadline) are the bench's times; v's are
// the workers' log times, read from the same machine clock.
func (d *drainReport) drainTimes(start, end time.Time, v receiptsView) {
	from := start
	if !v.running.IsZero() && v.running.After(start) && v.running.Before(end) {
		from = v.running
	}
	d.Seconds = round(end.Sub(start).Seconds(), 3)
	d.StartupMS = msOf(from.Sub(start))
	d.RunningSeconds = round(end.Sub(from).Seconds(), 3)
	if d.Complete && d.Events > 0 {
		d.EventsPerS = round(float64(d.Events)/end.Sub(from).Seconds(), 1)
		d.EventsPerSWithStartup = round(float64(d.Events)/end.Sub(start).Seconds(), 1)
	}
	if first := v.earliest(); !first.IsZero() {
		d.FirstReceiptMS = msOf(first.Sub(from))
		d.LastReceiptSeconds = round(v.last.Sub(from).Seconds(), 3)
		if v.last.After(from) {
			d.ReceivedPerS = round(float64(len(v.first))/v.last.Sub(from).Seconds(), 1)
		}
	}
}

func msOf(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1) }

// ratio compares the drain with the ingest rate, when one was measured in this run.
func (d *drainReport) ratio(ingest *ingestFigure) {
	if !d.Complete {
		return
	}
	if s := d.Store; s != nil && s.Complete && s.EventsPerS > 0 {
		d.OverStore = round(d.EventsPerS/s.EventsPerS, 3)
		if ingest != nil && ingest.EventsPerS > 0 {
			s.OverIngest = round(s.EventsPerS/ingest.EventsPerS, 3)
		}
	}
	if ingest == nil || ingest.EventsPerS <= 0 {
		return
	}
	if inbox := d.CPUMicrosPerEvent["inbox"]; inbox > 0 && ingest.CPUMicrosPerEvent > 0 {
		d.CPUBoundOverIngest = round(ingest.CPUMicrosPerEvent/inbox, 3)
	}
	d.DrainOverIngest = round(d.EventsPerS/ingest.EventsPerS, 3)
	met := d.DrainOverIngest >= goalDrainOverIngest
	d.GoalMet = &met
}

// workerSettings are the worker's TRIGGER_CONCURRENCY and TRIGGER_BATCH_SIZE in every phase.
type workerSettings struct {
	Concurrency string `json:"concurrency"`
	BatchSize   string `json:"batch_size"`
}

func settingOrDefault(n int) string {
	if n == 0 {
		return "default"
	}
	return strconv.Itoa(n)
}

// timelineBucket is the width of a drain's receipt timeline.
const timelineBucket = 5 * time.Second

// receiptTimeline is the rate at which distinct events were first received, per bucket from
// the first "running" line (or the first receipt): whether a drain kept one pace or sped up
// as the inbox emptied.
func receiptTimeline(v receiptsView, bucket time.Duration) []float64 {
	from := v.running
	if from.IsZero() {
		from = v.earliest()
	}
	if from.IsZero() {
		return nil
	}
	var counts []int
	for _, r := range v.first {
		i := max(int(r.logged.Sub(from)/bucket), 0)
		for len(counts) <= i {
			counts = append(counts, 0)
		}
		counts[i]++
	}
	out := make([]float64, len(counts))
	for i, n := range counts {
		out[i] = round(float64(n)/bucket.Seconds(), 1)
	}
	return out
}

type deliveryGoals struct {
	P50MS           float64 `json:"long_poll_p50_ms"`
	P99MS           float64 `json:"long_poll_p99_ms"`
	DrainOverIngest float64 `json:"drain_over_ingest"`
}

type deliveryReport struct {
	Bench     string          `json:"bench"`
	Method    string          `json:"method"`
	BodyBytes int             `json:"body_bytes"`
	Worker    workerSettings  `json:"worker"`
	Ingest    *ingestFigure   `json:"ingest,omitempty"`
	Latency   []latencyReport `json:"latency"`
	Drain     []drainReport   `json:"drain"`
	// RehearsalEvents were drained by the store, unmeasured, before the first drain.
	RehearsalEvents int           `json:"rehearsal_events,omitempty"`
	Goals           deliveryGoals `json:"goals"`
	// LatencyGoalMet is about the long-poll worker only; the 2 s poller is the baseline.
	LatencyGoalMet *bool    `json:"latency_goal_met,omitempty"`
	Valid          bool     `json:"valid"`
	CPUs           int      `json:"cpus"`
	LoadAvg1       loadPair `json:"load_avg_1m"`
	DynamoDB       string   `json:"dynamodb"`
	Go             string   `json:"go"`
	Started        string   `json:"started"`
}

// finish judges validity and the latency goal. A phase that lost events, failed to ingest
// or to drain describes failures rather than delivery.
func (r *deliveryReport) finish() {
	r.Valid = true
	for _, l := range r.Latency {
		if l.Missing > 0 || l.Events == 0 || float64(l.Errors) > maxErrorRate*float64(l.Events+l.Errors) {
			r.Valid = false
		}
		if l.Worker.Name == longPollWorker.Name && l.Missing == 0 && l.Events > 0 {
			met := l.LatencyMS.P50 <= r.Goals.P50MS && l.LatencyMS.P99 <= r.Goals.P99MS
			r.LatencyGoalMet = &met
		}
	}
	for _, d := range r.Drain {
		if !d.Complete || d.Preload.Failed > 0 {
			r.Valid = false
		}
	}
}

// deliverySummary is the one line of JSON printed after the table.
type deliverySummary struct {
	Bench            string             `json:"bench"`
	P50MS            map[string]float64 `json:"p50_ms"`
	P99MS            map[string]float64 `json:"p99_ms"`
	DrainEventsPerS  map[string]float64 `json:"drain_events_per_s"`
	IngestEventsPerS float64            `json:"ingest_events_per_s,omitempty"`
	DrainOverIngest  map[string]float64 `json:"drain_over_ingest,omitempty"`
	LatencyGoalMet   *bool              `json:"latency_goal_met,omitempty"`
	Valid            bool               `json:"valid"`
	LoadAvg1         loadPair           `json:"load_avg_1m"`
}

func (r deliveryReport) summary() deliverySummary {
	s := deliverySummary{
		Bench: r.Bench, P50MS: map[string]float64{}, P99MS: map[string]float64{}, DrainEventsPerS: map[string]float64{},
		LatencyGoalMet: r.LatencyGoalMet, Valid: r.Valid, LoadAvg1: r.LoadAvg1,
	}
	for _, l := range r.Latency {
		s.P50MS[l.Worker.Name] = l.LatencyMS.P50
		s.P99MS[l.Worker.Name] = l.LatencyMS.P99
	}
	for _, d := range r.Drain {
		k := fmt.Sprintf("%d_replicas", d.Replicas)
		s.DrainEventsPerS[k] = d.EventsPerS
		if d.DrainOverIngest > 0 {
			if s.DrainOverIngest == nil {
				s.DrainOverIngest = map[string]float64{}
			}
			s.DrainOverIngest[k] = d.DrainOverIngest
		}
	}
	if r.Ingest != nil {
		s.IngestEventsPerS = r.Ingest.EventsPerS
	}
	return s
}

// deliveryCoreNames is the column order of the CPU split.
var deliveryCoreNames = []string{"bench", "ingest", "inbox", "worker", "dynamodb_local", "other", "idle"}

func deliveryCoreCells(c map[string]float64) string {
	cells := make([]string, len(deliveryCoreNames))
	for i, n := range deliveryCoreNames {
		if v, ok := c[n]; ok {
			cells[i] = fmt.Sprintf("%.2f", v)
		} else {
			cells[i] = "-"
		}
	}
	return strings.Join(cells, "\t")
}

func printDeliveryTable(w io.Writer, r deliveryReport, o deliveryOptions) {
	fmt.Fprintf(w, "\nDelivery latency: POST /events returning 202 -> the worker logging \"processing event\" for it\n")
	fmt.Fprintf(w, "%.0f events/s for %v after %v not counted; one worker replica; body %d B; %s; %d CPUs; load average (1m) %.2f -> %.2f\n\n",
		o.rate, o.latency, o.lead, r.BodyBytes, r.DynamoDB, r.CPUs, r.LoadAvg1.Start, r.LoadAvg1.End)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "worker\tevents\tp50 ms\tp90 ms\tp99 ms\tmax ms\tread p50\tread p99\tmissing\tearly\tPOST p50\tcores: bench\tingest\tinbox\tworker\tddb-local\tother\tidle\tload\t")
	for _, l := range r.Latency {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%.1f\t%s\t%.2f\t\n",
			l.Worker.Name, l.Events, l.LatencyMS.P50, l.LatencyMS.P90, l.LatencyMS.P99, l.LatencyMS.Max,
			l.ReadLatencyMS.P50, l.ReadLatencyMS.P99, l.Missing, l.LoggedBefore202, l.IngestMS.P50,
			deliveryCoreCells(l.CPUCores), l.LoadAvg1.End)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "p50-max: the worker's own log time (1 ms resolution) minus the 202's arrival; read: when the bench read")
	fmt.Fprintln(w, "the line instead; early: logged before the 202 arrived; POST: the POST /events round trip.")
	fmt.Fprintln(w, "long-poll: TRIGGER_WAIT_SECONDS=20; poll-2s: TRIGGER_WAIT_SECONDS=0, TRIGGER_POLL_INTERVAL=2s (the seed's pace).")

	if len(r.Drain) > 0 {
		p := r.Drain[0].Preload
		fmt.Fprintf(w, "\nDrain: %d events loaded through %s (%d per call, %d in flight, %.0f events/s), then long-poll\n",
			r.Drain[0].Events, p.Method, p.BatchSize, p.InFlight, p.EventsPerS)
		fmt.Fprintf(w, "worker replicas (TRIGGER_CONCURRENCY %s, TRIGGER_BATCH_SIZE %s) run until every event is acked", r.Worker.Concurrency, r.Worker.BatchSize)
		if r.RehearsalEvents > 0 {
			fmt.Fprintf(w, "; before the\nfirst drain the store drained %d events unmeasured (DynamoDB Local's JIT)", r.RehearsalEvents)
		}
		fmt.Fprint(w, "\n\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "replicas\tevents\tstart-up ms\tseconds\tevents/s\tdrain/ingest\tfirst ms\tall pulled s\tredeliv\tcores: bench\tingest\tinbox\tworker\tddb-local\tother\tidle\tload\t")
		for _, d := range r.Drain {
			ratio := "-"
			if d.DrainOverIngest > 0 {
				ratio = fmt.Sprintf("%.3f", d.DrainOverIngest)
			}
			rate := "incomplete"
			if d.Complete {
				rate = fmt.Sprintf("%.1f", d.EventsPerS)
			}
			fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.2f\t%s\t%s\t%.0f\t%.2f\t%d\t%s\t%.2f\t\n", d.Replicas, d.Events, d.StartupMS, d.RunningSeconds, rate, ratio,
				d.FirstReceiptMS, d.LastReceiptSeconds, d.Redeliveries, deliveryCoreCells(d.CPUCores), d.LoadAvg1.End)
		}
		_ = tw.Flush()
		fmt.Fprintln(w, "start-up: from starting the replicas to the first one logging \"running\"; seconds: from then to the first")
		fmt.Fprintln(w, "100 ms probe that finds the inbox index empty (every event acked); events/s = events / seconds.")
		fmt.Fprintln(w, "first ms, all pulled s: when the first and the last event were received, from \"running\".")
		printStoreDrains(w, r.Drain)
		printCPUBound(w, r)
	}

	fmt.Fprintln(w)
	if r.Ingest != nil {
		fmt.Fprintf(w, "ingest rate of this run (POST /events, concurrency %d): %.1f events/s; goal drain/ingest >= %.2f\n",
			r.Ingest.Concurrency, r.Ingest.EventsPerS, r.Goals.DrainOverIngest)
	} else {
		fmt.Fprintln(w, "no ingest rate in this run (-suite delivery): drain/ingest not computed")
	}
	if r.LatencyGoalMet != nil {
		fmt.Fprintf(w, "goal long-poll p50 <= %.0f ms and p99 <= %.0f ms: %s\n", r.Goals.P50MS, r.Goals.P99MS,
			map[bool]string{true: "met", false: "not met"}[*r.LatencyGoalMet])
	}
	fmt.Fprintln(w)
}

// printCPUBound compares the inbox's CPU per drained event with the ingest's per event written.
func printCPUBound(w io.Writer, r deliveryReport) {
	if r.Ingest == nil || r.Ingest.CPUMicrosPerEvent <= 0 {
		return
	}
	var cells []string
	for _, d := range r.Drain {
		if d.CPUBoundOverIngest > 0 {
			cells = append(cells, fmt.Sprintf("%d replica(s): inbox %.0f µs, ratio %.3f", d.Replicas, d.CPUMicrosPerEvent["inbox"], d.CPUBoundOverIngest))
		}
	}
	if len(cells) == 0 {
		return
	}
	fmt.Fprintf(w, "\nCPU per event: ingest %.0f µs (ingest suite); per drained event, %s.\n", r.Ingest.CPUMicrosPerEvent, strings.Join(cells, "; "))
	fmt.Fprintln(w, "The ratio is ingest's over the inbox's: the drain/ingest that one CPU for each inbox and each ingest replica")
	fmt.Fprintln(w, "would allow where DynamoDB is not the bound, as DynamoDB Local is here.")
}

// printStoreDrains shows each drain's baseline: the events store alone, in the bench's process.
func printStoreDrains(w io.Writer, drains []drainReport) {
	if !slices.ContainsFunc(drains, func(d drainReport) bool { return d.Store != nil }) {
		return
	}
	fmt.Fprintf(w, "\nBaseline: the same events drained by the events store's Lease and Ack alone, in the bench's process\n")
	fmt.Fprintf(w, "(no HTTP, inbox or worker), one puller per replica, leasing as many per call as a worker pulls\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "pullers\tper lease\tseconds\tevents/s\tstore/ingest\tdrain/store\tcalls per event\tcores: bench\tddb-local\tload\t")
	for _, d := range drains {
		s := d.Store
		if s == nil {
			continue
		}
		rate, overIngest, overStore := "incomplete", "-", "-"
		if s.Complete {
			rate = fmt.Sprintf("%.1f", s.EventsPerS)
		}
		if s.OverIngest > 0 {
			overIngest = fmt.Sprintf("%.3f", s.OverIngest)
		}
		if d.OverStore > 0 {
			overStore = fmt.Sprintf("%.3f", d.OverStore)
		}
		fmt.Fprintf(tw, "%d\t%d\t%.2f\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t\n", s.Pullers, s.MaxPerLease, s.Seconds, rate, overIngest, overStore,
			describeCalls(s.CallsPerEvent), s.CPUCores["bench"], s.CPUCores["dynamodb_local"], s.LoadAvg1.End)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "store/ingest: what drain/ingest would be if the inbox and the workers cost nothing; drain/store: the")
	fmt.Fprintln(w, "drain above over this baseline.")
}
