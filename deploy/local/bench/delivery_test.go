package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
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

func TestBatchOfAndSizes(t *testing.T) {
	ev := eventBody(0)
	b, err := json.Marshal(api.BatchRequest{Events: batchOf(ev, 3)})
	if err != nil {
		t.Fatal(err)
	}
	var got api.BatchRequest
	if err := json.Unmarshal(b, &got); err != nil || len(got.Events) != 3 || !bytes.Equal(got.Events[2], ev) {
		t.Fatalf("%v %s", err, b)
	}
	if s := fmt.Sprint(batchSizes(250)); s != "[100 100 50]" {
		t.Fatal(s)
	}
	if len(batchSizes(0)) != 0 {
		t.Fatal("batches for no events")
	}
}

// fakeIngest is an ingest service for the delivery suite's calls: it checks what the client
// sends and answers as the service would, refusing the events whose "customer_id" is "refuse".
type fakeIngest struct {
	t        *testing.T
	key      string
	status   int // set: every call is answered with this status and an error envelope
	calls    atomic.Int64
	received atomic.Int64
	maxBatch atomic.Int64
}

func (f *fakeIngest) rig(t *testing.T) *deliveryRig {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return &deliveryRig{rig: &rig{ingest: &child{url: srv.URL}}, http: srv.Client(), body: eventBody(0)}
}

func (f *fakeIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer "+f.key || r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("%s %s with Authorization %q, Content-Type %q", r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"))
	}
	w.Header().Set("Content-Type", "application/json")
	if f.status != 0 {
		w.Header().Set(api.HeaderRequestID, "req_fake")
		w.WriteHeader(f.status)
		_ = json.NewEncoder(w).Encode(api.ErrorEnvelope{Error: api.ErrorBody{Code: "unavailable", Message: "try later", RequestID: "req_fake"}})
		return
	}
	body, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/events":
		f.received.Add(1)
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(api.Accepted{EventID: fmt.Sprintf("evt_%d", f.received.Load()), Status: "accepted"})
	case "/events/batch":
		var req api.BatchRequest
		if err := json.Unmarshal(body, &req); err != nil || len(req.Events) == 0 {
			f.t.Errorf("batch body %.100s: %v", body, err)
		}
		f.received.Add(int64(len(req.Events)))
		if n := int64(len(req.Events)); n > f.maxBatch.Load() {
			f.maxBatch.Store(n)
		}
		var out api.BatchAnswer
		for i, e := range req.Events {
			if bytes.Contains(e, []byte(`"customer_id":"refuse"`)) {
				out.FailedCount++
				out.Results = append(out.Results, api.BatchResult{Error: &api.ItemError{Code: "invalid_event", Message: "refused"}})
				continue
			}
			out.Results = append(out.Results, api.BatchResult{EventID: fmt.Sprintf("evt_b%d", i), Status: "accepted"})
		}
		_ = json.NewEncoder(w).Encode(out)
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestPreloadCountsAcceptedAndRefusedEvents(t *testing.T) {
	f := &fakeIngest{t: t, key: "tenant_bench_live_x"}
	d := f.rig(t)
	pub, err := d.tenantClient(f.key)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := preload(t.Context(), pub, d.body, 250)
	if err != nil || rep.Accepted != 250 || rep.Failed != 0 || f.received.Load() != 250 || f.calls.Load() != 3 {
		t.Fatalf("%+v %v: %d events in %d calls", rep, err, f.received.Load(), f.calls.Load())
	}
	if f.maxBatch.Load() != api.MaxBatchEvents || rep.BatchSize != api.MaxBatchEvents {
		t.Fatalf("largest batch %d, reported %d", f.maxBatch.Load(), rep.BatchSize)
	}

	rep, err = preload(t.Context(), pub, []byte(`{"event_type":"customer.created","customer_id":"refuse"}`), 5)
	if err == nil || !strings.Contains(err.Error(), "5 of 5 events failed, the first with invalid_event") || rep.Accepted != 0 || rep.Failed != 5 {
		t.Fatalf("%+v %v", rep, err)
	}
}

// A refused call is made once, not retried, and its error is the client's, envelope and all.
func TestDeliveryCallsAreNotRetried(t *testing.T) {
	f := &fakeIngest{t: t, key: "tenant_bench_live_x", status: http.StatusServiceUnavailable}
	d := f.rig(t)
	pub, err := d.tenantClient(f.key)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := preload(t.Context(), pub, d.body, 10)
	if !client.IsCode(err, api.CodeUnavailable) || rep.Failed != 10 || f.calls.Load() != 1 {
		t.Fatalf("%+v %v after %d calls", rep, err, f.calls.Load())
	}
	_, err = publishID(pub, d.body)(t.Context())
	if e, ok := errors.AsType[*client.Error](err); !ok || e.RequestID != "req_fake" || f.calls.Load() != 2 {
		t.Fatalf("%v after %d calls", err, f.calls.Load())
	}
}

func TestPublishIDReturnsTheAcceptedID(t *testing.T) {
	f := &fakeIngest{t: t, key: "tenant_bench_live_x"}
	d := f.rig(t)
	pub, err := d.tenantClient(f.key)
	if err != nil {
		t.Fatal(err)
	}
	send := publishID(pub, d.body)
	for _, want := range []string{"evt_1", "evt_2"} {
		if id, err := send(t.Context()); err != nil || id != want {
			t.Fatalf("id %q %v, want %s", id, err, want)
		}
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

func TestStoreDrainRatios(t *testing.T) {
	d := drainReport{Events: 5000, Complete: true, EventsPerS: 600, Store: &storeDrainReport{Complete: true, EventsPerS: 800}}
	d.ratio(&ingestFigure{EventsPerS: 2000})
	if d.OverStore != 0.75 || d.Store.OverIngest != 0.4 || d.DrainOverIngest != 0.3 {
		t.Fatalf("drain/store %v store/ingest %v drain/ingest %v", d.OverStore, d.Store.OverIngest, d.DrainOverIngest)
	}
	if d.CPUBoundOverIngest != 0 {
		t.Fatalf("a CPU bound without CPU figures: %v", d.CPUBoundOverIngest)
	}
	d.CPUMicrosPerEvent = map[string]float64{"inbox": 600, "worker": 200}
	d.ratio(&ingestFigure{EventsPerS: 2000, CPUMicrosPerEvent: 250})
	if d.CPUBoundOverIngest != 0.417 {
		t.Fatalf("CPU bound %v, want 250/600", d.CPUBoundOverIngest)
	}
	// An incomplete baseline is no baseline.
	d = drainReport{Events: 5000, Complete: true, EventsPerS: 600, Store: &storeDrainReport{EventsPerS: 800}}
	d.ratio(&ingestFigure{EventsPerS: 2000})
	if d.OverStore != 0 || d.Store.OverIngest != 0 {
		t.Fatalf("judged against an incomplete baseline: %+v %+v", d, *d.Store)
	}
}

// The baseline's pullers lease per call what a worker pulls by default; the worker's configuration is
// read here so the two cannot drift apart.
func TestWorkerDefaultLeasesMatchTheWorker(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "worker", "runner", "config.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"CONCURRENCY", "BATCH_SIZE"} {
		m := regexp.MustCompile(`envconfig:"` + name + `" default:"(\d+)"`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no default for TRIGGER_%s in the worker's config.go", name)
		}
		if got, _ := strconv.Atoi(string(m[1])); got != workerDefaultLeases {
			t.Fatalf("TRIGGER_%s defaults to %d, the bench assumes %d", name, got, workerDefaultLeases)
		}
	}
	if got := leasesPerWorker(deliveryOptions{concurrency: 4}); got != 4 {
		t.Fatalf("concurrency 4: %d leases", got)
	}
	if got := leasesPerWorker(deliveryOptions{concurrency: 50, batchSize: 20}); got != 20 {
		t.Fatalf("batch 20: %d leases", got)
	}
}
