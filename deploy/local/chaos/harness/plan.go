// Package harness is the chaos run: the real binaries (two replicas each of ingest, inbox and
// the worker, plus keys-admin) behind the dev gateway, DynamoDB reached through the fault
// proxy, producers at a steady rate, and a fault schedule that crashes processes and makes
// DynamoDB stall and fail. A ledger of every accepted and every processed event then shows
// whether anything was lost, processed without being accepted, or answered with a 5xx other
// than 503. `make chaos` runs the full plan; `make test` runs the short one.
package harness

import "time"

// Plan is one chaos run's pace and fault schedule.
type Plan struct {
	Name      string
	Rate      float64 // events per second, all producers together
	Producers int     // each publishes one event at a time, so this bounds the calls in flight
	// Recover is how many events must be both accepted and processed after each fault before
	// the next one begins: the system has to show it recovered, not merely that time passed.
	Recover int
	// StallFor is how long DynamoDB holds every call before it is let go.
	StallFor time.Duration
	// FaultsFor is how long Rate503 of DynamoDB's calls answer 503 and RateDrop are applied
	// with their answer lost.
	FaultsFor time.Duration
	Rate503   float64
	RateDrop  float64
	// Drain bounds the wait, once producers stop, for every accepted event to be processed or
	// dead and for the inbox to be empty.
	Drain time.Duration
}

// Full is `make chaos`: the fault durations the issue asks for.
func Full() Plan {
	return Plan{
		Name: "full", Rate: 40, Producers: 8, Recover: 200,
		StallFor: 10 * time.Second, FaultsFor: 30 * time.Second, Rate503: 0.05, RateDrop: 0.02,
		Drain: 3 * time.Minute,
	}
}

// Short is the version `make test` runs: one crash of each kind and about ten seconds of
// DynamoDB faults.
func Short() Plan {
	return Plan{
		Name: "short", Rate: 30, Producers: 6, Recover: 40,
		StallFor: 4 * time.Second, FaultsFor: 6 * time.Second, Rate503: 0.05, RateDrop: 0.02,
		Drain: 90 * time.Second,
	}
}
