package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/google/pprof/profile"
)

// profileTop is how many functions the report keeps of each ranking.
const profileTop = 15

// cpuProfile is where a process spent its CPU during one phase, by function: flat is the
// time in the function itself, cum the time with it anywhere on the stack.
type cpuProfile struct {
	Phase      int           `json:"phase"`
	Seconds    int           `json:"seconds"`
	File       string        `json:"file"`
	CPUSeconds float64       `json:"cpu_seconds"`
	TopFlat    []profileLine `json:"top_flat"`
	TopCum     []profileLine `json:"top_cum"`
}

type profileLine struct {
	Func    string  `json:"func"`
	FlatPct float64 `json:"flat_pct"`
	CumPct  float64 `json:"cum_pct"`
}

// profileSeconds fits a CPU profile inside a phase of length d, leaving its end to the load's
// tail, so every sample is taken under full load.
func profileSeconds(d time.Duration) int { return max(int(d.Seconds())-2, 1) }

// allocProfile is what a process allocated during one phase: totals, per event served, and by
// function (flat: allocated there; cum: with it anywhere on the stack), ranked by objects,
// whose count is what the collector's work follows. The runtime samples allocations (one per
// 512 KiB on average) and scales them up, so the figures are estimates.
type allocProfile struct {
	Phase           int           `json:"phase"`
	Seconds         int           `json:"seconds"`
	File            string        `json:"file"`
	Objects         int64         `json:"objects"`
	Bytes           int64         `json:"bytes"`
	ObjectsPerEvent float64       `json:"objects_per_event"`
	BytesPerEvent   float64       `json:"bytes_per_event"`
	TopFlat         []profileLine `json:"top_flat"`
}

// perEvent divides the totals by the events the phase served in the profile's window.
func (a *allocProfile) perEvent(eventsPerS float64) {
	if n := eventsPerS * float64(a.Seconds); n > 0 {
		a.ObjectsPerEvent, a.BytesPerEvent = round(float64(a.Objects)/n, 1), round(float64(a.Bytes)/n, 0)
	}
}

// Kinds of profile a service's pprof endpoint gives over a window of seconds: CPU time, and
// allocations (a delta of the allocs profile).
const (
	profileCPU    = "profile"
	profileAllocs = "allocs"
)

// fetchProfile asks a service's pprof endpoint for a profile of kind over seconds and writes
// it to path. It blocks for the profile's length.
func fetchProfile(ctx context.Context, internalURL, kind string, seconds int, path string) error {
	url := fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", internalURL, kind, seconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := (&http.Client{Timeout: time.Duration(seconds+30) * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("GET %s: %d %s", url, res.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// summariseProfile ranks the functions of the CPU profile at path by flat and by cumulative
// time, as `go tool pprof -top` and `-top -cum` would.
func summariseProfile(path string) (*cpuProfile, error) {
	p, err := readProfile(path)
	if err != nil {
		return nil, err
	}
	return rankProfile(p, path)
}

// summariseAllocs totals the allocation profile at path and ranks its functions by objects.
func summariseAllocs(path string) (*allocProfile, error) {
	p, err := readProfile(path)
	if err != nil {
		return nil, err
	}
	return rankAllocs(p, path)
}

func readProfile(path string) (*profile.Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func rankProfile(p *profile.Profile, path string) (*cpuProfile, error) {
	vi := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool { return t.Unit == "nanoseconds" })
	if vi < 0 {
		return nil, fmt.Errorf("%s: not a CPU profile", path)
	}
	flat, cum, total := attribute(p, vi)
	out := &cpuProfile{File: path, CPUSeconds: round(float64(total)/1e9, 2)}
	if total == 0 {
		return out, nil
	}
	out.TopFlat, out.TopCum = topBy(flat, flat, cum, total), topBy(cum, flat, cum, total)
	return out, nil
}

func rankAllocs(p *profile.Profile, path string) (*allocProfile, error) {
	oi := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool { return t.Type == "alloc_objects" })
	bi := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool { return t.Type == "alloc_space" })
	if oi < 0 || bi < 0 {
		return nil, fmt.Errorf("%s: not an allocation profile", path)
	}
	flat, cum, objects := attribute(p, oi)
	_, _, bytes := attribute(p, bi)
	out := &allocProfile{File: path, Objects: objects, Bytes: bytes}
	if objects > 0 {
		out.TopFlat = topBy(flat, flat, cum, objects)
	}
	return out, nil
}

// attribute sums sample value vi by function: flat to the innermost frame of each sample, cum
// once to every function on its stack.
func attribute(p *profile.Profile, vi int) (flat, cum map[string]int64, total int64) {
	flat, cum = map[string]int64{}, map[string]int64{}
	for _, s := range p.Sample {
		v := s.Value[vi]
		total += v
		seen := map[string]bool{}
		for i, loc := range s.Location {
			// Lines are innermost first: an inlined function is its own frame, as in pprof.
			for j, ln := range loc.Line {
				name := "?"
				if ln.Function != nil {
					name = ln.Function.Name
				}
				if i == 0 && j == 0 {
					flat[name] += v
				}
				if !seen[name] {
					seen[name] = true
					cum[name] += v
				}
			}
		}
	}
	return flat, cum, total
}

// topBy returns the profileTop functions with the highest values in by (flat or cum), ties by
// name, each with its flat and cum shares of total.
func topBy(by, flat, cum map[string]int64, total int64) []profileLine {
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(by[b], by[a]), cmp.Compare(a, b)) })
	pct := func(v int64) float64 { return round(100*float64(v)/float64(total), 1) }
	out := make([]profileLine, 0, profileTop)
	for _, n := range names[:min(len(names), profileTop)] {
		out = append(out, profileLine{Func: n, FlatPct: pct(flat[n]), CumPct: pct(cum[n])})
	}
	return out
}

// printProfile writes both rankings side by side.
func printProfile(w io.Writer, p *cpuProfile) {
	fmt.Fprintf(w, "ingest CPU profile, phase %d (%d s, %.2f CPU s sampled, %s):\n", p.Phase, p.Seconds, p.CPUSeconds, p.File)
	fmt.Fprintf(w, "  %6s %6s  %-58s  %6s %6s  %s\n", "flat%", "cum%", "by flat", "flat%", "cum%", "by cum")
	for i := range max(len(p.TopFlat), len(p.TopCum)) {
		var a, b profileLine
		if i < len(p.TopFlat) {
			a = p.TopFlat[i]
		}
		if i < len(p.TopCum) {
			b = p.TopCum[i]
		}
		fmt.Fprintf(w, "  %6.1f %6.1f  %-58s  %6.1f %6.1f  %s\n", a.FlatPct, a.CumPct, shortFunc(a.Func, 58), b.FlatPct, b.CumPct, shortFunc(b.Func, 80))
	}
	fmt.Fprintln(w)
}

// printAllocs writes the allocation totals and the top functions by objects allocated there.
func printAllocs(w io.Writer, a *allocProfile) {
	fmt.Fprintf(w, "ingest allocations, phase %d (%d s, %s): %.1f objects and %.0f bytes per event, sampled\n", a.Phase, a.Seconds, a.File, a.ObjectsPerEvent, a.BytesPerEvent)
	fmt.Fprintf(w, "  %6s %6s  %s\n", "flat%", "cum%", "objects allocated in")
	for _, l := range a.TopFlat {
		fmt.Fprintf(w, "  %6.1f %6.1f  %s\n", l.FlatPct, l.CumPct, shortFunc(l.Func, 100))
	}
	fmt.Fprintln(w)
}

// shortFunc keeps the end of a long function name: the package path's start says least.
func shortFunc(name string, width int) string {
	if len(name) <= width {
		return name
	}
	return "..." + name[len(name)-width+3:]
}
