package startup

import (
	"cmp"
	"math"
	"runtime/debug"
	"testing"

	"go.uber.org/zap"
)

func TestParseMemoryLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"268435456\n":           256 << 20,
		"max\n":                 0,
		"9223372036854771712\n": 0, // cgroup v1 without a limit
		"":                      0,
	} {
		if got := parseMemoryLimit(in); got != want {
			t.Errorf("parseMemoryLimit(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestTuneGC: a container's limit sets the soft limit and GOGC; an operator's GOGC or
// GOMEMLIMIT wins; without any limit the runtime's defaults stay.
func TestTuneGC(t *testing.T) {
	gc, mem := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(gc); debug.SetMemoryLimit(mem) })
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	for _, tc := range []struct {
		name      string
		env       map[string]string
		envLimit  int64 // what the runtime took from GOMEMLIMIT and GOGC at start, if set
		envGC     int
		cgroup    int64
		wantLimit int64
		wantGC    int
	}{
		{"no limit", nil, 0, 0, 0, math.MaxInt64, 100},
		{"pod of 256 MiB", nil, 0, 0, 256 << 20, 256 << 20 * 9 / 10, gcPercentUnderLimit},
		{"operator's GOGC", map[string]string{"GOGC": "150"}, 0, 150, 256 << 20, 256 << 20 * 9 / 10, 150},
		{"operator's GOMEMLIMIT", map[string]string{"GOMEMLIMIT": "100MiB"}, 100 << 20, 0, 256 << 20, 100 << 20, gcPercentUnderLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			if tc.envLimit > 0 {
				debug.SetMemoryLimit(tc.envLimit)
			}
			debug.SetGCPercent(cmp.Or(tc.envGC, 100))
			tuneGC(zap.NewNop(), env(tc.env), func() int64 { return tc.cgroup })
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit %d, want %d", got, tc.wantLimit)
			}
			if got := debug.SetGCPercent(100); got != tc.wantGC {
				t.Errorf("GOGC %d, want %d", got, tc.wantGC)
			}
		})
	}
}
