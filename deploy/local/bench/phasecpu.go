package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// phaseCPU is the CPU cores each process of the stack used during one phase of the isolation
// suite, with the rest of the machine's busy time (A's own process among it) and its idle time:
// where B's latency went when it rose.
type phaseCPU struct {
	Phase string             `json:"phase"`
	Cores map[string]float64 `json:"cores"`
}

// printPhaseCPU writes one line per phase: the processes by name, then other and idle.
func printPhaseCPU(w io.Writer, phases []phaseCPU) {
	if len(phases) == 0 {
		return
	}
	fmt.Fprintln(w, "CPU cores by phase (bench: B's client and its gateway; other: A's process, its gateway included, and everything else):")
	for _, p := range phases {
		names := slices.DeleteFunc(slices.Sorted(maps.Keys(p.Cores)), func(n string) bool { return n == "other" || n == "idle" })
		var b strings.Builder
		for _, n := range append(names, "other", "idle") {
			if v, ok := p.Cores[n]; ok {
				fmt.Fprintf(&b, " %s %.2f", n, v)
			}
		}
		fmt.Fprintf(w, "  %-8s%s\n", p.Phase, b.String())
	}
}
