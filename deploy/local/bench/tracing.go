package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
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
	addrs, err := stack.FreeJaegerAddrs()
	if err != nil {
		return err
	}
	args, env, err := stack.JaegerCommand(stack.DefaultJaegerBin(r.root), r.cacheDir, addrs)
	if err != nil {
		return err
	}
	jaeger, err := spawn("jaeger", stack.DefaultJaegerBin(r.root), args, childEnv(env...), filepath.Join(r.cacheDir, "jaeger.log"), nil)
	if err != nil {
		return err
	}
	defer jaeger.stop()
	jaeger.url = addrs.QueryURL()
	if err := jaeger.waitReady(ctx, "/api/services"); err != nil {
		return err
	}
	services := map[string]*child{}
	for mode, extra := range map[string][]string{
		modeTraceOff:        {"OTEL_SDK_DISABLED=true"},
		modeTraceUnexported: nil,
		modeTraceJaeger:     addrs.OTLPEnv(),
	} {
		c, err := startService(ctx, "ingest-"+mode, filepath.Join(r.binDir, "ingest"), r.endpoint, r.prefix, o.logLevel,
			filepath.Join(r.cacheDir, "ingest-"+mode+".log"), extra...)
		if err != nil {
			return err
		}
		defer c.stop()
		services[mode] = c
	}
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
	warm := o
	warm.warmup = min(o.warmup, 20*time.Second)
	for done := time.Duration(0); done < warm.warmup; done += warmUpChunk {
		for _, mode := range traceModes {
			res := closedLoop(ctx, o.concurrency, min(warmUpChunk, warm.warmup-done), ops[mode])
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if len(res.latencies) == 0 {
				return fmt.Errorf("tracing warm-up %s: %v", mode, res.firstErr)
			}
		}
	}

	rep := tracingReport{
		Bench: "ingest-tracing-off-vs-jaeger", Concurrency: o.concurrency, PhaseSeconds: o.duration.Seconds(),
		WarmupSeconds: warm.warmup.Seconds(), Order: "OUJJUO", CPUs: runtime.NumCPU(), Goal: tracingGoal,
		Started: time.Now().UTC().Format(time.RFC3339), LoadAvg1: loadPair{Start: loadAvg1()}, Modes: map[string]traceMode{},
	}
	samples := map[string][]time.Duration{}
	wall := map[string]time.Duration{}
	cpu := map[string][2]float64{} // service, jaeger
	for i, letter := range rep.Order {
		mode := map[rune]string{'O': modeTraceOff, 'U': modeTraceUnexported, 'J': modeTraceJaeger}[letter]
		pids := []int{services[mode].pid(), jaeger.pid(), r.ddbPID}
		before := cpuOf(pids)
		res := closedLoop(ctx, o.concurrency, o.duration, ops[mode])
		if ctx.Err() != nil {
			return ctx.Err()
		}
		after := cpuOf(pids)
		p := tracingPhase{
			N: i + 1, Mode: mode, Events: len(res.latencies), Errors: res.errors,
			EventsPerS: round(float64(len(res.latencies))/res.wall.Seconds(), 1), Latency: summarise(res.latencies),
			ServiceCPU: round(after[0]-before[0], 2), JaegerCPU: round(after[1]-before[1], 2), DDBCPU: round(after[2]-before[2], 2),
		}
		rep.Phases = append(rep.Phases, p)
		samples[mode] = append(samples[mode], res.latencies...)
		wall[mode] += res.wall
		c := cpu[mode]
		cpu[mode] = [2]float64{c[0] + p.ServiceCPU, c[1] + p.JaegerCPU}
		r.logf("tracing phase %d %-6s %8.1f events/s  p50 %6.2f ms  p99 %6.2f ms  errors %d", p.N, mode, p.EventsPerS, p.Latency.P50, p.Latency.P99, p.Errors)
	}
	rep.LoadAvg1.End = loadAvg1()
	rep.Valid = true
	for _, p := range rep.Phases {
		if p.Events == 0 || float64(p.Errors) > maxErrorRate*float64(p.Events+p.Errors) {
			rep.Valid = false
		}
	}
	for mode, lat := range samples {
		n := float64(len(lat))
		m := traceMode{Events: len(lat), Seconds: round(wall[mode].Seconds(), 2), EventsPerS: round(n/wall[mode].Seconds(), 1), Latency: summarise(lat)}
		if n > 0 {
			m.ServiceCPUPerEvent = round(cpu[mode][0]/n*1e6, 0)
			m.JaegerCPUPerEvent = round(cpu[mode][1]/n*1e6, 0)
		}
		rep.Modes[mode] = m
	}
	if off := rep.Modes[modeTraceOff].EventsPerS; off > 0 {
		rep.Ratio = round(rep.Modes[modeTraceJaeger].EventsPerS/off, 3)
		rep.UnexportedRatio = round(rep.Modes[modeTraceUnexported].EventsPerS/off, 3)
	}
	// The exporting mode only measures export if the spans got there.
	if rep.TracesFound, err = countTraces(ctx, jaeger.url, "ingest"); err != nil || rep.TracesFound == 0 {
		rep.Valid = false
		r.logf("tracing: Jaeger holds no ingest trace (%v); the jaeger mode exported nothing", err)
	}

	if err := writeReport(r.path(o.tracingOut), rep); err != nil {
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
	if !rep.Valid {
		return fmt.Errorf("the tracing phases do not measure: errors above %.0f%% or no spans in Jaeger (see %s)", 100*maxErrorRate, r.cacheDir)
	}
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
