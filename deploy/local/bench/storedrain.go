package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/trigger-api/trigger-api/pkg/client"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// workerDefaultLeases is the most events a worker leases per pull with its defaults:
// TRIGGER_CONCURRENCY and TRIGGER_BATCH_SIZE are both 10 (a test reads them from the
// worker's configuration).
const workerDefaultLeases = 10

// storeDrainReport is a drain's baseline: the events store's own Lease and Ack, called from
// the bench's process with no HTTP, inbox or worker in between. Each puller stands for one
// worker replica whose processing takes no time: it leases as many events per call as the
// worker asks for per pull and has one lease call and one batch of acks in flight at a time,
// as a worker has one pull and one ack call, and its calls ask for their capacity as the
// inbox's do. What this reaches is what DynamoDB Local allows the drain's calls on this
// machine, as the bare PutItem loop is for ingest (which asks for no capacity, so ingest's
// ratio carries the cost of the service asking).
type storeDrainReport struct {
	Pullers     int     `json:"pullers"`
	MaxPerLease int     `json:"max_per_lease"`
	Events      int     `json:"events"`
	Complete    bool    `json:"complete"`
	Seconds     float64 `json:"seconds"`
	EventsPerS  float64 `json:"events_per_s"`
	// CallsPerEvent counts the store's DynamoDB calls per event, by "Operation outcome", as the
	// drain's inbox_dynamodb_calls_per_event does for the inbox.
	CallsPerEvent map[string]float64 `json:"dynamodb_calls_per_event"`
	CPUCores      map[string]float64 `json:"cpu_cores,omitempty"`
	// OverIngest is EventsPerS over the ingest suite's POST /events rate: the drain/ingest
	// ratio these calls could reach if the inbox and workers cost nothing.
	OverIngest float64  `json:"over_ingest,omitempty"`
	LoadAvg1   loadPair `json:"load_avg_1m"`
}

// leasesPerWorker is the most events one worker replica leases per pull in this run.
func leasesPerWorker(o deliveryOptions) int {
	c, b := o.concurrency, o.batchSize
	if c == 0 {
		c = workerDefaultLeases
	}
	if b == 0 {
		b = workerDefaultLeases
	}
	return min(c, b)
}

// storeDrain loads the same events as a drain into a fresh tenant and drains them with
// pullers in-process callers of the events store.
func (d *deliveryRig) storeDrain(ctx context.Context, tenantID string, pullers int, o deliveryOptions) (storeDrainReport, error) {
	rep := storeDrainReport{Pullers: pullers, MaxPerLease: leasesPerWorker(o), LoadAvg1: loadPair{Start: loadAvg1()}}
	_, pre, err := d.loadTenant(ctx, tenantID, fmt.Sprintf("store drain %d puller(s)", pullers), o)
	if err != nil {
		return rep, err
	}
	rep.Events = pre.Accepted

	calls := &callCounter{}
	counted := dynamodb.New(d.client.Options(), func(opt *dynamodb.Options) {
		// The inbox asks every call for its capacity, which DynamoDB Local takes about a third
		// longer over: without it this would be a baseline of other calls.
		opt.APIOptions = append(opt.APIOptions, calls.add, ddb.AskCapacity)
	})
	store := dynamo.New(counted, d.tables)
	groups := []cpuGroup{{"bench", []int{os.Getpid()}}, {"dynamodb_local", []int{d.ddbPID}}}
	before, start := snapshotGroups(groups), time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.drainTimeout)
	defer cancel()
	var acked atomic.Int64
	errs := make([]error, pullers)
	var wg sync.WaitGroup
	for i := range pullers {
		wg.Go(func() { errs[i] = pullAndAck(ctx, store, tenantID, rep.MaxPerLease, int64(rep.Events), &acked) })
	}
	wg.Wait()
	wall := time.Since(start)
	rep.CPUCores = snapshotGroups(groups).cores(before, groups, wall)
	rep.LoadAvg1.End = loadAvg1()
	rep.Complete = acked.Load() >= int64(rep.Events)
	rep.Seconds = round(wall.Seconds(), 3)
	if rep.Events > 0 {
		rep.EventsPerS = round(float64(rep.Events)/wall.Seconds(), 1)
		rep.CallsPerEvent = calls.perEvent(rep.Events)
	}
	if err := errors.Join(errs...); err != nil && !rep.Complete {
		return rep, err
	}
	return rep, nil
}

// pullAndAck is one puller: it leases up to max events while the previous batch's acks are
// still under way, then hands the new batch to be acked, until total events are acked.
func pullAndAck(ctx context.Context, store *dynamo.Store, tenantID string, max int, total int64, acked *atomic.Int64) error {
	var acking sync.WaitGroup
	var ackErr atomic.Value
	defer acking.Wait()
	for acked.Load() < total {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		got, err := store.Lease(ctx, events.LeaseQuery{
			TenantID: tenantID, Partitions: 1, Max: max, Visibility: 30 * time.Second,
			MaxDeliveries: tenant.DefaultMaxDeliveries, Now: now,
		})
		if err != nil {
			return fmt.Errorf("lease: %w", err)
		}
		acking.Wait() // one batch of acks in flight, as a worker has one ack call
		if e, ok := ackErr.Load().(error); ok {
			return e
		}
		if len(got.Events) == 0 {
			// The rest is leased by other pullers; a worker's long poll would wait here.
			if err := client.Sleep(ctx, 10*time.Millisecond); err != nil {
				return err
			}
			continue
		}
		for _, e := range got.Events {
			acking.Go(func() {
				if _, _, err := store.Ack(ctx, tenantID, e.ID, e.LeaseID, time.Now(), now.Add(24*time.Hour)); err != nil {
					ackErr.CompareAndSwap(nil, fmt.Errorf("ack: %w", err))
					return
				}
				acked.Add(1)
			})
		}
	}
	return nil
}

// callCounter counts a client's DynamoDB calls by operation and outcome, as the services'
// trigger.dynamodb.call.duration does.
type callCounter struct{ m sync.Map }

func (c *callCounter) add(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("BenchCallCounter", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleInitialize(ctx, in)
		// The inbox's own count has the same keys (inbox_dynamodb_calls_per_event).
		v, _ := c.m.LoadOrStore(awsmw.GetOperationName(ctx)+" "+ddb.Outcome(err), new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		return out, md, err
	}), middleware.Before)
}

func (c *callCounter) perEvent(events int) map[string]float64 {
	out := map[string]float64{}
	c.m.Range(func(k, v any) bool {
		out[k.(string)] = round(float64(v.(*atomic.Int64).Load())/float64(events), 3)
		return true
	})
	return out
}
