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

// fetchCPUProfile asks a service's pprof endpoint for a CPU profile of seconds and writes it
// to path. It blocks for the profile's length.
func fetchCPUProfile(ctx context.Context, internalURL string, seconds int, path string) error {
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", internalURL, seconds)
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
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rankProfile(p, path)
}

func rankProfile(p *profile.Profile, path string) (*cpuProfile, error) {
	vi := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool { return t.Unit == "nanoseconds" })
	if vi < 0 {
		return nil, fmt.Errorf("%s: not a CPU profile", path)
	}
	flat, cum := map[string]int64{}, map[string]int64{}
	var total int64
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
	out := &cpuProfile{File: path, CPUSeconds: round(float64(total)/1e9, 2)}
	if total == 0 {
		return out, nil
	}
	pct := func(v int64) float64 { return round(100*float64(v)/float64(total), 1) }
	line := func(name string) profileLine {
		return profileLine{Func: name, FlatPct: pct(flat[name]), CumPct: pct(cum[name])}
	}
	out.TopFlat = topBy(flat, line)
	out.TopCum = topBy(cum, line)
	return out, nil
}

// topBy returns the profileTop names of m with the highest values, ties by name.
func topBy(m map[string]int64, line func(string) profileLine) []profileLine {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	out := make([]profileLine, 0, profileTop)
	for _, n := range names[:min(len(names), profileTop)] {
		out = append(out, line(n))
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

// shortFunc keeps the end of a long function name: the package path's start says least.
func shortFunc(name string, width int) string {
	if len(name) <= width {
		return name
	}
	return "..." + name[len(name)-width+3:]
}
