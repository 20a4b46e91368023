package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// A line as the worker writes it (pkg/logging: zap's production JSON, ISO 8601 time).
const processingLine = `{"level":"info","time":"2026-11-28T23:27:26.556Z","caller":"runner/consumer.go:163","msg":"processing event","service":"worker","tenant_id":"bench-drain-1-1","key_prefix":"tenant_bench-drain-1-1_live_Zu7vcw","event_id":"evt_02eff205e43e7b2eb49c0d729fea73d5","event_type":"customer.created","delivery_count":1,"payload_bytes":81}`

func TestParseWorkerLine(t *testing.T) {
	l, logged, ok := parseWorkerLine([]byte(processingLine))
	if !ok || l.Msg != msgProcessing || l.EventID != "evt_02eff205e43e7b2eb49c0d729fea73d5" || l.DeliveryCount != 1 {
		t.Fatalf("%+v %v", l, ok)
	}
	if want := time.Date(2026, 11, 28, 23, 27, 26, 556e6, time.UTC); !logged.Equal(want) {
		t.Fatalf("time %v, want %v", logged, want)
	}
	// A machine in another zone writes its offset; the instant must not move.
	_, logged, ok = parseWorkerLine([]byte(`{"level":"info","time":"2026-11-29T00:27:26.556+0100","msg":"running"}`))
	if !ok || !logged.Equal(time.Date(2026, 11, 28, 23, 27, 26, 556e6, time.UTC)) {
		t.Fatalf("offset time %v (%v)", logged, ok)
	}
	for _, bad := range []string{"panic: boom", `{"msg":"processing event","time":"yesterday"}`, ""} {
		if _, _, ok := parseWorkerLine([]byte(bad)); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLineTeeSplitsLinesAcrossWrites(t *testing.T) {
	var out bytes.Buffer
	var lines []string
	var stamps []time.Time
	w := &lineTee{out: &out, onLine: func(line []byte, read time.Time) {
		lines = append(lines, string(line))
		stamps = append(stamps, read)
	}}
	for _, chunk := range []string{"one\ntw", "o\nthree\nfour\n", "tail without newline"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("write %q: %d, %v", chunk, n, err)
		}
	}
	if fmt.Sprint(lines) != "[one two three four]" {
		t.Fatalf("lines %q", lines)
	}
	if !stamps[2].Equal(stamps[3]) {
		t.Error("lines read together got different stamps")
	}
	if out.String() != "one\ntwo\nthree\nfour\ntail without newline" {
		t.Fatalf("copy %q", out.String())
	}
}

func TestReceiptsCountFirstDeliveriesAndRepeats(t *testing.T) {
	r := newReceipts()
	read := time.Now()
	line := func(id string, count int, at string) []byte {
		return fmt.Appendf(nil, `{"level":"info","time":"2026-11-28T23:27:%s","msg":"processing event","event_id":%q,"delivery_count":%d}`, at, id, count)
	}
	r.observe([]byte(`{"level":"info","time":"2026-11-28T23:27:25.900Z","msg":"running"}`), read)
	r.observe([]byte(`{"level":"info","time":"2026-11-28T23:27:25.950Z","msg":"running"}`), read)
	r.observe(line("evt_a", 1, "26.000Z"), read)
	r.observe(line("evt_b", 1, "26.500Z"), read)
	r.observe(line("evt_a", 2, "27.000Z"), read) // redelivered: the first receipt stands
	r.observe(line("evt_c", 3, "26.200Z"), read) // first seen here, but not its first delivery
	r.observe([]byte(`{"level":"warn","time":"2026-11-28T23:27:27.000Z","msg":"ack: lease lost","event_id":"evt_b"}`), read)
	r.observe([]byte("not json"), read)

	v := r.snapshot()
	if len(v.first) != 3 || v.lines != 4 || v.redeliveries != 2 || v.warnings != 1 || v.firstWarning == "" {
		t.Fatalf("%+v", v)
	}
	if got := v.first["evt_a"].logged.Format("05.000"); got != "26.000" {
		t.Fatalf("evt_a first at %s", got)
	}
	if v.last.Format("05.000") != "26.500" || v.earliest().Format("05.000") != "26.000" || v.running.Format("05.000") != "25.900" {
		t.Fatalf("last %v earliest %v running %v", v.last, v.earliest(), v.running)
	}
	if r.count() != 3 || r.countOf([]string{"evt_a", "evt_x"}) != 1 {
		t.Fatal("counts")
	}
}

func TestDeliveryLatenciesMatchByID(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sent := []sentEvent{
		{id: "a", returned: base},
		{id: "b", returned: base.Add(time.Second)},
		{id: "lost", returned: base},
	}
	first := map[string]receipt{
		"a": {logged: base.Add(30 * time.Millisecond), read: base.Add(31 * time.Millisecond)},
		// The worker can log an event before its 202 reaches the bench.
		"b":     {logged: base.Add(time.Second - 2*time.Millisecond), read: base.Add(time.Second + time.Millisecond)},
		"other": {logged: base},
	}
	byLog, byRead, missing, negative := deliveryLatencies(sent, first)
	if missing != 1 || negative != 1 || len(byLog) != 2 || len(byRead) != 2 {
		t.Fatalf("missing %d negative %d %v %v", missing, negative, byLog, byRead)
	}
	if byLog[0] != 30*time.Millisecond || byLog[1] != -2*time.Millisecond || byRead[1] != time.Millisecond {
		t.Fatalf("%v %v", byLog, byRead)
	}
}

func TestSteadyLoadKeepsPaceAndCountsOnlyTheWindow(t *testing.T) {
	var calls atomic.Int64
	var measureAt time.Time
	start := time.Now()
	r := steadyLoad(context.Background(), 200, 50*time.Millisecond, 100*time.Millisecond, func(context.Context) (string, error) {
		n := calls.Add(1)
		if n%7 == 0 {
			return "", errors.New("refused")
		}
		return fmt.Sprint("evt_", n), nil
	}, func() { measureAt = time.Now() })
	// 200/s for 150 ms is 30 sends, 10 of them in the lead.
	if calls.Load() != 30 {
		t.Fatalf("%d sends, want 30", calls.Load())
	}
	if got := len(r.sent) + r.errors; got != 20 {
		t.Fatalf("%d counted, want 20", got)
	}
	if r.errors == 0 || r.firstErr == nil || len(r.roundTrips) != len(r.sent) {
		t.Fatalf("%+v", r)
	}
	if d := measureAt.Sub(start); d < 45*time.Millisecond {
		t.Fatalf("window opened after %v, before the lead ended", d)
	}
	if r.wall < 90*time.Millisecond {
		t.Fatalf("window %v", r.wall)
	}
}

func TestBatchBodyAndSizes(t *testing.T) {
	ev := eventBody(0)
	var got struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(batchBody(ev, 3), &got); err != nil || len(got.Events) != 3 || !bytes.Equal(got.Events[2], ev) {
		t.Fatalf("%v %d", err, len(got.Events))
	}
	if s := fmt.Sprint(batchSizes(250)); s != "[100 100 50]" {
		t.Fatal(s)
	}
	if len(batchSizes(0)) != 0 {
		t.Fatal("batches for no events")
	}
}

func TestGroupCores(t *testing.T) {
	groups := []cpuGroup{{"bench", []int{1}}, {"worker", []int{2, 3}}}
	before := groupSnapshot{ok: true, per: []time.Duration{time.Second, 2 * time.Second}, system: systemCPU{busy: 10 * time.Second, idle: 5 * time.Second}}
	after := groupSnapshot{ok: true, per: []time.Duration{2 * time.Second, 5 * time.Second}, system: systemCPU{busy: 16 * time.Second, idle: 6 * time.Second}}
	c := after.cores(before, groups, 2*time.Second)
	want := map[string]float64{"bench": 0.5, "worker": 1.5, "other": 1, "idle": 0.5}
	if fmt.Sprint(c) != fmt.Sprint(want) {
		t.Fatalf("cores %v, want %v", c, want)
	}
	if (groupSnapshot{}).cores(before, groups, time.Second) != nil {
		t.Fatal("cores without /proc")
	}
	us := perEvent(c, 2*time.Second, 1000)
	if us["worker"] != 3000 || us["bench"] != 1000 || us["other"] != 2000 {
		t.Fatalf("per event %v", us)
	}
	if _, ok := us["idle"]; ok {
		t.Fatal("idle per event")
	}
}

func TestDrainTimesCountFromRunning(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	running := start.Add(400 * time.Millisecond)
	end := running.Add(10 * time.Second)
	v := receiptsView{
		running: running, last: running.Add(9 * time.Second),
		first: map[string]receipt{"a": {logged: running.Add(50 * time.Millisecond)}, "b": {logged: running.Add(9 * time.Second)}},
	}
	d := drainReport{Events: 5000, Complete: true}
	d.drainTimes(start, end, v)
	if d.StartupMS != 400 || d.RunningSeconds != 10 || d.EventsPerS != 500 || d.Seconds != 10.4 || d.EventsPerSWithStartup != 480.8 {
		t.Fatalf("%+v", d)
	}
	if d.FirstReceiptMS != 50 || d.LastReceiptSeconds != 9 {
		t.Fatalf("%+v", d)
	}

	d.ratio(&ingestFigure{EventsPerS: 1100})
	if d.DrainOverIngest != 0.455 || d.GoalMet == nil || *d.GoalMet {
		t.Fatalf("ratio %v met %v", d.DrainOverIngest, d.GoalMet)
	}

	// Without a "running" line the drain counts from the start; an incomplete one has no rate.
	d = drainReport{Events: 5000}
	d.drainTimes(start, end, receiptsView{})
	if d.StartupMS != 0 || d.RunningSeconds != 10.4 || d.EventsPerS != 0 {
		t.Fatalf("%+v", d)
	}
	d.ratio(&ingestFigure{EventsPerS: 1000})
	if d.GoalMet != nil {
		t.Fatal("goal judged on an incomplete drain")
	}
}

func TestDeliveryReportValidity(t *testing.T) {
	r := deliveryReport{Goals: deliveryGoals{P50MS: 50, P99MS: 250}}
	r.Latency = []latencyReport{
		{Worker: longPollWorker, Events: 100, Received: 100, LatencyMS: latencyStats{P50: 20, P99: 300}},
		{Worker: pollWorker, Events: 100, Received: 100, LatencyMS: latencyStats{P50: 1000, P99: 2000}},
	}
	r.Drain = []drainReport{{Complete: true}}
	r.finish()
	if !r.Valid || r.LatencyGoalMet == nil || *r.LatencyGoalMet {
		t.Fatalf("valid %v goal %v", r.Valid, r.LatencyGoalMet)
	}
	r.Drain = append(r.Drain, drainReport{Complete: false})
	r.finish()
	if r.Valid {
		t.Fatal("an incomplete drain left the report valid")
	}
	r.Drain = r.Drain[:1]
	r.Latency[1].Missing = 1
	r.finish()
	if r.Valid {
		t.Fatal("a lost event left the report valid")
	}
}

func TestReceiptTimeline(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := receiptsView{running: from, first: map[string]receipt{}}
	for i := range 15 {
		// 10 events in the first 5 s, 5 in the next.
		at := from.Add(time.Duration(i) * 500 * time.Millisecond)
		if i >= 10 {
			at = from.Add(6 * time.Second)
		}
		v.first[fmt.Sprint(i)] = receipt{logged: at}
	}
	if got := fmt.Sprint(receiptTimeline(v, 5*time.Second)); got != "[2 1]" {
		t.Fatalf("timeline %s", got)
	}
	if receiptTimeline(receiptsView{}, time.Second) != nil {
		t.Fatal("timeline without receipts")
	}
}
