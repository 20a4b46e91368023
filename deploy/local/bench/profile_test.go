package main

import (
	"testing"

	"github.com/google/pprof/profile"
)

// TestRankProfile: flat goes to the innermost frame, cum once to every function on a stack,
// however often it recurs there.
func TestRankProfile(t *testing.T) {
	fn := func(id uint64, name string) *profile.Function { return &profile.Function{ID: id, Name: name} }
	handler, validate, recurse := fn(1, "handler"), fn(2, "validate"), fn(3, "recurse")
	loc := func(id uint64, fs ...*profile.Function) *profile.Location {
		l := &profile.Location{ID: id}
		for _, f := range fs {
			l.Line = append(l.Line, profile.Line{Function: f})
		}
		return l
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample: []*profile.Sample{
			// validate inlined into handler: one location, innermost line first.
			{Location: []*profile.Location{loc(1, validate, handler)}, Value: []int64{3, 3e9}},
			{Location: []*profile.Location{loc(2, recurse), loc(3, recurse), loc(4, handler)}, Value: []int64{1, 1e9}},
		},
	}
	got, err := rankProfile(p, "x.pprof")
	if err != nil {
		t.Fatal(err)
	}
	if got.CPUSeconds != 4 {
		t.Errorf("cpu seconds %v, want 4", got.CPUSeconds)
	}
	want := map[string][2]float64{"handler": {0, 100}, "validate": {75, 75}, "recurse": {25, 25}}
	for _, l := range got.TopCum {
		if w := want[l.Func]; l.FlatPct != w[0] || l.CumPct != w[1] {
			t.Errorf("%s: flat %v%% cum %v%%, want %v%% and %v%%", l.Func, l.FlatPct, l.CumPct, w[0], w[1])
		}
	}
	if len(got.TopCum) != 3 || got.TopCum[0].Func != "handler" || got.TopFlat[0].Func != "validate" {
		t.Errorf("rankings: flat %v, cum %v", got.TopFlat, got.TopCum)
	}
}
