package main

import (
	"strings"
	"testing"
	"time"
)

func TestCoresBetween(t *testing.T) {
	t0 := time.Unix(1000, 0)
	before := cpuMark{at: t0, ok: true, procs: map[string]time.Duration{"ingest": 10 * time.Second, "inbox": 5 * time.Second, "gone": time.Second},
		system: systemCPU{busy: 100 * time.Second, idle: 300 * time.Second}}
	after := cpuMark{at: t0.Add(10 * time.Second), ok: true, procs: map[string]time.Duration{"ingest": 13 * time.Second, "inbox": 6 * time.Second, "new": time.Second},
		system: systemCPU{busy: 110 * time.Second, idle: 310 * time.Second}}
	p := coresBetween("abused", before, after)
	want := map[string]float64{"ingest": 0.3, "inbox": 0.1, cpuRest: 0.6, cpuIdle: 1}
	if len(p.Cores) != len(want) {
		t.Fatalf("cores %v, want %v", p.Cores, want)
	}
	for k, v := range want {
		if p.Cores[k] != v {
			t.Fatalf("cores %v, want %v", p.Cores, want)
		}
	}
	var b strings.Builder
	printPhaseCPU(&b, []phaseCPU{p})
	if !strings.Contains(b.String(), "abused   inbox 0.10 ingest 0.30 rest 0.60 idle 1.00") {
		t.Fatalf("printed %q", b.String())
	}
	if q := coresBetween("x", cpuMark{}, after); len(q.Cores) != 0 {
		t.Fatalf("without a reading before: %v", q.Cores)
	}
}
