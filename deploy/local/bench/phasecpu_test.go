package main

import (
	"strings"
	"testing"
)

func TestPrintPhaseCPU(t *testing.T) {
	var b strings.Builder
	printPhaseCPU(&b, []phaseCPU{{Phase: "abused", Cores: map[string]float64{"ingest": 0.3, "inbox": 0.1, "other": 0.6, "idle": 1}}})
	if !strings.Contains(b.String(), "abused   inbox 0.10 ingest 0.30 other 0.60 idle 1.00") {
		t.Fatalf("printed %q", b.String())
	}
}
