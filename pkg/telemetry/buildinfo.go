package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/trigger-api/trigger-api/pkg/buildinfo"
)

// RegisterBuildInfo exposes the build as the gauge trigger_build_info{version,commit,date,
// goversion} 1, so a dashboard or an alert can tell which build each pod runs and see a
// rollout happen.
func RegisterBuildInfo(mp metric.MeterProvider, bi buildinfo.Info) error {
	attrs := metric.WithAttributeSet(attribute.NewSet(
		attribute.String("version", bi.Version),
		attribute.String("commit", bi.Commit),
		attribute.String("date", bi.Date),
		attribute.String("goversion", bi.GoVersion),
	))
	_, err := mp.Meter(ScopeName).Int64ObservableGauge("trigger.build_info",
		metric.WithDescription("1, labelled with the version, commit, build date and Go version of the running binary"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(1, attrs)
			return nil
		}))
	if err != nil {
		return fmt.Errorf("build info gauge: %w", err)
	}
	return nil
}
