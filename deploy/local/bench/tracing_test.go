package main

import (
	"testing"
	"time"
)

func TestTracingFinishSumsModesAndJudgesPhases(t *testing.T) {
	ms := func(n int) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(i+1) * time.Millisecond
		}
		return out
	}
	r := tracingReport{
		Modes: map[string]traceMode{},
		Phases: []tracingPhase{
			{Mode: modeTraceOff, Events: 1000}, {Mode: modeTraceUnexported, Events: 950}, {Mode: modeTraceJaeger, Events: 900, Errors: 9},
		},
	}
	r.finish(map[string]*modeTotals{
		modeTraceOff:        {latencies: ms(1000), wall: 2 * time.Second, serviceCPU: 1, jaegerCPU: 0},
		modeTraceUnexported: {latencies: ms(950), wall: 2 * time.Second, serviceCPU: 0.95},
		modeTraceJaeger:     {latencies: ms(900), wall: 2 * time.Second, serviceCPU: 1.08, jaegerCPU: 0.09},
	})
	if !r.Valid || r.Ratio != 0.9 || r.UnexportedRatio != 0.95 {
		t.Fatalf("valid %v ratio %v unexported %v", r.Valid, r.Ratio, r.UnexportedRatio)
	}
	j := r.Modes[modeTraceJaeger]
	if j.Events != 900 || j.EventsPerS != 450 || j.ServiceCPUPerEvent != 1200 || j.JaegerCPUPerEvent != 100 || j.Latency.P50 != 450 {
		t.Fatalf("jaeger mode %+v", j)
	}

	// One phase with more than 1% errors, or none at all, leaves the figures unmeasured.
	for _, bad := range []tracingPhase{{Mode: modeTraceJaeger, Events: 900, Errors: 10}, {Mode: modeTraceOff}} {
		r.Phases = append(r.Phases[:3:3], bad)
		r.finish(nil)
		if r.Valid {
			t.Fatalf("valid with phase %+v", bad)
		}
	}
}
