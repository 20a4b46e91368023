package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"
)

// processes are the pids whose CPU time is attributed; 0 means unknown.
type processes struct{ bench, ingest, ddb int }

// cpuSnapshot is cumulative CPU time at one instant; ok is false where /proc is unavailable.
type cpuSnapshot struct {
	ok                 bool
	bench, ingest, ddb time.Duration
	system             systemCPU
}

func (p processes) snapshot() cpuSnapshot {
	var s cpuSnapshot
	var err error
	if s.system, err = readSystemCPU(); err != nil {
		return s
	}
	s.ok = true
	read := func(pid int) time.Duration {
		if pid == 0 {
			return 0
		}
		d, _ := procCPU(pid)
		return d
	}
	s.bench, s.ingest, s.ddb = read(p.bench), read(p.ingest), read(p.ddb)
	return s
}

// cpuSeconds is CPU time spent during a phase, by process. Other is the rest of the machine's
// busy time: other people's work, and kernel work not charged to a process.
type cpuSeconds struct {
	Bench         float64 `json:"bench"`
	Ingest        float64 `json:"ingest"`
	DynamoDBLocal float64 `json:"dynamodb_local"`
	Other         float64 `json:"other"`
	Idle          float64 `json:"idle"`
}

func (s cpuSnapshot) sub(before cpuSnapshot) *cpuSeconds {
	if !s.ok || !before.ok {
		return nil
	}
	c := cpuSeconds{
		Bench:         (s.bench - before.bench).Seconds(),
		Ingest:        (s.ingest - before.ingest).Seconds(),
		DynamoDBLocal: (s.ddb - before.ddb).Seconds(),
		Idle:          (s.system.idle - before.system.idle).Seconds(),
	}
	busy := (s.system.busy - before.system.busy).Seconds()
	// Per-process and machine counters tick independently, so the difference can dip below
	// zero by a tick or two.
	c.Other = max(busy-c.Bench-c.Ingest-c.DynamoDBLocal, 0)
	return c.rounded(2)
}

func (c cpuSeconds) rounded(digits int) *cpuSeconds {
	return &cpuSeconds{
		Bench: round(c.Bench, digits), Ingest: round(c.Ingest, digits),
		DynamoDBLocal: round(c.DynamoDBLocal, digits), Other: round(c.Other, digits), Idle: round(c.Idle, digits),
	}
}

func (c cpuSeconds) scale(f float64) cpuSeconds {
	return cpuSeconds{c.Bench * f, c.Ingest * f, c.DynamoDBLocal * f, c.Other * f, c.Idle * f}
}

func (c cpuSeconds) add(o cpuSeconds) cpuSeconds {
	return cpuSeconds{c.Bench + o.Bench, c.Ingest + o.Ingest, c.DynamoDBLocal + o.DynamoDBLocal, c.Other + o.Other, c.Idle + o.Idle}
}

// attributed is the CPU of the three processes of the benchmark itself.
func (c cpuSeconds) attributed() float64 { return c.Bench + c.Ingest + c.DynamoDBLocal }

type phaseReport struct {
	N          int          `json:"n"`
	Mode       string       `json:"mode"`
	Seconds    float64      `json:"seconds"`
	Events     int          `json:"events"`
	Errors     int          `json:"errors"`
	FirstError string       `json:"first_error,omitempty"`
	EventsPerS float64      `json:"events_per_s"`
	Latency    latencyStats `json:"latency_ms"`
	CPUSeconds *cpuSeconds  `json:"cpu_seconds,omitempty"`
	LoadAvg1   float64      `json:"load_avg_1m"`
}

// modeReport is one kind of load over all its phases.
type modeReport struct {
	EventsPerS float64   `json:"events_per_s"`
	P50MS      float64   `json:"p50_ms"`
	P90MS      float64   `json:"p90_ms"`
	P99MS      float64   `json:"p99_ms"`
	MaxMS      float64   `json:"max_ms"`
	Events     int       `json:"events"`
	Errors     int       `json:"errors"`
	PhaseRates []float64 `json:"phase_events_per_s"`
	// CPUCores is the average number of cores each process kept busy; CPUMicrosPerEvent is the
	// CPU each process spent per event written.
	CPUCores          *cpuSeconds `json:"cpu_cores,omitempty"`
	CPUMicrosPerEvent *cpuSeconds `json:"cpu_us_per_event,omitempty"`
}

type loadPair struct {
	Start float64 `json:"start"`
	End   float64 `json:"end"`
}

type report struct {
	Bench         string  `json:"bench"`
	Concurrency   int     `json:"concurrency"`
	PhaseSeconds  float64 `json:"phase_seconds"`
	WarmupSeconds float64 `json:"warmup_seconds"`
	Order         string  `json:"order"`
	BodyBytes     int     `json:"body_bytes"`
	// ServiceProcs is the GOMAXPROCS of the ingest the bench started, 0 for every core;
	// ServiceProcsText says which, or that a running stack's ingest (-ingest-url) was measured.
	ServiceProcs     int        `json:"service_procs"`
	ServiceProcsText string     `json:"service_procs_text"`
	ItemBytes        int        `json:"item_bytes"`
	Ingest           modeReport `json:"ingest"`
	PutItem          modeReport `json:"putitem"`
	Ratio            float64    `json:"ratio"`
	// RatioRange pairs the slowest ingest phase with the fastest PutItem phase and the other
	// way round: how far drift alone could move the ratio in this run.
	RatioRange [2]float64 `json:"ratio_range"`
	// CPURatio is what the ratio would be if both were limited only by the benchmark's own CPU
	// per event: bare PutItem's CPU per event over the service path's.
	CPURatio float64       `json:"cpu_bound_ratio,omitempty"`
	Goal     float64       `json:"goal"`
	GoalMet  bool          `json:"goal_met"`
	Valid    bool          `json:"valid"`
	CPUs     int           `json:"cpus"`
	LoadAvg1 loadPair      `json:"load_avg_1m"`
	DynamoDB string        `json:"dynamodb"`
	Go       string        `json:"go"`
	Started  string        `json:"started"`
	Phases   []phaseReport `json:"phases,omitempty"`
	// Profile is where the service spent its CPU in the first ingest phase.
	Profile *cpuProfile `json:"profile,omitempty"`
	// Allocs is what the service allocated over the same window.
	Allocs *allocProfile `json:"allocs,omitempty"`
}

// finish aggregates the phases of each mode and derives the ratios.
func (r *report) finish(samples map[string][]time.Duration) {
	r.Valid = true
	r.Ingest = r.aggregate(modeIngest, samples[modeIngest])
	r.PutItem = r.aggregate(modePutItem, samples[modePutItem])
	if r.PutItem.EventsPerS > 0 {
		r.Ratio = round(r.Ingest.EventsPerS/r.PutItem.EventsPerS, 3)
		r.RatioRange = [2]float64{
			round(minOf(r.Ingest.PhaseRates)/maxOf(r.PutItem.PhaseRates), 3),
			round(maxOf(r.Ingest.PhaseRates)/minOf(r.PutItem.PhaseRates), 3),
		}
	}
	if a, b := r.Ingest.CPUMicrosPerEvent, r.PutItem.CPUMicrosPerEvent; a != nil && b != nil && a.attributed() > 0 {
		r.CPURatio = round(b.attributed()/a.attributed(), 3)
	}
	r.GoalMet = r.Ratio >= r.Goal
}

func (r *report) aggregate(mode string, lat []time.Duration) modeReport {
	var m modeReport
	var wall float64
	var cpu cpuSeconds
	cpuKnown := true
	for _, p := range r.Phases {
		if p.Mode != mode {
			continue
		}
		m.Events += p.Events
		m.Errors += p.Errors
		m.PhaseRates = append(m.PhaseRates, p.EventsPerS)
		wall += p.Seconds
		if p.Events+p.Errors > 0 && float64(p.Errors)/float64(p.Events+p.Errors) > maxErrorRate {
			r.Valid = false
		}
		if p.CPUSeconds == nil {
			cpuKnown = false
		} else {
			cpu = cpu.add(*p.CPUSeconds)
		}
	}
	if wall > 0 {
		m.EventsPerS = round(float64(m.Events)/wall, 1)
	}
	s := summarise(lat)
	m.P50MS, m.P90MS, m.P99MS, m.MaxMS = s.P50, s.P90, s.P99, s.Max
	if cpuKnown && wall > 0 && m.Events > 0 {
		m.CPUCores = cpu.scale(1 / wall).rounded(2)
		m.CPUMicrosPerEvent = cpu.scale(1e6 / float64(m.Events)).rounded(0)
	}
	return m
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = max(m, x)
	}
	return m
}

func writeReport(path string, r any) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func printTable(w io.Writer, r report) {
	fmt.Fprintf(w, "\nPOST /events via ingest (A) vs bare PutItem (B): concurrency %d, %d phases of %.0fs (%s) after %.0fs warm-up each\n",
		r.Concurrency, len(r.Phases), r.PhaseSeconds, r.Order, r.WarmupSeconds)
	fmt.Fprintf(w, "body %d B, item %d B, %s, %d CPUs, ingest %s, load average (1m) %.2f -> %.2f\n\n",
		r.BodyBytes, r.ItemBytes, r.DynamoDB, r.CPUs, r.ServiceProcsText, r.LoadAvg1.Start, r.LoadAvg1.End)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tmode\tevents/s\tp50 ms\tp99 ms\terrors\tcores: bench\tingest\tddb-local\tother\tidle\tload\t")
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "%d\t%s\t%.1f\t%.2f\t%.2f\t%d\t%s\t%.2f\t\n", p.N, p.Mode, p.EventsPerS, p.Latency.P50, p.Latency.P99, p.Errors,
			coreCells(p.CPUSeconds, p.Seconds), p.LoadAvg1)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "cores: CPU time over wall time. bench is the load generator, and in B also the SDK client that")
	fmt.Fprintln(w, "does the PutItem (in A the service does it); other is everything else on the machine.")
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tevents/s\tp50 ms\tp99 ms\tCPU µs/event: bench\tingest\tddb-local\tsum\tother\t")
	for _, m := range []struct {
		name string
		m    modeReport
	}{{modeIngest, r.Ingest}, {modePutItem, r.PutItem}} {
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%.2f\t%s\t\n", m.name, m.m.EventsPerS, m.m.P50MS, m.m.P99MS, perEventCells(m.m.CPUMicrosPerEvent))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nratio ingest/putitem %.3f (drift range %.3f-%.3f); goal >= %.2f: %s\n",
		r.Ratio, r.RatioRange[0], r.RatioRange[1], r.Goal, map[bool]string{true: "met", false: "not met"}[r.GoalMet])
	if r.CPURatio > 0 {
		fmt.Fprintf(w, "if only the benchmark's own CPU per event mattered, the ratio would be %.3f\n", r.CPURatio)
	}
	fmt.Fprintln(w)
	if r.Profile != nil {
		printProfile(w, r.Profile)
	}
	if r.Allocs != nil {
		printAllocs(w, r.Allocs)
	}
}

func coreCells(c *cpuSeconds, wall float64) string {
	if c == nil || wall <= 0 {
		return "-\t-\t-\t-\t-"
	}
	return fmt.Sprintf("%.2f\t%.2f\t%.2f\t%.2f\t%.2f", c.Bench/wall, c.Ingest/wall, c.DynamoDBLocal/wall, c.Other/wall, c.Idle/wall)
}

func perEventCells(c *cpuSeconds) string {
	if c == nil {
		return "-\t-\t-\t-\t-"
	}
	return fmt.Sprintf("%.0f\t%.0f\t%.0f\t%.0f\t%.0f", c.Bench, c.Ingest, c.DynamoDBLocal, c.attributed(), c.Other)
}
