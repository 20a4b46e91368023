package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// callSeries is the count series of the services' DynamoDB call histogram.
const callSeries = "trigger_dynamodb_call_duration_seconds_count"

var (
	callLine   = regexp.MustCompile(`^` + callSeries + `\{([^}]*)\} (\S+)$`)
	labelValue = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

// ddbCalls counts a service's DynamoDB calls by "Operation outcome", as its /metrics says.
type ddbCalls map[string]float64

// parseDDBCalls reads the call counts out of a Prometheus text exposition.
func parseDDBCalls(r io.Reader) (ddbCalls, error) {
	out := ddbCalls{}
	err := eachSample(r, callLine, func(labels map[string]string, v float64) {
		out[labels["operation"]+" "+labels["outcome"]] += v
	})
	return out, err
}

// eachSample calls f with the labels and value of every line of a Prometheus text exposition
// that series matches (its groups: the label set, the value); a value that is not a finite
// number is an error.
func eachSample(r io.Reader, series *regexp.Regexp, f func(labels map[string]string, v float64)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := series.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range labelValue.FindAllStringSubmatch(m[1], -1) {
			labels[kv[1]] = kv[2]
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s: not a count", sc.Text())
		}
		f(labels, v)
	}
	return sc.Err()
}

// runtimeGauges is what the Go runtime of a service reported holding.
type runtimeGauges struct{ heapLive, heapInuse, goroutines float64 }

// parseRuntime reads the live heap, the heap in use and the goroutines out of a Prometheus text exposition;
// any missing is an error, as a service always exports them.
func parseRuntime(b []byte) (runtimeGauges, error) {
	var g runtimeGauges
	for name, v := range map[string]*float64{"go_gc_heap_live_bytes": &g.heapLive, "go_memstats_heap_inuse_bytes": &g.heapInuse, "go_goroutines": &g.goroutines} {
		seen := false
		series := regexp.MustCompile(`^` + name + `(?:\{([^}]*)\})? (\S+)$`)
		if err := eachSample(bytes.NewReader(b), series, func(_ map[string]string, x float64) { *v, seen = x, true }); err != nil {
			return g, err
		}
		if !seen {
			return g, fmt.Errorf("no %s in the metrics", name)
		}
	}
	return g, nil
}

// scrapeDDBCalls reads a service's call counts from its /metrics.
func scrapeDDBCalls(ctx context.Context, client *http.Client, baseURL string) (ddbCalls, error) {
	b, err := fetchMetrics(ctx, client, baseURL)
	if err != nil {
		return nil, err
	}
	return parseDDBCalls(bytes.NewReader(b))
}

// fetchMetrics reads a service's /metrics.
func fetchMetrics(ctx context.Context, client *http.Client, baseURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: status %d", baseURL, res.StatusCode)
	}
	return io.ReadAll(io.LimitReader(res.Body, 16<<20))
}

// perEventSince is each kind of call made since before, per event; kinds not made are left out.
func (c ddbCalls) perEventSince(before ddbCalls, events int) map[string]float64 {
	if events <= 0 {
		return nil
	}
	out := map[string]float64{}
	for k, v := range c {
		if d := v - before[k]; d > 0 {
			out[k] = round(d/float64(events), 3)
		}
	}
	return out
}

// describeCalls renders per-event call counts most frequent first: "UpdateItem ok 2.00, ...".
func describeCalls(per map[string]float64) string {
	keys := make([]string, 0, len(per))
	for k := range per {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if per[a] != per[b] {
			if per[a] > per[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.2f", k, per[k])
	}
	return strings.Join(parts, ", ")
}
