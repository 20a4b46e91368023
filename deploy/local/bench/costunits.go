package main

import (
	"io"
	"math"
	"regexp"

	"github.com/trigger-api/trigger-api/pkg/ddb"
)

// capacitySeries is the services' count of the capacity units DynamoDB reported (pkg/ddb).
const capacitySeries = "trigger_dynamodb_consumed_capacity_total"

var capacityLine = regexp.MustCompile(`^` + capacitySeries + `\{([^}]*)\} (\S+)$`)

// On-demand prices in us-east-1, as AWS lists them since its price cut of 2024-11-01.
const (
	pricesRegion           = "us-east-1"
	pricesAsOf             = "2024-11-01"
	dollarsPerMillionWRU   = 0.625
	dollarsPerMillionRRU   = 0.125
	goalWriteUnitsOverhead = 8 // lifecycle write units per event above the payload's KiB
	goalReadUnitsOverhead  = 1 // read units per event returned above the payload's 4 KiB blocks
)

// unitKey is one series of the counter, less the operation: what a bill tells apart.
type unitKey struct {
	Kind, TargetType, Target string
}

// units are capacity units by series, as one scrape or the difference of two.
type units map[unitKey]float64

// parseUnits reads the capacity counter out of a Prometheus text exposition.
func parseUnits(r io.Reader) (units, error) {
	out := units{}
	err := eachSample(r, capacityLine, func(labels map[string]string, v float64) {
		out[unitKey{labels["kind"], labels["target_type"], labels["target"]}] += v
	})
	return out, err
}

// since is what was consumed between before and u.
func (u units) since(before units) units {
	out := units{}
	for k, v := range u {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// sum adds the units of one kind on one type of target; "" matches every type.
func (u units) sum(kind, targetType string) float64 {
	var s float64
	for k, v := range u {
		if k.Kind == kind && (targetType == "" || k.TargetType == targetType) {
			s += v
		}
	}
	return s
}

// unitsPerEvent is one step's consumption divided by the events it handled.
type unitsPerEvent struct {
	Write        float64 `json:"write"`
	WriteTables  float64 `json:"write_tables"`
	WriteIndexes float64 `json:"write_indexes"`
	Read         float64 `json:"read"`
	ReadTables   float64 `json:"read_tables"`
	ReadIndexes  float64 `json:"read_indexes"`
	// ByTarget names each series: "write Events table".
	ByTarget map[string]float64 `json:"by_target,omitempty"`
}

func perEventUnits(u units, events int) unitsPerEvent {
	if events <= 0 {
		return unitsPerEvent{}
	}
	n := float64(events)
	per := func(v float64) float64 { return round(v/n, 3) }
	out := unitsPerEvent{
		Write: per(u.sum(ddb.CapacityWrite, "")), WriteTables: per(u.sum(ddb.CapacityWrite, ddb.TargetTable)), WriteIndexes: per(u.sum(ddb.CapacityWrite, ddb.TargetIndex)),
		Read: per(u.sum(ddb.CapacityRead, "")), ReadTables: per(u.sum(ddb.CapacityRead, ddb.TargetTable)), ReadIndexes: per(u.sum(ddb.CapacityRead, ddb.TargetIndex)),
		ByTarget: map[string]float64{},
	}
	for k, v := range u {
		out.ByTarget[k.Kind+" "+k.Target+" "+k.TargetType] = per(v)
	}
	return out
}

// costGoals are the targets for an event of payloadKiB: its lifecycle's writes no more than
// the payload's KiB, rounded up, plus 8; reads no more than its 4 KiB blocks, rounded up,
// plus 1 per event returned.
func costGoals(payloadKiB float64) (writeUnits, readUnits float64) {
	return math.Ceil(payloadKiB) + goalWriteUnitsOverhead, math.Ceil(payloadKiB/4) + goalReadUnitsOverhead
}

// dollarsPerMillion is what a million events cost at on-demand prices, given each one's units.
func dollarsPerMillion(writeUnits, readUnits float64) float64 {
	return round(writeUnits*dollarsPerMillionWRU+readUnits*dollarsPerMillionRRU, 4)
}
