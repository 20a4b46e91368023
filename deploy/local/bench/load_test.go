package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0.001, time.Millisecond}} {
		if got := percentile(lat, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("empty input")
	}
}

func TestClosedLoopCountsSuccessesAndErrors(t *testing.T) {
	var n atomic.Int64
	r := closedLoop(context.Background(), 4, 50*time.Millisecond, func(context.Context) error {
		time.Sleep(time.Millisecond)
		if n.Add(1)%2 == 0 {
			return errors.New("boom")
		}
		return nil
	})
	total := int64(len(r.latencies) + r.errors)
	if total != n.Load() || r.errors == 0 || r.firstErr == nil || len(r.latencies) == 0 {
		t.Fatalf("ops %d, ok %d, errors %d (%v)", n.Load(), len(r.latencies), r.errors, r.firstErr)
	}
	if r.wall < 50*time.Millisecond {
		t.Fatalf("wall %v shorter than the phase", r.wall)
	}
}
