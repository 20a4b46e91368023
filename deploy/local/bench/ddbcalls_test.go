package main

import (
	"strings"
	"testing"
)

func TestDDBCallsPerEvent(t *testing.T) {
	scrape := func(text string) ddbCalls {
		t.Helper()
		c, err := parseDDBCalls(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := scrape(`# TYPE trigger_dynamodb_call_duration_seconds histogram
trigger_dynamodb_call_duration_seconds_bucket{operation="UpdateItem",otel_scope_name="x",outcome="ok",le="+Inf"} 4
trigger_dynamodb_call_duration_seconds_count{operation="UpdateItem",otel_scope_name="x",outcome="ok"} 4
trigger_dynamodb_call_duration_seconds_count{operation="Query",otel_scope_name="x",outcome="ok"} 1
`)
	after := scrape(`trigger_dynamodb_call_duration_seconds_count{operation="UpdateItem",otel_scope_name="x",outcome="ok"} 204
trigger_dynamodb_call_duration_seconds_count{operation="UpdateItem",otel_scope_name="x",outcome="condition_failed"} 5
trigger_dynamodb_call_duration_seconds_count{operation="Query",otel_scope_name="x",outcome="ok"} 1
trigger_dynamodb_call_duration_seconds_sum{operation="Query",otel_scope_name="x",outcome="ok"} 9
http_server_request_duration_seconds_count{http_route="/ack"} 77
`)
	per := after.perEventSince(before, 100)
	if len(per) != 2 || per["UpdateItem ok"] != 2 || per["UpdateItem condition_failed"] != 0.05 {
		t.Fatalf("per event %v", per)
	}
	if got := describeCalls(per); got != "UpdateItem ok 2.00, UpdateItem condition_failed 0.05" {
		t.Fatalf("described %q", got)
	}
	if after.perEventSince(before, 0) != nil {
		t.Fatal("no events, yet a rate")
	}
	if _, err := parseDDBCalls(strings.NewReader(callSeries + `{operation="Query"} NaNx` + "\n")); err == nil {
		t.Fatal("a bad value parsed")
	}
}

func TestParseRuntime(t *testing.T) {
	exposition := `# TYPE go_goroutines gauge
go_goroutines 42
go_gc_heap_live_bytes 5.24288e+06
go_memstats_heap_inuse_bytes{otel_scope_name="x"} 1.048576e+07
go_memstats_heap_inuse_bytes_total 7
`
	g, err := parseRuntime([]byte(exposition))
	if err != nil {
		t.Fatal(err)
	}
	if g.goroutines != 42 || g.heapInuse != 10<<20 || g.heapLive != 5<<20 {
		t.Errorf("got %+v, want 42 goroutines, 10 MiB in use and 5 MiB live", g)
	}
	if _, err := parseRuntime([]byte("go_goroutines 1\n")); err == nil {
		t.Error("no heap figure: want an error")
	}
	if _, err := parseRuntime([]byte("go_goroutines NaN\ngo_memstats_heap_inuse_bytes 1\ngo_gc_heap_live_bytes 1\n")); err == nil {
		t.Error("NaN: want an error")
	}
}
