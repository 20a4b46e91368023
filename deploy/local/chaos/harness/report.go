package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"
)

// Report is the ledger of one run, as printed and as written to ledger.json.
type Report struct {
	Plan      string `json:"plan"`
	Accepted  int    `json:"accepted"`  // events answered 202 (or 200, replaying a lost 202)
	Processed int    `json:"processed"` // accepted events a worker took up at least once
	Lost      int    `json:"lost"`      // accepted, never processed, not dead
	// Unexpected are events processed that no producer was told were accepted.
	Unexpected int `json:"unexpected"`
	// Duplicates are takings-up beyond each event's first; DuplicateEvents the events they hit.
	Duplicates        int            `json:"duplicates"`
	DuplicateEvents   int            `json:"duplicate_events"`
	Dead              []DeadEvent    `json:"dead"`
	Replayed          int            `json:"replayed"`
	Unconfirmed       int            `json:"unconfirmed"`
	Rejected          int            `json:"rejected"`
	IDMismatches      int            `json:"id_mismatches"`
	StatusCounts      map[string]int `json:"status_counts"`
	Other5xx          int            `json:"other_5xx"`
	RetryAfterMissing int            `json:"retry_after_missing"`
	TransportErrors   int            `json:"transport_errors"`
	LeftInInbox       int            `json:"left_in_inbox"`
	LongestCallS      float64        `json:"longest_call_seconds"`
	// CutByCrash are calls (the workers' included) that a replica took and died before
	// answering: the gateway answered them 503 with Retry-After.
	CutByCrash      int            `json:"gateway_calls_cut_by_crash"`
	WorkerErrors    int            `json:"worker_error_lines"`
	ByReplica       map[string]int `json:"processed_by_replica"`
	FaultsActed     map[string]int `json:"faults_acted"`
	Phases          []Phase        `json:"phases"`
	DrainSeconds    float64        `json:"drain_seconds"`
	DurationSeconds float64        `json:"duration_seconds"`
	Violations      []string       `json:"violations"`
	Evidence        []string       `json:"evidence,omitempty"` // ids and first errors behind the violations
	LogDir          string         `json:"log_dir"`
}

// DeadEvent is an accepted event that ended in the dead letters, and why.
type DeadEvent struct {
	EventID string `json:"event_id"`
	Reason  string `json:"reason"`
}

// Phase is one step of the fault schedule.
type Phase struct {
	Name     string  `json:"name"`
	StartS   float64 `json:"start_s"`
	Seconds  float64 `json:"seconds"`
	Accepted int     `json:"accepted_during"`
	Detail   string  `json:"detail,omitempty"`
}

// Failed reports whether any invariant was broken.
func (r *Report) Failed() bool { return len(r.Violations) > 0 }

// judge sets Violations from the counts.
func (r *Report) judge(drained bool) {
	check := func(bad bool, format string, args ...any) {
		if bad {
			r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
		}
	}
	check(r.Accepted == 0, "no event was accepted")
	check(r.Lost > 0, "lost = %d: accepted events neither processed nor dead", r.Lost)
	check(r.Unexpected > 0, "unexpected = %d: events processed that were never accepted", r.Unexpected)
	check(r.Other5xx > 0, "%d answers with a 5xx other than 503", r.Other5xx)
	check(r.RetryAfterMissing > 0, "%d answers 503/429 without Retry-After", r.RetryAfterMissing)
	check(r.TransportErrors > 0, "%d calls got no answer (hung or cut off)", r.TransportErrors)
	check(r.Unconfirmed > 0, "%d publishes never accepted within %v", r.Unconfirmed, publishBudget)
	check(r.Rejected > 0, "%d publishes refused with a 4xx", r.Rejected)
	check(r.IDMismatches > 0, "%d idempotency keys answered with two event ids", r.IDMismatches)
	check(!drained, "not drained in time: %d accepted events unsettled, %d left in the inbox", r.Lost, r.LeftInInbox)
}

// PrintTable writes the ledger for a reader.
func (r *Report) PrintTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("plan", r.Plan)
	row("accepted", r.Accepted)
	row("processed", r.Processed)
	row("lost", r.Lost)
	row("unexpected", r.Unexpected)
	row("duplicates", fmt.Sprintf("%d (on %d events)", r.Duplicates, r.DuplicateEvents))
	row("dead", len(r.Dead))
	row("replayed (lost 202, repeat answered 200)", r.Replayed)
	row("unconfirmed / rejected", fmt.Sprintf("%d / %d", r.Unconfirmed, r.Rejected))
	codes := make([]string, 0, len(r.StatusCounts))
	for c := range r.StatusCounts {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		row("HTTP "+c, r.StatusCounts[c])
	}
	row("5xx other than 503", r.Other5xx)
	row("503/429 without Retry-After", r.RetryAfterMissing)
	row("calls without an answer", r.TransportErrors)
	row("longest call", fmt.Sprintf("%.1fs", r.LongestCallS))
	row("left in the inbox", r.LeftInInbox)
	row("calls cut by a crash (gateway: 503)", r.CutByCrash)
	row("faults acted", fmt.Sprint(r.FaultsActed))
	row("processed by replica", fmt.Sprint(r.ByReplica))
	row("drain", fmt.Sprintf("%.1fs", r.DrainSeconds))
	row("duration", fmt.Sprintf("%.1fs", r.DurationSeconds))
	_ = tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tstart\tlength\taccepted\tdetail")
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "%s\t%.1fs\t%.1fs\t%d\t%s\n", p.Name, p.StartS, p.Seconds, p.Accepted, p.Detail)
	}
	_ = tw.Flush()
	if r.Failed() {
		fmt.Fprintln(w, "INVARIANTS BROKEN:")
		for _, v := range append(slices.Clone(r.Violations), r.Evidence...) {
			fmt.Fprintln(w, "  "+v)
		}
	} else {
		fmt.Fprintln(w, "all invariants hold: nothing lost, nothing unexpected, no 5xx but 503, every 503 with Retry-After")
	}
}

// WriteJSON writes the ledger to path, creating its folder.
func (r *Report) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// statusCounts renders the recorder's counts with string keys, as JSON needs, and counts the
// 5xx answers other than 503.
func statusCounts(c counts) (map[string]int, int) {
	out := make(map[string]int, len(c.statuses))
	other := 0
	for s, n := range c.statuses {
		out[strconv.Itoa(s)] = n
		if s >= 500 && s != 503 {
			other += n
		}
	}
	return out, other
}
