package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
)

// Modes of the tracing suite: the same ingest binary with tracing off (OTEL_SDK_DISABLED), as
// deployed without an OTLP endpoint (span ids for the logs, nothing recorded), and exporting
// every span to Jaeger.
const (
	modeTraceOff        = "off"
	modeTraceUnexported = "unexported"
	modeTraceJaeger     = "jaeger"
)

var traceModes = []string{modeTraceOff, modeTraceUnexported, modeTraceJaeger}

// tracingGoal is issue 5's bound: exporting costs at most 10% of the ingest rate.
const tracingGoal = 0.90

type tracingReport struct {
	Bench         string               `json:"bench"`
	Concurrency   int                  `json:"concurrency"`
	PhaseSeconds  float64              `json:"phase_seconds"`
	WarmupSeconds float64              `json:"warmup_seconds"`
	Order         string               `json:"order"`
	CPUs          int                  `json:"cpus"`
	Started       string               `json:"started"`
	LoadAvg1      loadPair             `json:"load_avg_1m"`
	Phases        []tracingPhase       `json:"phases,omitempty"`
	Modes         map[string]traceMode `json:"modes"`
	// Ratio is the jaeger mode's rate over the off mode's; Goal is the least it should be.
	// UnexportedRatio is the same for the mode without an endpoint.
	Ratio           float64 `json:"ratio"`
	UnexportedRatio float64 `json:"unexported_ratio"`
	Goal            float64 `json:"goal"`
	TracesFound     int     `json:"traces_found"` // traces of the ingest service Jaeger held afterwards
	Valid           bool    `json:"valid"`
}

type tracingPhase struct {
	N          int          `json:"n"`
	Mode       string       `json:"mode"`
	Events     int          `json:"events"`
	Errors     int          `json:"errors"`
	EventsPerS float64      `json:"events_per_s"`
	Latency    latencyStats `json:"latency_ms"`
	// CPU seconds of the service under load, Jaeger and DynamoDB Local during the phase.
	ServiceCPU float64 `json:"service_cpu_s"`
	JaegerCPU  float64 `json:"jaeger_cpu_s"`
	DDBCPU     float64 `json:"dynamodb_local_cpu_s"`
}

type traceMode struct {
	Events     int          `json:"events"`
	Seconds    float64      `json:"seconds"`
	EventsPerS float64      `json:"events_per_s"`
	Latency    latencyStats `json:"latency_ms"`
	// ServiceCPUPerEvent is the service's CPU per ingested event, in microseconds.
	ServiceCPUPerEvent float64 `json:"service_cpu_us_per_event"`
	JaegerCPUPerEvent  float64 `json:"jaeger_cpu_us_per_event"`
}

// runTracing is the tracing suite: POST /events through two ingest binaries on the same
// tables, one with tracing off and one exporting to a Jaeger the bench starts, in alternating
// phases at the same concurrency.
func runTracing(ctx context.Context, o options, r *rig, stdout io.Writer) error {
	jaeger, addrs, err := startJaeger(ctx, r)
	if err != nil {
		return err
	}
	defer jaeger.stop()
	services, err := startTracedServices(ctx, o, r, addrs)
	if err != nil {
		return err
	}
	defer stopAll(slices.Collect(maps.Values(services)))
	r.logf("tracing: ingest with tracing off on %s, without an endpoint on %s, exporting to Jaeger (%s) on %s",
		services[modeTraceOff].url, services[modeTraceUnexported].url, jaeger.url, services[modeTraceJaeger].url)

	key, err := seed(ctx, r.client, r.tables, "tracing")
	if err != nil {
		return err
	}
	body := eventBody(o.bodyBytes)
	httpClient := loadClient(o.concurrency)
	defer httpClient.CloseIdleConnections()
	ops := map[string]op{}
	for mode, c := range services {
		ops[mode] = ingestPost(httpClient, c.url, key, body)
	}
	warmup := min(o.warmup, 20*time.Second)
	if err := tracingWarmUp(ctx, o.concurrency, warmup, ops); err != nil {
		return err
	}

	rep := tracingReport{
		Bench: "ingest-tracing-off-vs-jaeger", Concurrency: o.concurrency, PhaseSeconds: o.duration.Seconds(),
		WarmupSeconds: warmup.Seconds(), Order: "OUJJUO", CPUs: runtime.NumCPU(), Goal: tracingGoal,
		Started: time.Now().UTC().Format(time.RFC3339), LoadAvg1: loadPair{Start: loadAvg1()}, Modes: map[string]traceMode{},
	}
	totals, err := runTracingPhases(ctx, o, r, &rep, services, jaeger, ops)
	if err != nil {
		return err
	}
	rep.LoadAvg1.End = loadAvg1()
	rep.finish(totals)
	// The exporting mode only measures export if the spans got there.
	if rep.TracesFound, err = countTraces(ctx, jaeger.url, "ingest"); err != nil || rep.TracesFound == 0 {
		rep.Valid = false
		r.logf("tracing: Jaeger holds no ingest trace (%v); the jaeger mode exported nothing", err)
	}
	if err := writeTracing(r.path(o.tracingOut), stdout, rep); err != nil {
		return err
	}
	if !rep.Valid {
		return fmt.Errorf("the tracing phases do not measure: errors above %.0f%% or no spans in Jaeger (see %s)", 100*maxErrorRate, r.cacheDir)
	}
	return nil
}

// startJaeger runs the Jaeger that `make jaeger` built, on free loopback ports, and waits
// until its query API answers.
func startJaeger(ctx context.Context, r *rig) (*child, stack.JaegerAddrs, error) {
	addrs, err := stack.FreeJaegerAddrs()
	if err != nil {
		return nil, addrs, err
	}
	args, env, err := stack.JaegerCommand(stack.DefaultJaegerBin(r.root), r.cacheDir, addrs)
	if err != nil {
		return nil, addrs, err
	}
	jaeger, err := spawn("jaeger", stack.DefaultJaegerBin(r.root), args, childEnv(env...), filepath.Join(r.cacheDir, "jaeger.log"), nil)
	if err != nil {
		return nil, addrs, err
	}
	jaeger.url = addrs.QueryURL()
	if err := jaeger.waitReady(ctx, "/api/services"); err != nil {
		jaeger.stop()
		return nil, addrs, err
	}
	return jaeger, addrs, nil
}

// startTracedServices starts one ingest binary per tracing mode on the bench's tables.
func startTracedServices(ctx context.Context, o options, r *rig, addrs stack.JaegerAddrs) (map[string]*child, error) {
	services := map[string]*child{}
	for mode, extra := range map[string][]string{
		modeTraceOff:        {"OTEL_SDK_DISABLED=true"},
		modeTraceUnexported: nil,
		modeTraceJaeger:     addrs.OTLPEnv(),
	} {
		c, err := startService(ctx, "ingest-"+mode, filepath.Join(r.binDir, "ingest"), r.endpoint, r.prefix, o,
			filepath.Join(r.cacheDir, "ingest-"+mode+".log"), extra...)
		if err != nil {
			stopAll(slices.Collect(maps.Values(services)))
			return nil, err
		}
		services[mode] = c
	}
	return services, nil
}

// tracingWarmUp runs unmeasured load on every mode in alternating chunks, as warmUp does for
// the ingest suite.
func tracingWarmUp(ctx context.Context, concurrency int, warmup time.Duration, ops map[string]op) error {
	for done := time.Duration(0); done < warmup; done += warmUpChunk {
		for _, mode := range traceModes {
			res := closedLoop(ctx, concurrency, min(warmUpChunk, warmup-done), ops[mode])
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if len(res.latencies) == 0 {
				return fmt.Errorf("tracing warm-up %s: %v", mode, res.firstErr)
			}
		}
	}
	return nil
}

// modeTotals is what the phases of one tracing mode add up to.
type modeTotals struct {
	latencies             []time.Duration
	wall                  time.Duration
	serviceCPU, jaegerCPU float64
}

// runTracingPhases runs rep.Order's phases, adding each to rep, and returns each mode's totals.
func runTracingPhases(ctx context.Context, o options, r *rig, rep *tracingReport, services map[string]*child, jaeger *child, ops map[string]op) (map[string]*modeTotals, error) {
	totals := map[string]*modeTotals{}
	for i, letter := range rep.Order {
		mode := map[rune]string{'O': modeTraceOff, 'U': modeTraceUnexported, 'J': modeTraceJaeger}[letter]
		pids := []int{services[mode].Pid(), jaeger.Pid(), r.ddbPID}
		before := cpuOf(pids)
		res := closedLoop(ctx, o.concurrency, o.duration, ops[mode])
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		after := cpuOf(pids)
		p := tracingPhase{
			N: i + 1, Mode: mode, Events: len(res.latencies), Errors: res.errors,
			EventsPerS: round(float64(len(res.latencies))/res.wall.Seconds(), 1), Latency: summarise(res.latencies),
			ServiceCPU: round(after[0]-before[0], 2), JaegerCPU: round(after[1]-before[1], 2), DDBCPU: round(after[2]-before[2], 2),
		}
		rep.Phases = append(rep.Phases, p)
		t := totals[mode]
		if t == nil {
			t = &modeTotals{}
			totals[mode] = t
		}
		t.latencies = append(t.latencies, res.latencies...)
		t.wall += res.wall
		t.serviceCPU += p.ServiceCPU
		t.jaegerCPU += p.JaegerCPU
		r.logf("tracing phase %d %-6s %8.1f events/s  p50 %6.2f ms  p99 %6.2f ms  errors %d", p.N, mode, p.EventsPerS, p.Latency.P50, p.Latency.P99, p.Errors)
	}
	return totals, nil
}

// finish judges the phases and sums them up per mode; whether Jaeger got the spans is judged
// apart.
func (r *tracingReport) finish(totals map[string]*modeTotals) {
	r.Valid = true
	for _, p := range r.Phases {
		if p.Events == 0 || float64(p.Errors) > maxErrorRate*float64(p.Events+p.Errors) {
			r.Valid = false
		}
	}
	for mode, t := range totals {
		n := float64(len(t.latencies))
		m := traceMode{Events: len(t.latencies), Seconds: round(t.wall.Seconds(), 2), EventsPerS: round(n/t.wall.Seconds(), 1), Latency: summarise(t.latencies)}
		if n > 0 {
			m.ServiceCPUPerEvent = round(t.serviceCPU/n*1e6, 0)
			m.JaegerCPUPerEvent = round(t.jaegerCPU/n*1e6, 0)
		}
		r.Modes[mode] = m
	}
	if off := r.Modes[modeTraceOff].EventsPerS; off > 0 {
		r.Ratio = round(r.Modes[modeTraceJaeger].EventsPerS/off, 3)
		r.UnexportedRatio = round(r.Modes[modeTraceUnexported].EventsPerS/off, 3)
	}
}

// writeTracing writes the full report to path, and prints the table and the one-line summary.
func writeTracing(path string, stdout io.Writer, rep tracingReport) error {
	if err := writeReport(path, rep); err != nil {
		return err
	}
	printTracing(stdout, rep)
	line := rep
	line.Phases = nil
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return nil
}

// cpuOf reads the CPU seconds each pid has used; 0 where it cannot be read.
func cpuOf(pids []int) []float64 {
	out := make([]float64, len(pids))
	for i, pid := range pids {
		if pid == 0 {
			continue
		}
		if d, err := procCPU(pid); err == nil {
			out[i] = d.Seconds()
		}
	}
	return out
}

// countTraces asks Jaeger how many of service's traces it holds, up to a thousand.
func countTraces(ctx context.Context, base, service string) (int, error) {
	q := url.Values{"service": {service}, "limit": {"1000"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/traces?"+q.Encode(), nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, errors.New("jaeger: " + res.Status)
	}
	var body struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return 0, err
	}
	return len(body.Data), nil
}

func printTracing(w io.Writer, r tracingReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\ningest, tracing off vs no endpoint vs exporting to Jaeger: %d in flight, %d phases of %.0fs (%s), load avg %.1f→%.1f\n",
		r.Concurrency, len(r.Phases), r.PhaseSeconds, r.Order, r.LoadAvg1.Start, r.LoadAvg1.End)
	fmt.Fprintln(tw, "mode\tevents/s\tp50 ms\tp99 ms\tservice µs/event\tjaeger µs/event\t")
	for _, m := range traceModes {
		s := r.Modes[m]
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%.2f\t%.0f\t%.0f\t\n", m, s.EventsPerS, s.Latency.P50, s.Latency.P99, s.ServiceCPUPerEvent, s.JaegerCPUPerEvent)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "ratio jaeger/off %.3f (goal ≥ %.2f), unexported/off %.3f, %d ingest traces in Jaeger, valid %v\n",
		r.Ratio, r.Goal, r.UnexportedRatio, r.TracesFound, r.Valid)
}
