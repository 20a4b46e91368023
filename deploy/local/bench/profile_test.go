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

// TestRankAllocs: objects and bytes are totalled apart, functions ranked by objects, and the
// totals divided by the events the window served.
func TestRankAllocs(t *testing.T) {
	handler := &profile.Function{ID: 1, Name: "handler"}
	decode := &profile.Function{ID: 2, Name: "decode"}
	at := func(id uint64, fs ...*profile.Function) []*profile.Location {
		var locs []*profile.Location
		for i, f := range fs {
			locs = append(locs, &profile.Location{ID: id + uint64(i), Line: []profile.Line{{Function: f}}})
		}
		return locs
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "alloc_objects", Unit: "count"}, {Type: "alloc_space", Unit: "bytes"},
			{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}},
		Sample: []*profile.Sample{
			{Location: at(1, decode, handler), Value: []int64{300, 9600, -5, -100}},
			{Location: at(3, handler), Value: []int64{100, 64000, 1, 64}},
		},
	}
	got, err := rankAllocs(p, "a.pprof")
	if err != nil {
		t.Fatal(err)
	}
	if got.Objects != 400 || got.Bytes != 73600 {
		t.Errorf("totals %d objects %d bytes, want 400 and 73600", got.Objects, got.Bytes)
	}
	if len(got.TopFlat) != 2 || got.TopFlat[0].Func != "decode" || got.TopFlat[0].FlatPct != 75 || got.TopFlat[1].CumPct != 100 {
		t.Errorf("ranking %+v: want decode (75%% flat) before handler (100%% cum)", got.TopFlat)
	}
	got.Seconds = 2
	got.perEvent(100)
	if got.ObjectsPerEvent != 2 || got.BytesPerEvent != 368 {
		t.Errorf("per event %v objects %v bytes, want 2 and 368", got.ObjectsPerEvent, got.BytesPerEvent)
	}
	if _, err := rankAllocs(&profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}}, "c.pprof"); err == nil {
		t.Error("a CPU profile was taken for allocations")
	}
}
