package main

import (
	"strings"
	"testing"
)

func TestUnitsPerStep(t *testing.T) {
	parse := func(text string) units {
		t.Helper()
		u, err := parseUnits(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	before := parse(`# TYPE trigger_dynamodb_consumed_capacity_total counter
trigger_dynamodb_consumed_capacity_total{kind="write",operation="PutItem",otel_scope_name="x",target="Events",target_type="table"} 20
trigger_dynamodb_consumed_capacity_total{kind="read",operation="GetItem",otel_scope_name="x",target="TenantApiKeys",target_type="table"} 0.5
`)
	after := parse(`trigger_dynamodb_consumed_capacity_total{kind="write",operation="PutItem",otel_scope_name="x",target="Events",target_type="table"} 80
trigger_dynamodb_consumed_capacity_total{kind="write",operation="TransactWriteItems",otel_scope_name="x",target="Events",target_type="table"} 20
trigger_dynamodb_consumed_capacity_total{kind="write",operation="PutItem",otel_scope_name="x",target="inbox-index",target_type="index"} 40
trigger_dynamodb_consumed_capacity_total{kind="read",operation="GetItem",otel_scope_name="x",target="TenantApiKeys",target_type="table"} 0.5
trigger_dynamodb_consumed_capacity_total{kind="read",operation="Query",otel_scope_name="x",target="inbox-index",target_type="index"} 2
trigger_dynamodb_call_duration_seconds_count{operation="PutItem",outcome="ok"} 40
`)
	per := perEventUnits(after.since(before), 40)
	if per.Write != 3 || per.WriteTables != 2 || per.WriteIndexes != 1 || per.Read != 0.05 || per.ReadTables != 0 || per.ReadIndexes != 0.05 {
		t.Fatalf("per event %+v", per)
	}
	if len(per.ByTarget) != 3 || per.ByTarget["write Events table"] != 2 || per.ByTarget["read inbox-index index"] != 0.05 {
		t.Fatalf("by target %v", per.ByTarget)
	}
	if got := perEventUnits(after, 0); got.Write != 0 || got.ByTarget != nil {
		t.Fatalf("no events, yet %+v", got)
	}
	for _, bad := range []string{"NaN", "+Inf", "x"} {
		if _, err := parseUnits(strings.NewReader(capacitySeries + `{kind="read"} ` + bad + "\n")); err == nil {
			t.Errorf("%s parsed as a count", bad)
		}
	}
}

func TestCostGoalsRoundUp(t *testing.T) {
	for _, c := range []struct{ kib, writes, reads float64 }{
		{1, 9, 2}, {16, 24, 5}, {64, 72, 17}, {0.5, 9, 2}, {4.1, 13, 3},
	} {
		if w, r := costGoals(c.kib); w != c.writes || r != c.reads {
			t.Errorf("%v KiB: goals %v writes, %v reads; want %v, %v", c.kib, w, r, c.writes, c.reads)
		}
	}
}

func TestCostSizeFinish(t *testing.T) {
	s := costSize{PayloadKiB: 16, Events: 10, Lease: unitsPerEvent{Read: 0.05}, List: unitsPerEvent{Read: 5.05}}
	life := units{{"write", "table", "Events"}: 510, {"write", "index", "inbox-index"}: 40}
	s.finish(life, 2)
	if s.Lifecycle.Write != 55 || s.Lifecycle.WriteTables != 51 || s.ConditionFailed != 0.2 {
		t.Fatalf("lifecycle %+v, failed %v", s.Lifecycle, s.ConditionFailed)
	}
	if s.Goals.WritesMet || !s.Goals.PullReadsMet || s.Goals.ListReadsMet {
		t.Fatalf("goals %+v", s.Goals)
	}
	// 55 × $0.625 + 0.05 × $0.125 per million events.
	if s.Dollars.Writes != 34.375 || s.Dollars.PullReads != 0.0063 || s.Dollars.Delivered != 34.3813 || s.Dollars.Listing != 0.6313 {
		t.Fatalf("dollars %+v", s.Dollars)
	}
}

func TestParseSizes(t *testing.T) {
	if got, err := parseSizes(" 1, 16 ,64"); err != nil || len(got) != 3 || got[1] != 16 {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "1,x", "257"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
