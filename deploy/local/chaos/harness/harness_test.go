package harness

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestProcessedLogCountsTheTenantsProcessingLines(t *testing.T) {
	p := newProcessedLog("chaos")
	lines := []string{
		`chaos-w-1 | {"level":"info","msg":"processing event","tenant_id":"chaos","event_id":"evt_a"}`,
		`chaos-w-2 | {"level":"info","msg":"processing event","tenant_id":"chaos","event_id":"evt_a"}`,
		`chaos-w-2 | {"level":"info","msg":"processing event","tenant_id":"chaos","event_id":"evt_b"}`,
		`worker    | {"level":"info","msg":"processing event","tenant_id":"idle","event_id":"evt_c"}`,
		`chaos-w-1 | {"level":"error","msg":"ack refused","tenant_id":"chaos"}`,
		`chaos-w-1 | panic: not json`,
	}
	all := strings.Join(lines, "\n") + "\n"
	// Written in uneven pieces: a line split across writes still counts once.
	for len(all) > 0 {
		n := min(len(all), 37)
		if _, err := p.Write([]byte(all[:n])); err != nil {
			t.Fatal(err)
		}
		all = all[n:]
	}
	got := p.snapshot()
	if len(got) != 2 || got["evt_a"] != 2 || got["evt_b"] != 1 {
		t.Errorf("times %v, want evt_a twice and evt_b once, nothing of the idle tenant", got)
	}
	if r := p.replicas(); r["chaos-w-1"] != 1 || r["chaos-w-2"] != 2 {
		t.Errorf("by replica %v", r)
	}
	if p.errors != 1 {
		t.Errorf("%d error lines, want 1", p.errors)
	}
}

func TestRecorderCountsEveryAnswerAndMissingRetryAfter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, _ := strconv.Atoi(r.URL.Query().Get("status"))
		if r.URL.Query().Get("retry_after") != "" {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	rec := newRecorder(http.DefaultTransport)
	c := &http.Client{Transport: rec}
	for _, q := range []string{"status=202", "status=202", "status=503&retry_after=1", "status=503", "status=429", "status=500"} {
		resp, err := c.Get(srv.URL + "/?" + q)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	got := rec.counts()
	statuses, other := statusCounts(got)
	if statuses["202"] != 2 || statuses["503"] != 2 || statuses["429"] != 1 || statuses["500"] != 1 || other != 1 {
		t.Errorf("statuses %v, other 5xx %d", statuses, other)
	}
	if got.retryAfterMissing != 2 {
		t.Errorf("%d answers without Retry-After, want 2 (a 503 and a 429)", got.retryAfterMissing)
	}
}

func TestLedgerNotesAKeyAnsweredWithTwoIDs(t *testing.T) {
	l := newLedger()
	l.accept("k1", "evt_1", false)
	l.accept("k1", "evt_1", true)
	l.accept("k1", "evt_2", true)
	if l.count() != 1 || l.replayed != 1 || len(l.mismatches) != 1 {
		t.Errorf("count %d, replayed %d, mismatches %v", l.count(), l.replayed, l.mismatches)
	}
}

func TestJudgeNamesEachBrokenInvariant(t *testing.T) {
	clean := func() *Report { return &Report{Accepted: 10, Processed: 10} }
	cases := []struct {
		name    string
		spoil   func(*Report)
		drained bool
		want    string // "" for no violation
	}{
		{"clean", func(*Report) {}, true, ""},
		{"lost", func(r *Report) { r.Lost = 1 }, true, "lost = 1"},
		{"unexpected", func(r *Report) { r.Unexpected = 2 }, true, "unexpected = 2"},
		{"other-5xx", func(r *Report) { r.Other5xx = 1 }, true, "5xx other than 503"},
		{"retry-after-missing", func(r *Report) { r.RetryAfterMissing = 1 }, true, "without Retry-After"},
		{"no-answer", func(r *Report) { r.TransportErrors = 1 }, true, "no answer"},
		{"unconfirmed", func(r *Report) { r.Unconfirmed = 1 }, true, "never accepted"},
		{"not-drained", func(*Report) {}, false, "not drained"},
		{"nothing-accepted", func(r *Report) { r.Accepted = 0 }, true, "no event was accepted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := clean()
			tc.spoil(r)
			r.judge(tc.drained)
			if tc.want == "" {
				if r.Failed() {
					t.Errorf("violations %v on a clean run", r.Violations)
				}
				return
			}
			if len(r.Violations) != 1 || !strings.Contains(r.Violations[0], tc.want) {
				t.Errorf("violations %v, want one naming %q", r.Violations, tc.want)
			}
		})
	}
}
