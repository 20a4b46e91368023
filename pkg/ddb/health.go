package ddb

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
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

// WatchHealth checks the tables every 15 s until ctx ends, exposing the result as the gauge
// trigger.dynamodb.healthy (1 or 0) and logging each change. Readiness does not follow it: a
// DynamoDB hiccup would take every pod out of the load balancer at once, which then answers
// 503 without Retry-After to everyone.
func WatchHealth(ctx context.Context, log *zap.Logger, tel *telemetry.Telemetry, client *dynamodb.Client, names ...string) {
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
	t := time.NewTicker(healthEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := Check(cctx, client, names...)
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
