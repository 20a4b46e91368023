package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MetricsOptions are the metric settings of the binaries that count events.
type MetricsOptions struct {
	// Off by default: tenants are unbounded and every label value is a series per instrument.
	MetricsTenantLabel bool `envconfig:"METRICS_TENANT_LABEL" default:"false" desc:"add a trigger_tenant_id label to the event counters and histograms: a series per tenant, so only for a bounded number of tenants"`
}

// Attrs is the measurement option for an event of tenantID: attrs, plus the tenant when the
// label is on.
func (o MetricsOptions) Attrs(tenantID string, attrs ...attribute.KeyValue) metric.MeasurementOption {
	if o.MetricsTenantLabel {
		attrs = append(attrs, AttrTenantID.String(tenantID))
	}
	if len(attrs) == 0 {
		return noAttrs
	}
	return metric.WithAttributes(attrs...)
}

// noAttrs is the option of a measurement without attributes, built once: the event counters'
// usual case, which would otherwise build an empty set on every event.
var noAttrs = metric.WithAttributeSet(*attribute.EmptySet())
