package noisy

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Latency summarises round trips in milliseconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func summarise(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		i := min(max(int(math.Ceil(p*float64(len(d))))-1, 0), len(d)-1)
		return math.Round(float64(d[i])/float64(time.Microsecond)) / 1000
	}
	return Latency{N: len(d), P50: at(0.50), P99: at(0.99), Max: at(1)}
}

// Figures are B's figures over one or more phases: POST /events round trips, and the time
// from each 202 to the pull that handed the event to a consumer.
type Figures struct {
	Name     string  `json:"name"`
	Accepted int     `json:"accepted"`
	Skipped  int     `json:"skipped_ticks"` // publishes not sent: B already had its most in flight
	Ingest   Latency `json:"ingest"`
	Delivery Latency `json:"delivery"`
	// Undelivered were accepted in these phases and never handed to a consumer.
	Undelivered int `json:"undelivered"`
}

// Figures aggregates B's events sent in phases under name.
func (s *Scenario) Figures(name string, phases ...string) Figures {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	f := Figures{Name: name}
	var ingest, delivery []time.Duration
	for id, e := range b.sent {
		if !slices.Contains(phases, e.phase) {
			continue
		}
		f.Accepted++
		ingest = append(ingest, e.rt)
		got, ok := b.received[id]
		if !ok {
			f.Undelivered++
			continue
		}
		// A pull can hand the event over before the 202 reaches the producer: zero, then.
		delivery = append(delivery, max(got.Sub(e.returned), 0))
	}
	for _, p := range phases {
		f.Skipped += b.skipped[p]
	}
	f.Ingest, f.Delivery = summarise(ingest), summarise(delivery)
	return f
}

// Result is what both actors saw.
type Result struct {
	Neighbour actorView `json:"neighbour"`
	// NeighbourFailures are B's calls that failed where the transport saw a success (an ack
	// item that was not acknowledged) or saw nothing.
	NeighbourFailures []Finding `json:"neighbour_failures,omitempty"`
	Abuser            actorView `json:"abuser"`
	Progress          Progress  `json:"abuser_progress"`
	Accepted          int       `json:"neighbour_accepted"`
	Processed         int       `json:"neighbour_processed"`
	Unprocessed       []string  `json:"neighbour_unprocessed,omitempty"`
}

// Result copies what the recorders and B saw so far.
func (s *Scenario) Result() Result {
	r := Result{Neighbour: s.neighbourRec.view(), Abuser: s.abuserRec.view(), Progress: s.Progress()}
	r.Unprocessed = s.b.unprocessed()
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	r.NeighbourFailures = slices.Clone(s.b.failures)
	r.Accepted, r.Processed = len(s.b.sent), len(s.b.acked)
	return r
}

// NeighbourErrors counts B's failed calls: raw answers other than 2xx, calls without an answer,
// and failures only the client saw. A single failure can show in two of these.
func (r Result) NeighbourErrors() int { return r.Neighbour.Unexpected + len(r.NeighbourFailures) }

// AbuserServerErrors counts A's answers of 500 or more.
func (r Result) AbuserServerErrors() int {
	n := 0
	for _, by := range r.Abuser.Statuses {
		for code, c := range by {
			if code >= 500 {
				n += c
			}
		}
	}
	return n
}

// PrintFigures writes B's figures, one row per set of phases.
func PrintFigures(w io.Writer, rows []Figures) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "B\taccepted\tingest p50\tingest p99\tdelivery p50\tdelivery p99\tundelivered\t")
	for _, f := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%.1f ms\t%.1f ms\t%.1f ms\t%.1f ms\t%d\t\n", f.Name, f.Accepted,
			f.Ingest.P50, f.Ingest.P99, f.Delivery.P50, f.Delivery.P99, f.Undelivered)
	}
	_ = tw.Flush()
}

// PrintActors writes each actor's raw answers and findings.
func (r Result) PrintActors(w io.Writer) {
	fmt.Fprintf(w, "B: %d accepted, %d processed, %d errors; answers: %s\n", r.Accepted, r.Processed, r.NeighbourErrors(), r.Neighbour.Statuses)
	fmt.Fprintf(w, "A: %d calls, %d unexpected, %d 5xx; answers: %s\n", r.Abuser.Statuses.Calls(), r.Abuser.Unexpected, r.AbuserServerErrors(), r.Abuser.Statuses)
	fmt.Fprintf(w, "A did: %+v\n", r.Progress)
	for _, f := range slices.Concat(r.Neighbour.Findings, r.NeighbourFailures, r.Abuser.Findings) {
		fmt.Fprintf(w, "  finding %s\n", strings.ReplaceAll(f.String(), "\n", " "))
	}
}
