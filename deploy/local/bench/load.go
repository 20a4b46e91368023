package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// op is one unit of load: one event written, through the service or straight to DynamoDB.
type op func(ctx context.Context) error

// loadResult is what one phase of closed-loop load produced.
type loadResult struct {
	wall      time.Duration
	latencies []time.Duration // successful operations only
	errors    int
	firstErr  error
}

// closedLoop keeps concurrency operations in flight for d: each worker starts its next
// operation as soon as the previous one ends, which is how a fixed pool of producers behaves
// and why throughput and latency are two views of the same run (Little's law). Work begun
// before the deadline is allowed to finish and counted; the wall time includes that tail.
func closedLoop(ctx context.Context, concurrency int, d time.Duration, do op) loadResult {
	// Operations must not be cut short by the phase's end, only prevented from starting. The end
	// is read from the same clock as the wall time, not from a timer, so a phase is never
	// reported shorter than d when the runtime fires timers late or the clock is coarse.
	opCtx := context.WithoutCancel(ctx)
	type result struct {
		lat      []time.Duration
		errors   int
		firstErr error
	}
	results := make([]result, concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range concurrency {
		wg.Go(func() {
			r := &results[w]
			r.lat = make([]time.Duration, 0, 4096)
			for ctx.Err() == nil && time.Since(start) < d {
				t0 := time.Now()
				err := do(opCtx)
				lat := time.Since(t0)
				if err != nil {
					if r.firstErr == nil {
						r.firstErr = err
					}
					r.errors++
					continue
				}
				r.lat = append(r.lat, lat)
			}
		})
	}
	wg.Wait()
	out := loadResult{wall: time.Since(start)}
	for _, r := range results {
		out.latencies = append(out.latencies, r.lat...)
		out.errors += r.errors
		if out.firstErr == nil {
			out.firstErr = r.firstErr
		}
	}
	return out
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 1) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// latencyStats summarises latencies in milliseconds; it sorts its argument.
type latencyStats struct {
	P50, P90, P99, Max float64
}

func summarise(lat []time.Duration) latencyStats {
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 2) }
	return latencyStats{
		P50: ms(percentile(lat, 0.50)),
		P90: ms(percentile(lat, 0.90)),
		P99: ms(percentile(lat, 0.99)),
		Max: ms(percentile(lat, 1)),
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
