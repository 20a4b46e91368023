package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// phaseCPU is the CPU cores each watched process used during one phase of the isolation suite,
// with the rest of the machine's busy time (A's own process among it) and its idle time: where
// B's latency went when it rose.
type phaseCPU struct {
	Phase string             `json:"phase"`
	Cores map[string]float64 `json:"cores"`
}

// Names of the columns beside the watched processes.
const (
	cpuRest = "rest"
	cpuIdle = "idle"
)

// cpuWatch reads the cumulative CPU time of named processes.
type cpuWatch map[string]int

type cpuMark struct {
	at     time.Time
	procs  map[string]time.Duration
	system systemCPU
	ok     bool
}

func (w cpuWatch) mark() cpuMark {
	m := cpuMark{at: time.Now(), procs: map[string]time.Duration{}}
	var err error
	if m.system, err = readSystemCPU(); err != nil {
		return m
	}
	m.ok = true
	for name, pid := range w {
		if d, err := procCPU(pid); err == nil {
			m.procs[name] = d
		}
	}
	return m
}

// coresBetween is what each process used from before to after, in cores; a process missing at
// either end is left out, and the machine's busy time beyond the watched processes is rest.
func coresBetween(phase string, before, after cpuMark) phaseCPU {
	p := phaseCPU{Phase: phase, Cores: map[string]float64{}}
	secs := after.at.Sub(before.at).Seconds()
	if !before.ok || !after.ok || secs <= 0 {
		return p
	}
	var watched float64
	for name, a := range after.procs {
		b, ok := before.procs[name]
		if !ok {
			continue
		}
		used := (a - b).Seconds()
		watched += used
		p.Cores[name] = round(used/secs, 2)
	}
	busy := (after.system.busy - before.system.busy).Seconds()
	// Per-process and machine counters tick independently: the rest can dip below zero.
	p.Cores[cpuRest] = round(max(busy-watched, 0)/secs, 2)
	p.Cores[cpuIdle] = round((after.system.idle-before.system.idle).Seconds()/secs, 2)
	return p
}

// printPhaseCPU writes one line per phase, the watched processes by name, then rest and idle.
func printPhaseCPU(w io.Writer, phases []phaseCPU) {
	if len(phases) == 0 {
		return
	}
	fmt.Fprintln(w, "CPU cores by phase (bench: B's client and the gateway; rest: A's process and everything else):")
	for _, p := range phases {
		names := slices.Sorted(maps.Keys(p.Cores))
		names = slices.DeleteFunc(names, func(n string) bool { return n == cpuRest || n == cpuIdle })
		var b strings.Builder
		for _, n := range append(names, cpuRest, cpuIdle) {
			if v, ok := p.Cores[n]; ok {
				fmt.Fprintf(&b, " %s %.2f", n, v)
			}
		}
		fmt.Fprintf(w, "  %-8s%s\n", p.Phase, b.String())
	}
}
