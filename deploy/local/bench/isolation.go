package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
	"github.com/trigger-api/trigger-api/deploy/local/noisy"
	"github.com/trigger-api/trigger-api/pkg/client"
	"github.com/trigger-api/trigger-api/pkg/ddb"
)

// The isolation suite's goals, reported next to the figures and never enforced.
const (
	goalIsolationP99Ratio = 1.5
	goalInboxRSSMiB       = 128
)

// isolationPhases are B alone, B while A abuses, B alone again: a drift over the run shows in
// both alone phases alike and cancels out of the ratio.
var isolationPhases = []string{"alone-1", "abused", "alone-2"}

type isolationOptions struct {
	phase     time.Duration
	rehearsal time.Duration
	out       string
}

// isolationReport is the suite's JSON report.
type isolationReport struct {
	Bench            string             `json:"bench"`
	Started          string             `json:"started"`
	Go               string             `json:"go"`
	CPUs             int                `json:"cpus"`
	LoadAvg          loadTriple         `json:"load_average"`
	PhaseSeconds     float64            `json:"phase_seconds"`
	RehearsalSeconds float64            `json:"rehearsal_seconds"`
	Config           noisy.Config       `json:"config"`
	Phases           []noisy.Figures    `json:"phases"`
	Alone            noisy.Figures      `json:"alone"` // both alone phases together
	Ratio            isolationRatio     `json:"ratio_abused_over_alone"`
	Goals            map[string]float64 `json:"goals"`
	InboxMemory      noisy.Memory       `json:"inbox_memory_while_abused"`
	CPU              []phaseCPU         `json:"cpu_cores_by_phase"`
	Result           noisy.Result       `json:"result"`
	Valid            bool               `json:"valid"`
}

type loadTriple struct{ Start, End string }

type isolationRatio struct {
	IngestP50, IngestP99, DeliveryP50, DeliveryP99 float64
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return round(a/b, 2)
}

// loadAverages is /proc/loadavg's three load averages.
func loadAverages() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// runIsolation starts the whole stack (gateway, the three services, a worker) on the rig's
// DynamoDB Local under tables of its own, and times B through the three phases.
func runIsolation(ctx context.Context, o options, r *rig, stdout io.Writer) error {
	// On the DynamoDB Local the suites before had filled, B's ingest p99 was 280-320 ms in
	// every phase of a full run, alone too: its stalls, not anything A did.
	r, stop, err := r.afresh(ctx, o, "isolation", o.suite != suiteIsolation, freshDynamoDB)
	if err != nil {
		return err
	}
	defer stop()
	rep := isolationReport{
		Bench: "isolation", Started: time.Now().UTC().Format(time.RFC3339), Go: runtime.Version(), CPUs: runtime.NumCPU(),
		LoadAvg: loadTriple{Start: loadAverages()}, PhaseSeconds: o.isolation.phase.Seconds(), RehearsalSeconds: o.isolation.rehearsal.Seconds(), Config: noisy.BenchConfig(),
		Goals: map[string]float64{"p99_ratio_at_most": goalIsolationP99Ratio, "inbox_rss_mib_at_most": goalInboxRSSMiB},
	}
	dir := filepath.Join(r.cacheDir, "isolation")
	prefix := randomPrefix()
	progress := logWriter{r.logf}
	st, err := stack.Start(ctx, stack.Options{
		Root: r.root, BinDir: filepath.Join(dir, "bin"), StateDir: dir, GatewayAddr: "127.0.0.1:0",
		DynamoDBEndpoint: r.endpoint, TablePrefix: prefix, Tenants: []string{"idle"}, LogLevel: o.logLevel,
		Progress: progress,
	})
	if err != nil {
		return fmt.Errorf("isolation: start the stack: %w", err)
	}
	defer deleteTables(context.WithoutCancel(ctx), r.client, ddb.TableNames(prefix))
	defer st.Stop()
	if err := r.quietTTL(ctx, ddb.TableNames(prefix)); err != nil {
		return fmt.Errorf("isolation: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("isolation: %w", err)
	}
	sc, err := noisy.Prepare(ctx, noisy.Target{
		GatewayURL: st.GatewayURL, AdminToken: st.AdminToken, InboxPID: st.PIDs()[stack.Inbox],
		AbuserCommand: abuserArgs(exe, st.ServiceURLs),
	}, rep.Config, progress)
	if err != nil {
		return fmt.Errorf("isolation: prepare (logs in %s): %w", dir, err)
	}
	if o.isolation.rehearsal > 0 {
		r.logf("isolation: A rehearses for %v, then %v of rest", o.isolation.rehearsal, o.isolation.rehearsal)
		sc.SetPhase("rehearsal")
		if err := sc.Rehearse(ctx, o.isolation.rehearsal); err != nil {
			return fmt.Errorf("isolation: rehearsal: %w", err)
		}
		if err := client.Sleep(ctx, o.isolation.rehearsal); err != nil {
			return err
		}
	}
	groups := []cpuGroup{{"bench", []int{os.Getpid()}}, {"dynamodb-local", []int{r.ddbPID}}}
	for name, pid := range st.PIDs() {
		groups = append(groups, cpuGroup{name, []int{pid}})
	}
	if rep.InboxMemory, rep.CPU, err = runPhases(ctx, sc, o.isolation.phase, groups, r.logf); err != nil {
		return err
	}
	rep.LoadAvg.End = loadAverages()
	rep.finish(sc)
	if err := writeReport(r.path(o.isolation.out), rep); err != nil {
		return err
	}
	printIsolation(stdout, rep)
	if !rep.Valid {
		return fmt.Errorf("isolation: B had no event accepted in a phase; the figures are not a measurement (logs in %s)", dir)
	}
	return nil
}

// runPhases runs B throughout and A in the middle phase, then lets B's consumers finish.
func runPhases(ctx context.Context, sc *noisy.Scenario, d time.Duration, groups []cpuGroup, logf func(string, ...any)) (noisy.Memory, []phaseCPU, error) {
	var mem noisy.Memory
	var cpu []phaseCPU
	sc.SetPhase(isolationPhases[0])
	if err := sc.StartNeighbour(ctx); err != nil {
		return mem, cpu, err
	}
	defer sc.StopNeighbour()
	for _, phase := range isolationPhases {
		sc.SetPhase(phase)
		logf("isolation: phase %s, %v", phase, d)
		if phase == "abused" {
			if err := sc.StartAbuse(ctx); err != nil {
				return mem, cpu, err
			}
		}
		before, from := snapshotGroups(groups), time.Now()
		err := client.Sleep(ctx, d)
		cpu = append(cpu, phaseCPU{Phase: phase, Cores: snapshotGroups(groups).cores(before, groups, time.Since(from))})
		if phase == "abused" {
			mem = sc.StopAbuse()
			logf("isolation: A did %+v", sc.Progress())
		}
		if err != nil {
			return mem, cpu, err
		}
	}
	sc.SetPhase("drain")
	sc.StopProducer()
	drainCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if left := sc.WaitProcessed(drainCtx); len(left) > 0 {
		logf("isolation: %d of B's accepted events were not processed within 2 min", len(left))
	}
	return mem, cpu, ctx.Err()
}

func (rep *isolationReport) finish(sc *noisy.Scenario) {
	rep.Valid = true
	for _, p := range isolationPhases {
		f := sc.Figures(p, p)
		rep.Phases = append(rep.Phases, f)
		rep.Valid = rep.Valid && f.Accepted > 0
	}
	rep.Alone = sc.Figures("alone (1 and 2)", isolationPhases[0], isolationPhases[2])
	ab := rep.Phases[1]
	rep.Ratio = isolationRatio{
		IngestP50: ratio(ab.Ingest.P50, rep.Alone.Ingest.P50), IngestP99: ratio(ab.Ingest.P99, rep.Alone.Ingest.P99),
		DeliveryP50: ratio(ab.Delivery.P50, rep.Alone.Delivery.P50), DeliveryP99: ratio(ab.Delivery.P99, rep.Alone.Delivery.P99),
	}
	rep.Result = sc.Result()
}

func printIsolation(w io.Writer, rep isolationReport) {
	fmt.Fprintf(w, "\nisolation: B (the seed's workload, %.0f events/s) alone, while A abuses, alone again; %v phases; load average %s → %s\n",
		rep.Config.NeighbourRate, time.Duration(rep.PhaseSeconds*float64(time.Second)), rep.LoadAvg.Start, rep.LoadAvg.End)
	noisy.PrintFigures(w, append(append([]noisy.Figures{}, rep.Phases...), rep.Alone))
	fmt.Fprintf(w, "ratio abused/alone: ingest p50 %.2f, p99 %.2f; delivery p50 %.2f, p99 %.2f (goal: p99 within %.1f×)\n",
		rep.Ratio.IngestP50, rep.Ratio.IngestP99, rep.Ratio.DeliveryP50, rep.Ratio.DeliveryP99, goalIsolationP99Ratio)
	m := rep.InboxMemory
	fmt.Fprintf(w, "inbox memory while A abused: peak VmRSS %.1f MiB, VmHWM %.1f MiB (goal ≤ %d MiB; %d samples)\n", m.PeakRSSMiB, m.HWMMiB, goalInboxRSSMiB, m.Samples)
	rep.Result.PrintActors(w)
	printPhaseCPU(w, rep.CPU)
	b, err := json.Marshal(map[string]any{"bench": rep.Bench, "ratio": rep.Ratio, "inbox_peak_rss_mib": m.PeakRSSMiB,
		"b_errors": rep.Result.NeighbourErrors(), "a_5xx": rep.Result.AbuserServerErrors(), "valid": rep.Valid})
	if err == nil {
		fmt.Fprintf(w, "%s\n", b)
	}
}

// logWriter turns the stack's and the scenario's progress lines into the bench's log lines.
type logWriter struct{ logf func(string, ...any) }

func (l logWriter) Write(b []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
		l.logf("%s", line)
	}
	return len(b), nil
}
