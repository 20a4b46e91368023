package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
	"github.com/trigger-api/trigger-api/pkg/events"
)

type costOptions struct {
	events int
	sizes  string // payload sizes in KiB, comma-separated
	out    string
}

func (c costOptions) validate() error {
	if c.events < 1 || c.events > 1000 {
		return fmt.Errorf("-cost-events %d: want 1 to 1000", c.events)
	}
	_, err := parseSizes(c.sizes)
	return err
}

// parseSizes reads -cost-sizes: payload sizes in KiB, comma-separated.
func parseSizes(s string) ([]int, error) {
	out, ok := commaInts(s, 1, api.MaxEventBytes>>10)
	if !ok {
		return nil, fmt.Errorf("-cost-sizes %q: want sizes in KiB from 1 to %d, comma-separated", s, api.MaxEventBytes>>10)
	}
	return out, nil
}

// costSize is one payload size's figures, per event.
type costSize struct {
	PayloadKiB int `json:"payload_kib"`
	BodyBytes  int `json:"body_bytes"`
	Events     int `json:"events"`
	// Steps: ingest per event accepted, lease per event leased, ack per event acknowledged,
	// list per event GET /inbox returned.
	Ingest unitsPerEvent `json:"ingest"`
	Lease  unitsPerEvent `json:"lease"`
	Ack    unitsPerEvent `json:"ack"`
	List   unitsPerEvent `json:"list"`
	// Lifecycle is ingest, lease and ack together: what a delivered event costs.
	Lifecycle unitsPerEvent `json:"lifecycle"`
	// ConditionFailed are failed conditional writes per event over the lifecycle: billed by
	// DynamoDB, reported by no answer, so not in the units.
	ConditionFailed float64    `json:"condition_failed_per_event"`
	Goals           costGoal   `json:"goals"`
	Dollars         costDollar `json:"dollars_per_million_events"`
}

type costGoal struct {
	LifecycleWriteUnits float64 `json:"lifecycle_write_units"`
	ReadUnits           float64 `json:"read_units_per_event_returned"`
	WritesMet           bool    `json:"writes_met"`
	PullReadsMet        bool    `json:"pull_reads_met"`
	ListReadsMet        bool    `json:"list_reads_met"`
}

// costDollar prices a million events: delivered is ingest, lease and ack with the pull's
// reads; listing is the reads of listing them once.
type costDollar struct {
	Writes    float64 `json:"writes"`
	PullReads float64 `json:"pull_reads"`
	Delivered float64 `json:"delivered"`
	Listing   float64 `json:"listing"`
}

// finish derives the lifecycle, the goals and the prices from the steps.
func (c *costSize) finish(lifecycle units, conditionFailed float64) {
	c.Lifecycle = perEventUnits(lifecycle, c.Events)
	c.ConditionFailed = round(conditionFailed/float64(max(c.Events, 1)), 3)
	w, r := costGoals(float64(c.PayloadKiB))
	c.Goals = costGoal{
		LifecycleWriteUnits: w, ReadUnits: r,
		WritesMet: c.Lifecycle.Write <= w, PullReadsMet: c.Lease.Read <= r, ListReadsMet: c.List.Read <= r,
	}
	c.Dollars = costDollar{
		Writes: dollarsPerMillion(c.Lifecycle.Write, 0), PullReads: dollarsPerMillion(0, c.Lease.Read),
		Delivered: dollarsPerMillion(c.Lifecycle.Write, c.Lease.Read), Listing: dollarsPerMillion(0, c.List.Read),
	}
}

type costReport struct {
	Bench    string      `json:"bench"`
	Started  string      `json:"started"`
	Go       string      `json:"go"`
	CPUs     int         `json:"cpus"`
	LoadAvg  loadTriple  `json:"load_average"`
	DynamoDB string      `json:"dynamodb"`
	Prices   costPrices  `json:"prices"`
	Method   string      `json:"method"`
	Sizes    []*costSize `json:"sizes"`
}

type costPrices struct {
	Region                string  `json:"region"`
	AsOf                  string  `json:"as_of"`
	DollarsPerMillionWRU  float64 `json:"dollars_per_million_write_request_units"`
	DollarsPerMillionRRU  float64 `json:"dollars_per_million_read_request_units"`
	FailedWritesUncounted bool    `json:"failed_conditional_writes_uncounted"`
}

const costMethod = "Each step is the difference of the services' own trigger_dynamodb_consumed_capacity_total " +
	"(the units DynamoDB reported for each call, per table and index) scraped from /metrics before and after it: " +
	"ingest from the ingest binary, pull, ack and GET /inbox from the inbox binary. A fresh tenant per size, its key " +
	"warmed in both services first. Reads are per event returned."

// costRig is the cost suite's share of the rig: the inbox service and the clients.
type costRig struct {
	*rig
	inbox *child
	http  *http.Client
}

// runCost measures what each payload size costs in DynamoDB capacity units, through the
// services' own count of them, so it holds whatever the item layout.
func runCost(ctx context.Context, o options, r *rig, stdout io.Writer) error {
	sizes, err := parseSizes(o.cost.sizes)
	if err != nil {
		return err
	}
	inbox, err := r.startInbox(ctx, o, "inbox-cost.log")
	if err != nil {
		return err
	}
	defer inbox.stop()
	c := &costRig{rig: r, inbox: inbox, http: loadClient(8)}
	defer c.http.CloseIdleConnections()
	rep := costReport{
		Bench: "cost", Started: time.Now().UTC().Format(time.RFC3339), Go: runtime.Version(), CPUs: runtime.NumCPU(),
		LoadAvg: loadTriple{Start: loadAverages()}, DynamoDB: r.ddbDesc, Method: costMethod,
		Prices: costPrices{Region: pricesRegion, AsOf: pricesAsOf, DollarsPerMillionWRU: dollarsPerMillionWRU,
			DollarsPerMillionRRU: dollarsPerMillionRRU, FailedWritesUncounted: true},
	}
	var errs []error
	for _, kib := range sizes {
		s, err := c.measureSize(ctx, kib, o.cost.events)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cost of %d KiB events: %w", kib, err))
			continue
		}
		rep.Sizes = append(rep.Sizes, s)
		r.logf("cost %d KiB: lifecycle %.2f write units per event, pull %.2f and list %.2f read units per event",
			kib, s.Lifecycle.Write, s.Lease.Read, s.List.Read)
	}
	rep.LoadAvg.End = loadAverages()
	if err := writeReport(r.path(o.cost.out), rep); err != nil {
		return err
	}
	printCostTable(stdout, rep)
	b, err := json.Marshal(rep.summary())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return errors.Join(errs...)
}

// measureSize ingests, leases and acks n events of kib KiB for a fresh tenant, then ingests n
// more and lists them.
func (c *costRig) measureSize(ctx context.Context, kib, n int) (*costSize, error) {
	body := eventBody(kib << 10)
	s := &costSize{PayloadKiB: kib, BodyBytes: len(body), Events: n}
	key, err := seed(ctx, c.client, c.tables, fmt.Sprintf("bench-cost-%dk", kib))
	if err != nil {
		return nil, err
	}
	ingest, err := client.New(c.ingest.url, key, client.WithHTTPClient(c.http), client.WithRetries(0))
	if err != nil {
		return nil, err
	}
	inbox, err := client.New(c.inbox.url, key, client.WithHTTPClient(c.http), client.WithRetries(0))
	if err != nil {
		return nil, err
	}
	if err := c.warmKey(ctx, ingest, inbox); err != nil {
		return nil, err
	}

	var leases []api.LeaseRef
	var leaseErr error
	steps := []struct {
		name string
		svc  *child
		out  *unitsPerEvent
		do   func() (int, error)
	}{
		{"ingest", c.ingest, &s.Ingest, func() (int, error) { return publishAll(ctx, ingest, body, n) }},
		{"lease", c.inbox, &s.Lease, func() (int, error) { leases, leaseErr = leaseAll(ctx, inbox, n); return len(leases), leaseErr }},
		{"ack", c.inbox, &s.Ack, func() (int, error) { return ackAll(ctx, inbox, leases) }},
	}
	lifecycle, failed := units{}, 0.0
	for _, st := range steps {
		used, calls, handled, err := c.measure(ctx, st.svc, st.do)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.name, err)
		}
		if handled != n {
			return nil, fmt.Errorf("%s: %d of %d events", st.name, handled, n)
		}
		*st.out = perEventUnits(used, n)
		for k, v := range used {
			lifecycle[k] += v
		}
		failed += conditionFailed(calls)
	}

	if _, err := publishAll(ctx, ingest, body, n); err != nil {
		return nil, fmt.Errorf("second batch: %w", err)
	}
	used, _, listed, err := c.measure(ctx, c.inbox, func() (int, error) { return listAll(ctx, inbox) })
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	if listed < n {
		return nil, fmt.Errorf("list: %d of %d events", listed, n)
	}
	s.List = perEventUnits(used, listed)
	s.finish(lifecycle, failed)
	return s, nil
}

// scraped is what a service's /metrics says of its DynamoDB calls.
type scraped struct {
	units units
	calls ddbCalls
}

func (c *costRig) scrape(ctx context.Context, svc *child) (scraped, error) {
	b, err := fetchMetrics(ctx, c.http, svc.internalURL)
	if err != nil {
		return scraped{}, err
	}
	var s scraped
	if s.units, err = parseUnits(bytes.NewReader(b)); err != nil {
		return s, err
	}
	s.calls, err = parseDDBCalls(bytes.NewReader(b))
	return s, err
}

// measure runs do between two scrapes of svc and returns the units consumed, the calls made
// and the events do handled. A step that consumed nothing is a service that does not count.
func (c *costRig) measure(ctx context.Context, svc *child, do func() (int, error)) (units, ddbCalls, int, error) {
	before, err := c.scrape(ctx, svc)
	if err != nil {
		return nil, nil, 0, err
	}
	n, err := do()
	if err != nil {
		return nil, nil, n, err
	}
	after, err := c.scrape(ctx, svc)
	if err != nil {
		return nil, nil, n, err
	}
	used := after.units.since(before.units)
	if len(used) == 0 {
		return nil, nil, n, fmt.Errorf("%s counted no capacity units (%s missing from its /metrics?)", svc.Name(), capacitySeries)
	}
	calls := ddbCalls{}
	for k, v := range after.calls {
		if d := v - before.calls[k]; d > 0 {
			calls[k] = d
		}
	}
	return used, calls, n, nil
}

func conditionFailed(calls ddbCalls) float64 {
	var n float64
	for k, v := range calls {
		if strings.HasSuffix(k, " condition_failed") {
			n += v
		}
	}
	return n
}

// warmKey has each service resolve the tenant's key and record its first use before anything
// is measured: those reads and that write are per key, not per event. The use is recorded in
// the background, so it waits until the services' counts stop moving.
func (c *costRig) warmKey(ctx context.Context, ingest, inbox *client.Client) error {
	if _, err := ingest.GetEvent(ctx, events.NewID()); !client.IsCode(err, api.CodeNotFound) {
		return fmt.Errorf("warm the key in ingest: want not_found, got %v", err)
	}
	if _, err := inbox.Inbox(ctx, client.InboxQuery{Limit: 1}); err != nil {
		return fmt.Errorf("warm the key in inbox: %w", err)
	}
	for _, svc := range []*child{c.ingest, c.inbox} {
		prev, err := c.scrape(ctx, svc)
		if err != nil {
			return err
		}
		for range 20 {
			if err := client.Sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
			cur, err := c.scrape(ctx, svc)
			if err != nil {
				return err
			}
			if len(cur.units.since(prev.units)) == 0 {
				break
			}
			prev = cur
		}
	}
	return nil
}

// publishAll sends n events through POST /events, a few at a time.
func publishAll(ctx context.Context, pub *client.Client, body []byte, n int) (int, error) {
	var (
		mu       sync.Mutex
		accepted int
		firstErr error
		wg       sync.WaitGroup
	)
	jobs := make(chan struct{})
	for range min(4, n) {
		wg.Go(func() {
			for range jobs {
				_, _, err := pub.Publish(ctx, body, "")
				mu.Lock()
				if err != nil {
					firstErr = cmp.Or(firstErr, err)
				} else {
					accepted++
				}
				mu.Unlock()
			}
		})
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	return accepted, firstErr
}

// leaseTimeout outlasts the suite: no lease runs out and redelivers an event mid-measure.
const leaseTimeout = 600

// leaseAll pulls until n events are leased. A pull may lease fewer than asked (its byte
// budget), and one that finds nothing is retried a few times before giving up.
func leaseAll(ctx context.Context, inbox *client.Client, n int) ([]api.LeaseRef, error) {
	var out []api.LeaseRef
	for empty := 0; len(out) < n && empty < 10; {
		want, vis := min(n-len(out), api.MaxPullEvents), leaseTimeout
		page, err := inbox.Pull(ctx, api.PullRequest{MaxEvents: &want, VisibilityTimeoutSeconds: &vis})
		if err != nil {
			return out, err
		}
		if len(page.Events) == 0 {
			empty++
			if err := client.Sleep(ctx, 100*time.Millisecond); err != nil {
				return out, err
			}
			continue
		}
		for _, e := range page.Events {
			out = append(out, api.LeaseRef{EventID: e.EventID, LeaseID: e.LeaseID})
		}
	}
	return out, nil
}

// ackAll acknowledges the leases and returns how many succeeded.
func ackAll(ctx context.Context, inbox *client.Client, leases []api.LeaseRef) (int, error) {
	done := 0
	for len(leases) > 0 {
		k := min(len(leases), api.MaxSettleItems)
		ans, err := inbox.AckLeases(ctx, leases[:k])
		if err != nil {
			return done, err
		}
		done += ans.SucceededCount
		leases = leases[k:]
	}
	return done, nil
}

// listAll pages through GET /inbox and returns how many events it listed.
func listAll(ctx context.Context, inbox *client.Client) (int, error) {
	q := client.InboxQuery{Limit: api.MaxListLimit}
	n := 0
	for {
		page, err := inbox.Inbox(ctx, q)
		if err != nil {
			return n, err
		}
		n += len(page.Events)
		if page.NextCursor == "" {
			return n, nil
		}
		q.Cursor = page.NextCursor
	}
}

// costSummary is the one-line JSON summary: per size, the figures the goals are about.
type costSummary struct {
	Bench   string            `json:"bench"`
	LoadAvg loadTriple        `json:"load_average"`
	Sizes   []costSizeSummary `json:"sizes"`
}

type costSizeSummary struct {
	PayloadKiB       int     `json:"payload_kib"`
	LifecycleWrite   float64 `json:"lifecycle_write_units"`
	WriteGoal        float64 `json:"write_goal"`
	PullRead         float64 `json:"pull_read_units"`
	ListRead         float64 `json:"list_read_units"`
	ReadGoal         float64 `json:"read_goal"`
	DeliveredDollars float64 `json:"dollars_per_million_delivered"`
}

func (r costReport) summary() costSummary {
	out := costSummary{Bench: r.Bench, LoadAvg: r.LoadAvg}
	for _, s := range r.Sizes {
		out.Sizes = append(out.Sizes, costSizeSummary{
			PayloadKiB: s.PayloadKiB, LifecycleWrite: s.Lifecycle.Write, WriteGoal: s.Goals.LifecycleWriteUnits,
			PullRead: s.Lease.Read, ListRead: s.List.Read, ReadGoal: s.Goals.ReadUnits, DeliveredDollars: s.Dollars.Delivered,
		})
	}
	return out
}

func printCostTable(w io.Writer, r costReport) {
	fmt.Fprintf(w, "\nDynamoDB capacity units per event, as the services count what DynamoDB reports (%s); load %s -> %s\n\n",
		r.DynamoDB, r.LoadAvg.Start, r.LoadAvg.End)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "payload\tingest W\tlease W\tack W\tlifecycle W\ttables+indexes\tgoal\tpull R\tlist R\tgoal\t$/M delivered\t$/M listed\t")
	for _, s := range r.Sizes {
		fmt.Fprintf(tw, "%d KiB\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f+%.2f\t%s\t%.2f\t%.2f\t%s\t%.2f\t%.2f\t\n",
			s.PayloadKiB, s.Ingest.Write, s.Lease.Write, s.Ack.Write, s.Lifecycle.Write, s.Lifecycle.WriteTables, s.Lifecycle.WriteIndexes,
			goalCell(s.Goals.LifecycleWriteUnits, s.Goals.WritesMet), s.Lease.Read, s.List.Read,
			goalCell(s.Goals.ReadUnits, s.Goals.PullReadsMet && s.Goals.ListReadsMet), s.Dollars.Delivered, s.Dollars.Listing)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "W: write units, R: read units per event returned. $/M: dollars per million events at %s on-demand prices\n", r.Prices.Region)
	fmt.Fprintf(w, "(as of %s: $%.3f per million write, $%.3f per million read request units); delivered is lifecycle\n",
		r.Prices.AsOf, r.Prices.DollarsPerMillionWRU, r.Prices.DollarsPerMillionRRU)
	fmt.Fprintln(w, "writes plus the pull's reads. Failed conditional writes report no units and are not counted.")
	fmt.Fprintln(w)
}

func goalCell(goal float64, met bool) string {
	if met {
		return fmt.Sprintf("<= %.0f met", goal)
	}
	return fmt.Sprintf("<= %.0f not met", goal)
}
