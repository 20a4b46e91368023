package ddb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// healthEvery paces the background check: DynamoDB's state is a gauge, not a per-request cost.
const healthEvery = 15 * time.Second

// CheckAtStart describes the tables once before a service serves. A misconfiguration stops
// the start with what to fix; DynamoDB being unreachable only logs, since requests then answer
// 503 with Retry-After until it is back, and a pod that restarts over it would not help.
func CheckAtStart(ctx context.Context, log *zap.Logger, client *dynamodb.Client, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := Check(ctx, client, names...)
	if errors.Is(err, ErrMisconfigured) {
		return err
	}
	if err != nil {
		log.Warn("dynamodb does not answer at start; serving 503 until it does", zap.Error(err))
	}
	return nil
}

// WatchHealth checks the component's tables every 15 s until ctx ends, exposing the result as
// the gauge trigger.dynamodb.healthy (1 or 0) and logging each change. Readiness does not follow
// it: a DynamoDB hiccup would take every pod out of the load balancer at once, which then
// answers 503 without Retry-After to everyone.
//
// The check reads a key no item has from each table (healthProbes), not DescribeTable: it is
// the data plane the requests use, AWS asks code not to poll the control plane, and DynamoDB
// Local counts a table's items for every DescribeTable while every other call to the table
// waits (263 ms at 300,000 events, so each replica's check stalled the whole table).
func WatchHealth(ctx context.Context, log *zap.Logger, tel *telemetry.Telemetry, client *dynamodb.Client, component string, t Tables) {
	var healthy atomic.Int64
	healthy.Store(1)
	m := tel.MeterProvider.Meter(telemetry.ScopeName)
	// Registration fails only on an invalid name; the name here is a constant.
	_, _ = m.Int64ObservableGauge("trigger.dynamodb.healthy",
		metric.WithDescription("1 while the service's DynamoDB tables answer its periodic check, 0 otherwise"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(healthy.Load())
			return nil
		}))
	probes, err := healthProbes(component, t)
	if err != nil {
		healthy.Store(0)
		log.Error("dynamodb health cannot be checked", zap.Error(err))
		return
	}
	tick := time.NewTicker(healthEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := probeTables(cctx, client, probes)
		cancel()
		was := healthy.Swap(map[bool]int64{true: 1, false: 0}[err == nil])
		switch {
		case err != nil && was == 1:
			log.Error("dynamodb check failing", zap.Error(err))
		case err == nil && was == 0:
			log.Info("dynamodb check passing again")
		}
	}
}

// healthProbe is one table's check: an eventually consistent read (half a read unit) of key,
// by GetItem, or by BatchGetItem where the component is granted only that.
type healthProbe struct {
	table string
	batch bool
	key   Item
}

// healthKey is in no table: ids never start with '#'.
const healthKey = "#health"

// healthProbes checks every table the component's grants name, each with a read it is
// granted, so the check needs no permission the component lacks.
func healthProbes(component string, t Tables) ([]healthProbe, error) {
	grants, ok := Access[component]
	if !ok {
		return nil, fmt.Errorf("no DynamoDB grants for component %q", component)
	}
	specs := map[string]*dynamodb.CreateTableInput{}
	for _, sp := range t.Specs() {
		specs[aws.ToString(sp.Create.TableName)] = sp.Create
	}
	var out []healthProbe
	for _, g := range grants {
		if g.Index != "" {
			continue
		}
		name := t.Name(g.Table)
		spec := specs[name]
		if spec == nil {
			return nil, fmt.Errorf("no table %q", g.Table)
		}
		p := healthProbe{table: name, key: Item{}}
		for _, k := range spec.KeySchema {
			p.key[aws.ToString(k.AttributeName)] = S(healthKey)
		}
		switch {
		case slices.Contains(g.Actions, "GetItem"):
		case slices.Contains(g.Actions, "BatchGetItem"):
			p.batch = true
		default:
			return nil, fmt.Errorf("component %s may not read table %s", component, g.Table)
		}
		out = append(out, p)
	}
	return out, nil
}

// probeTables runs the probes in order; the first failure is returned as Check's would be.
func probeTables(ctx context.Context, client *dynamodb.Client, probes []healthProbe) error {
	for _, p := range probes {
		var err error
		if p.batch {
			_, err = client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems: map[string]types.KeysAndAttributes{p.table: {Keys: []Item{p.key}}},
			})
		} else {
			_, err = client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(p.table), Key: p.key})
		}
		if err := classify("read", p.table, err); err != nil {
			return err
		}
	}
	return nil
}
