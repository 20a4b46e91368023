package main

import (
	"encoding/json"
	"sync"
	"time"
)

// The worker's log messages the bench reads: one per event it received from a pull, and the
// one it writes as its consumers start.
const (
	msgProcessing = "processing event"
	msgRunning    = "running"
)

// zapTimeLayout is how the services' logger writes "time" (zapcore.ISO8601TimeEncoder): to
// the millisecond, so a latency taken from it is truncated to whole milliseconds.
const zapTimeLayout = "2006-01-02T15:04:05.000Z0700"

// workerLine is the part of a worker log line the bench reads.
type workerLine struct {
	Level         string `json:"level"`
	Time          string `json:"time"`
	Msg           string `json:"msg"`
	EventID       string `json:"event_id"`
	DeliveryCount int    `json:"delivery_count"`
}

// parseWorkerLine decodes one JSON log line; ok is false for anything else (a panic trace,
// a line the worker printed before its logger existed).
func parseWorkerLine(line []byte) (l workerLine, logged time.Time, ok bool) {
	if err := json.Unmarshal(line, &l); err != nil {
		return l, time.Time{}, false
	}
	t, err := time.Parse(zapTimeLayout, l.Time)
	if err != nil {
		if t, err = time.Parse(time.RFC3339Nano, l.Time); err != nil {
			return l, time.Time{}, false
		}
	}
	return l, t, true
}

// receipt is the first time the worker logged an event: by its own clock (logged) and when
// the bench read that line (read).
type receipt struct {
	logged, read time.Time
}

// receipts collects what one phase's worker replicas logged about the events they received.
type receipts struct {
	mu           sync.Mutex
	first        map[string]receipt
	lines        int // "processing event" lines, repeats included
	redeliveries int // lines for an event already seen, or with delivery_count > 1
	warnings     int // warn and error lines: lost leases, failed acks, refused pulls
	firstWarning string
	last         time.Time // worker time of the latest first receipt
	running      time.Time // worker time of the earliest "running" line
}

func newReceipts() *receipts { return &receipts{first: map[string]receipt{}} }

// observe is the OnLine of every worker the bench runs.
func (r *receipts) observe(line []byte, read time.Time) {
	l, logged, ok := parseWorkerLine(line)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case l.Level == "warn" || l.Level == "error":
		r.warnings++
		if r.firstWarning == "" {
			r.firstWarning = string(line)
		}
	case l.Msg == msgRunning:
		if r.running.IsZero() || logged.Before(r.running) {
			r.running = logged
		}
	case l.Msg == msgProcessing && l.EventID != "":
		r.lines++
		if _, seen := r.first[l.EventID]; seen || l.DeliveryCount > 1 {
			r.redeliveries++
		}
		if _, seen := r.first[l.EventID]; !seen {
			r.first[l.EventID] = receipt{logged: logged, read: read}
			if logged.After(r.last) {
				r.last = logged
			}
		}
	}
}

// count is how many distinct events have been received so far.
func (r *receipts) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.first)
}

// countOf is how many of ids have been received so far.
func (r *receipts) countOf(ids []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := r.first[id]; ok {
			n++
		}
	}
	return n
}

// receiptsView is a copy of what receipts collected, for analysis off the lock.
type receiptsView struct {
	first        map[string]receipt
	lines        int
	redeliveries int
	warnings     int
	firstWarning string
	last         time.Time
	running      time.Time
}

func (r *receipts) snapshot() receiptsView {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := receiptsView{
		first: make(map[string]receipt, len(r.first)), lines: r.lines, redeliveries: r.redeliveries,
		warnings: r.warnings, firstWarning: r.firstWarning, last: r.last, running: r.running,
	}
	for k, x := range r.first {
		v.first[k] = x
	}
	return v
}

// earliest is the worker time of the first event received, zero if none was.
func (v receiptsView) earliest() time.Time {
	var t time.Time
	for _, r := range v.first {
		if t.IsZero() || r.logged.Before(t) {
			t = r.logged
		}
	}
	return t
}

// sentEvent is one event the bench ingested: when it sent POST /events and when the 202
// reached it.
type sentEvent struct {
	id             string
	sent, returned time.Time
}

// deliveryLatencies matches sent events with their receipts. Both sides read the same
// machine clock, so the differences are latencies; byLog uses the worker's own log time,
// byRead the time the bench read the line. negative counts events the worker logged before
// their 202 reached the bench, which the shared clock makes possible rather than wrong.
func deliveryLatencies(sent []sentEvent, first map[string]receipt) (byLog, byRead []time.Duration, missing, negative int) {
	for _, s := range sent {
		r, ok := first[s.id]
		if !ok {
			missing++
			continue
		}
		d := r.logged.Sub(s.returned)
		if d < 0 {
			negative++
		}
		byLog = append(byLog, d)
		byRead = append(byRead, r.read.Sub(s.returned))
	}
	return byLog, byRead, missing, negative
}
