package httpx

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// Instrument puts a service's engine behind otelhttp and serves GET /metrics from tel's
// registry. Probes and /metrics bypass both tracing and the engine's access log.
//
// otelhttp rather than otelgin: otelgin's last release is v0.65.0 and upstream proposes
// dropping it, while otelhttp is the maintained core every other HTTP instrumentation builds
// on. otelhttp cannot see Gin's routes, so routeSpan (inside the engine) names the span and
// labels the request metrics by route once Gin has matched one.
func Instrument(engine http.Handler, tel *telemetry.Telemetry) http.Handler {
	if tel == nil {
		tel = telemetry.Nop()
	}
	traced := otelhttp.NewHandler(engine, "http.server",
		otelhttp.WithTracerProvider(holdTracerProvider{tel.TracerProvider}),
		otelhttp.WithMeterProvider(holdMeterProvider{tel.MeterProvider}),
		otelhttp.WithPropagators(tel.Propagator),
		// The method alone until the route is known: the raw path would explode span names.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Context().Value(metricsHidden{}) == nil {
				tel.Metrics.ServeHTTP(w, r)
				return
			}
			engine.ServeHTTP(w, r)
		case "/livez", "/readyz":
			engine.ServeHTTP(w, r)
		default:
			traced.ServeHTTP(w, r)
		}
	})
}

// routeSpan names the server span "<METHOD> <route>" and adds http.route to the span and to
// the request-duration metric. Unmatched paths keep the bare method, as the conventions ask.
func routeSpan(c *gin.Context) {
	if route := c.FullPath(); route != "" {
		if span := trace.SpanFromContext(c.Request.Context()); span.IsRecording() {
			span.SetName(c.Request.Method + " " + route)
			span.SetAttributes(attribute.String("http.route", route))
		}
		if l, ok := otelhttp.LabelerFromContext(c.Request.Context()); ok {
			l.Add(attribute.String("http.route", route))
		}
	}
	c.Next()
}

// tagTenant records the authenticated tenant on the server span and the request's log lines.
func tagTenant(c *gin.Context, tenantID string) {
	if span := trace.SpanFromContext(c.Request.Context()); span.IsRecording() {
		span.SetAttributes(telemetry.AttrTenantID.String(tenantID))
	}
	if r := requestOf(c); r != nil {
		r.setTenant(tenantID)
	}
}

// InstrumentTenantAPI is Instrument for a service that authenticates tenant keys: its key
// cache's hits and misses are reported too.
func InstrumentTenantAPI(engine http.Handler, tel *telemetry.Telemetry, auth *tenant.Authenticator) http.Handler {
	if tel == nil {
		tel = telemetry.Nop()
	}
	if auth != nil {
		// Fails only on an invalid instrument name; the names are constants.
		_ = telemetry.ObserveKeyCache(tel.MeterProvider, func() (uint64, uint64) {
			s := auth.Stats()
			return s.Hits, s.Misses
		})
	}
	return Instrument(engine, tel)
}
