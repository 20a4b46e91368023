package tracing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
)

// scrapeInterval is short so that the test waits seconds, not minutes, for data.
const scrapeInterval = time.Second

// TestExemplarsLeadFromLatenciesToTheEventsTrace runs the real binaries with Jaeger and a real
// Prometheus started as `OBSERVABILITY=1 make run` starts them (same configuration, a shorter
// scrape interval): events posted under producers' trace ids and consumed by the stack's worker
// (pull, process, ack) must leave exemplars on the request, DynamoDB, time-in-inbox and
// processing histograms whose trace ids Jaeger resolves to the event's lifecycle trace; and
// every query of the shipped dashboard must parse there, its key panels returning data. A
// missing prometheus binary fails the test: install Debian's prometheus package.
func TestExemplarsLeadFromLatenciesToTheEventsTrace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st := startObservedStack(ctx, t)
	// One at a time, each consumed before the next is posted: the worker's next long poll is
	// then waiting, and the next event wakes it by notification, which a panel shows.
	events := map[string]string{} // trace id → event id
	for range 3 {
		traceID := randomHex(t, 16)
		id := postWithTraceparent(ctx, t, st, "00-"+traceID+"-"+randomHex(t, 8)+"-01")
		waitDelivered(ctx, t, st, id)
		events[traceID] = id
	}
	prom := promClient{base: st.PrometheusURL}

	for _, h := range []struct{ metric, job string }{
		{"http_server_request_duration_seconds_bucket", stack.Ingest},
		{"trigger_dynamodb_call_duration_seconds_bucket", stack.Ingest},
		{"trigger_events_time_in_inbox_seconds_bucket", stack.Inbox},
		{"trigger_worker_process_duration_seconds_bucket", stack.Worker},
	} {
		t.Run(h.metric, func(t *testing.T) {
			traceID := waitForExemplar(ctx, t, prom, fmt.Sprintf("%s{job=%q}", h.metric, h.job), events)
			lifecycleIn(ctx, t, st, traceID, events[traceID])
		})
	}
	t.Run("dashboard-queries", func(t *testing.T) { dashboardQueriesAnswer(ctx, t, prom) })
}

func startObservedStack(ctx context.Context, t *testing.T) *stack.Stack {
	t.Helper()
	return startTracingStack(ctx, t, "prom", func(o *stack.Options) {
		o.Prometheus = true
		o.PrometheusBin = os.Getenv("PROMETHEUS_BIN")
		o.ScrapeInterval = scrapeInterval
	})
}

// waitDelivered waits until the stack's worker has pulled, processed and acknowledged eventID.
func waitDelivered(ctx context.Context, t *testing.T, st *stack.Stack, eventID string) {
	t.Helper()
	var status string
	err := waitFor(ctx, time.Minute, func() (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, st.GatewayURL+"/events/"+eventID, nil)
		req.Header.Set("Authorization", "Bearer "+st.Keys["acme"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		var e struct {
			Status string `json:"status"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			return false, fmt.Errorf("GET /events/%s: %s: %w", eventID, resp.Status, err)
		}
		status = e.Status
		return status == "delivered", nil
	})
	if err != nil {
		t.Fatalf("event %s never delivered (status %q): %v", eventID, status, err)
	}
}

// waitForExemplar polls Prometheus's exemplar API for selector until one of its exemplars names
// a trace of events, and returns that trace id.
func waitForExemplar(ctx context.Context, t *testing.T, prom promClient, selector string, events map[string]string) string {
	t.Helper()
	var seen []string
	err := waitFor(ctx, time.Minute, func() (bool, error) {
		var series []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		}
		q := url.Values{"query": {selector}, "start": {strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(time.Now().Unix(), 10)}}
		if err := prom.get(ctx, "/api/v1/query_exemplars", q, &series); err != nil {
			return false, err
		}
		seen = seen[:0]
		for _, s := range series {
			for _, e := range s.Exemplars {
				seen = append(seen, e.Labels["trace_id"])
				if _, ours := events[e.Labels["trace_id"]]; ours {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no exemplar of %s names an event's trace (%v); trace ids seen: %v", selector, err, seen)
	}
	for _, id := range seen {
		if _, ours := events[id]; ours {
			return id
		}
	}
	panic("unreachable")
}

// lifecycleIn checks that Jaeger resolves traceID to eventID's lifecycle: ingest's publish and
// the inbox's settle of that event.
func lifecycleIn(ctx context.Context, t *testing.T, st *stack.Stack, traceID, eventID string) {
	t.Helper()
	var tr stack.Trace
	err := waitFor(ctx, time.Minute, func() (bool, error) {
		var err error
		tr, err = stack.TraceByID(ctx, st.JaegerURL, traceID)
		if err != nil {
			return false, nil // not there yet: spans reach Jaeger in batches
		}
		publish, ok1 := tr.Find(stack.Ingest, "trigger publish")
		settle, ok2 := tr.Find(stack.Inbox, "trigger settle")
		return ok1 && ok2 && publish.Attrs["messaging.message.id"] == eventID && settle.Attrs["messaging.message.id"] == eventID, nil
	})
	if err != nil {
		t.Fatalf("Jaeger never resolved trace %s to event %s's publish and settle: %v (services %v)", traceID, eventID, err, tr.Services())
	}
}

// waitFor calls done every 250 ms until it reports true, fails, or within passes.
func waitFor(ctx context.Context, within time.Duration, done func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := done()
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// promClient calls Prometheus's HTTP API.
type promClient struct{ base string }

// promError is an answer Prometheus refused, such as a query that does not parse.
type promError struct{ Type, Msg string }

func (e *promError) Error() string { return e.Type + ": " + e.Msg }

// get calls path with q and decodes the answer's data into out; a refusal is a *promError.
func (p promClient) get(ctx context.Context, path string, q url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	var answer struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("%s: %s: %.200s", path, resp.Status, body)
	}
	if answer.Status != "success" {
		return &promError{Type: answer.ErrorType, Msg: answer.Error}
	}
	return json.Unmarshal(answer.Data, out)
}

// query runs an instant PromQL query and returns how many series it answered.
func (p promClient) query(ctx context.Context, expr string) (int, error) {
	var data struct {
		Result []json.RawMessage `json:"result"`
	}
	err := p.get(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data)
	return len(data.Result), err
}

// The dashboard's panels that may rightly be empty after a clean run: what they show has not
// happened. Every other panel must answer with data.
var mayBeEmpty = map[string]string{
	"5xx share": "no request failed",
	"DynamoDB throttles, errors and failed conditions": "no call failed",
	"Notifications dropped":                            "no inbox missed a notice",
}

// The dashboard's variables as a local stack answers them: no Kubernetes namespace and no
// release (an empty matcher selects series without the label), every service, and a rate
// window of several scrapes.
var dashboardVars = strings.NewReplacer(
	"$__rate_interval", (30 * scrapeInterval).String(),
	"$namespace", "", "$release", "", "$service", ".+",
)

// dashboardQueriesAnswer runs every Prometheus query of the shipped dashboard, its variables'
// too: each must parse, and each panel not in mayBeEmpty must return data (waiting for it:
// rates need a few scrapes).
func dashboardQueriesAnswer(ctx context.Context, t *testing.T, prom promClient) {
	d := readDashboard(t)
	queries := map[string][]string{} // panel title → expressions
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			queries["variable "+v.Name] = append(queries["variable "+v.Name], labelValuesExpr(v.Definition))
		}
	}
	for _, p := range flatten(d.Panels) {
		for _, tg := range p.Targets {
			if tg.Datasource.Type == "prometheus" {
				queries[p.Title] = append(queries[p.Title], tg.Expr)
			}
		}
	}
	if len(queries) < 10 {
		t.Fatalf("only %d Prometheus panels and variables in the dashboard: is it read right?", len(queries))
	}
	empty := map[string]bool{}
	err := waitFor(ctx, 2*time.Minute, func() (bool, error) {
		clear(empty)
		for title, exprs := range queries {
			rows := 0
			for _, expr := range exprs {
				expr = dashboardVars.Replace(expr)
				if strings.Contains(expr, "$") {
					return false, fmt.Errorf("%s: a variable the test does not know in %s", title, expr)
				}
				n, err := prom.query(ctx, expr)
				if err != nil {
					return false, fmt.Errorf("%s: %s: %w", title, expr, err)
				}
				rows += n
			}
			if _, ok := mayBeEmpty[title]; rows == 0 && !ok && !strings.HasPrefix(title, "variable ") {
				empty[title] = true
			}
		}
		return len(empty) == 0, nil
	})
	if err != nil {
		t.Fatalf("dashboard queries: %v; panels without data: %v", err, slices.Sorted(maps.Keys(empty)))
	}
}

// labelValuesExpr turns a variable's label_values(selector, label) into a query Prometheus
// runs: the selector grouped by the label.
func labelValuesExpr(def string) string {
	inner, ok := strings.CutPrefix(def, "label_values(")
	if !ok {
		return def
	}
	inner = strings.TrimSuffix(inner, ")")
	i := strings.LastIndex(inner, ",")
	return fmt.Sprintf("group by (%s) (%s)", strings.TrimSpace(inner[i+1:]), inner[:i])
}

// The parts of the dashboard's JSON model the test reads.
type (
	dashboardModel struct {
		Templating struct {
			List []struct {
				Name, Type, Definition string
			} `json:"list"`
		} `json:"templating"`
		Panels []dashboardPanel `json:"panels"`
	}
	dashboardPanel struct {
		Title   string `json:"title"`
		Targets []struct {
			Datasource struct{ Type string } `json:"datasource"`
			Expr       string                `json:"expr"`
		} `json:"targets"`
		Panels []dashboardPanel `json:"panels"`
	}
)

func readDashboard(t *testing.T) dashboardModel {
	t.Helper()
	root, err := stack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "charts", "trigger-api", "dashboards", "trigger-api.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboardModel
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	return d
}

func flatten(ps []dashboardPanel) []dashboardPanel {
	var out []dashboardPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}
