package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
)

func TestCallRate(t *testing.T) {
	before := ddbCalls{"Query ok": 100, "GetItem ok": 7}
	after := ddbCalls{"Query ok": 4100, "GetItem ok": 7, "UpdateItem ok": 20}
	w := callRate(before, after, 10*time.Second)
	if w.Calls != 4020 || w.PerS != 402 || w.Seconds != 10 {
		t.Fatalf("window %+v", w)
	}
	if want := map[string]float64{"Query ok": 400, "UpdateItem ok": 2}; !reflect.DeepEqual(w.ByKind, want) {
		t.Fatalf("by kind %v, want %v", w.ByKind, want)
	}
	if got := perTenant(w, 100); got != 4.02 {
		t.Fatalf("per tenant %v", got)
	}
	if got := perTenant(w, 0); got != 0 {
		t.Fatalf("per tenant of no tenants %v", got)
	}
	if z := callRate(before, after, 0); z.PerS != 0 || z.Calls != 0 {
		t.Fatalf("an empty window has a rate: %+v", z)
	}
}

func TestCountsSince(t *testing.T) {
	got := counts{"200 empty": 30, "429": 2, "503": 1}.since(counts{"200 empty": 10, "503": 1})
	if want := (counts{"200 empty": 20, "429": 2}); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		name string
		page api.EventPage
		err  error
		want string
	}{
		{"empty", api.EventPage{}, nil, "200 empty"},
		{"events", api.EventPage{Events: []api.Event{{EventID: "evt_1"}}}, nil, "200 events"},
		{"status", api.EventPage{}, fmt.Errorf("pull: %w", &client.Error{Status: http.StatusTooManyRequests}), "429"},
		{"transport", api.EventPage{}, errors.New("connection reset"), "transport error"},
	} {
		if got := outcome(tc.page, tc.err); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMatchLatencies(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sent := []sentEvent{
		{id: "a", returned: t0},
		{id: "b", returned: t0.Add(time.Second)},
		{id: "c", returned: t0},
	}
	received := map[string]time.Time{
		"a":     t0.Add(40 * time.Millisecond),
		"b":     t0.Add(time.Second - 2*time.Millisecond), // the poll answered before the 202 did
		"other": t0,
	}
	lat, missing, early := matchLatencies(sent, received)
	if want := []time.Duration{40 * time.Millisecond, 0}; !reflect.DeepEqual(lat, want) || missing != 1 || early != 1 {
		t.Fatalf("latencies %v, missing %d, early %d", lat, missing, early)
	}
}

func TestScaleProblems(t *testing.T) {
	ok := scaleIdle{InFlightMin: 95, InFlightMax: 100, Calls: callWindow{Seconds: 60}}
	if p := scaleProblems(100, ok, scaleLatency{Sent: 100, Received: 60}); p != nil {
		t.Fatalf("a slow run is a measurement, yet: %v", p)
	}
	if p := scaleProblems(100, scaleIdle{}, scaleLatency{Sent: 100, Received: 10}); len(p) != 3 {
		t.Fatalf("problems %v", p)
	}
	failing := ok
	failing.Answers = counts{"200 empty": 10, "503": 20, "transport error": 5}
	if p := scaleProblems(100, failing, scaleLatency{Sent: 100, Received: 100}); len(p) != 1 {
		t.Fatalf("polls that kept failing went unnoticed: %v", p)
	}
	if failed, all := refusals(failing.Answers); failed != 25 || all != 35 {
		t.Fatalf("refusals %d of %d", failed, all)
	}
	refused := ok
	refused.InFlightMin = 40
	if p := scaleProblems(100, refused, scaleLatency{Sent: 100, Received: 100}); len(p) != 1 {
		t.Fatalf("polls that were not waiting went unnoticed: %v", p)
	}
}

func TestSourceAddr(t *testing.T) {
	for n, want := range map[int]string{0: "127.1.0.0", 1: "127.1.0.1", 258: "127.1.1.2", 1<<16 + 3: "127.1.0.3"} {
		if got := sourceAddr(n).String(); got != want {
			t.Errorf("sourceAddr(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestParallel(t *testing.T) {
	var done atomic.Int64
	if err := parallel(context.Background(), 4, 100, func(context.Context, int) error { done.Add(1); return nil }); err != nil || done.Load() != 100 {
		t.Fatalf("err %v, done %d", err, done.Load())
	}
	boom := errors.New("boom")
	err := parallel(context.Background(), 4, 1000, func(_ context.Context, i int) error {
		if i == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
}

func TestScaleOptions(t *testing.T) {
	good := scaleOptions{tenants: 100, idle: time.Second, rampRate: 1, sample: 1, rate: 1, latency: time.Second}
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.tenants = 0
	if bad.validate() == nil {
		t.Fatal("no tenants accepted")
	}
}
