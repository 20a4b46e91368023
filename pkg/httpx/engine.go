// Package httpx is the Gin plumbing every service shares: request ids, access logs, recovery,
// the error envelope, body limits, tenant authentication, health probes and graceful serving.
package httpx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"regexp"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

const requestIDHeader = "X-Request-Id"

var ginMode sync.Once

// notReadyRetryAfter matches the chart's readiness period: asking sooner learns nothing new.
const notReadyRetryAfter = 5

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// ServerConfig is the HTTP part of every service's configuration; each service adds its own
// HTTP_ADDR with its own default port.
type ServerConfig struct {
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"20s" desc:"how long in-flight requests may take to finish on SIGTERM; keep below terminationGracePeriodSeconds"`
	// A port of its own lets a NetworkPolicy admit scrapers without admitting them to the API.
	MetricsAddr string `envconfig:"METRICS_ADDR" desc:"listen address, host:port, of a second server with only GET /metrics, which the API port then no longer serves; empty: the API port serves it"`
	// Profiles name the code's hot paths and can hold a CPU for seconds: never for tenants.
	Pprof bool `envconfig:"PPROF" default:"false" desc:"also serve Go's profiles (net/http/pprof, /debug/pprof/) on TRIGGER_METRICS_ADDR, which must then be set; never on the API port"`
}

// NewEngine returns a Gin engine with the shared middleware, the envelope for unknown routes
// and methods, and /livez and /readyz. ready reports whether the process takes requests (see
// ServingUntil); DynamoDB's health is deliberately not part of it.
func NewEngine(log *zap.Logger, ready func(context.Context) error) *gin.Engine {
	ginMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	// A path with a stray slash is not a route: a redirect would answer outside the envelope
	// and, before any authentication, tell routes that exist from routes that do not.
	r.RedirectTrailingSlash = false

	// Probes come every few seconds per pod: a span and an access-log line each would drown the
	// requests that matter. They still carry a request id and answer failure in the envelope.
	probes := r.Group("", requestID(log))
	probes.GET("/livez", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	probes.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			Logger(c, log).Warn("not ready", zap.Error(err))
			WriteError(c, &Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
				Message: "not ready: the service is starting or stopping", RetryAfter: notReadyRetryAfter})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})

	r.Use(routeSpan, requestID(log), accessLog(log), recovery(log), renderErrors(log), strictQuery)
	r.NoRoute(noRoute)
	r.NoMethod(noMethod)
	return r
}

// errDraining is the readiness of a process that has begun to stop.
var errDraining = errors.New("draining: the process is stopping")

// ServingUntil is the readiness of a process that serves until ctx ends: ready once it serves,
// not ready from the moment it starts to stop, whatever its dependencies do.
func ServingUntil(ctx context.Context) func(context.Context) error {
	return func(context.Context) error {
		if ctx.Err() != nil {
			return errDraining
		}
		return nil
	}
}

// strictQuery refuses a query string that does not parse: Gin would drop the broken pair and
// serve the call as if the parameter had not been sent (`?limit=%%5` as no limit at all).
func strictQuery(c *gin.Context) {
	if _, err := url.ParseQuery(c.Request.URL.RawQuery); err != nil {
		WriteError(c, NewError(http.StatusBadRequest, "invalid_request", "the query string is malformed"))
		c.Abort()
		return
	}
	c.Next()
}

func noRoute(c *gin.Context) {
	WriteError(c, NewError(http.StatusNotFound, "not_found", "no such route"))
}

func noMethod(c *gin.Context) {
	WriteError(c, NewError(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route"))
}

// GuardUnmatched runs guard before the 404 and 405 answers of r, so that a caller who fails
// guard cannot tell which routes exist from which answers differ.
func GuardUnmatched(r *gin.Engine, guard gin.HandlerFunc) {
	r.NoRoute(guard, noRoute)
	r.NoMethod(guard, noMethod)
}

func requestID(log *zap.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(requestIDHeader)
		if !requestIDPattern.MatchString(id) {
			id = newRequestID()
		}
		c.Set(ctxRequest, &request{id: id, span: trace.SpanContextFromContext(c.Request.Context()), base: log})
		c.Header(requestIDHeader, id)
		c.Next()
	}
}

// RequestID returns the request's id.
func RequestID(c *gin.Context) string {
	if r := requestOf(c); r != nil {
		return r.id
	}
	return ""
}

// Logger returns the request-scoped logger, falling back to base.
func Logger(c *gin.Context, base *zap.Logger) *zap.Logger {
	if r := requestOf(c); r != nil && r.base != nil {
		return r.logger()
	}
	return base
}

// accessLog writes one line per request. It logs on the base logger with the request's ids
// among the line's own fields: the same line as through the request logger, without building
// one. A parked request's line is written by its answer. The line names no caller: it would
// always be this file, and finding it walks the stack on every request (1.3 % of ingest's CPU
// under load).
func accessLog(log *zap.Logger) gin.HandlerFunc {
	log = log.WithOptions(zap.WithCaller(false))
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		r := requestOf(c)
		method, route := c.Request.Method, c.FullPath()
		if r != nil && r.parked != nil {
			p := r.parked
			p.access = func(status, size int) { logRequest(log, r, method, route, status, size, start) }
			p.handled.Done()
			return
		}
		logRequest(log, r, method, route, c.Writer.Status(), c.Writer.Size(), start)
	}
}

func logRequest(log *zap.Logger, r *request, method, route string, status, size int, start time.Time) {
	ce := log.Check(zap.InfoLevel, "request")
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, 9)
	if r != nil {
		fields = r.idFields(fields)
	}
	ce.Write(append(fields,
		zap.String("method", method),
		zap.String("route", route),
		zap.Int("status", status),
		zap.Int("bytes", size),
		zap.Duration("duration", time.Since(start)),
	)...)
}

func recovery(log *zap.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				Logger(c, log).Error("panic serving request", zap.Any("panic", v), zap.Stack("stack"))
				if !c.Writer.Written() {
					WriteError(c, NewError(http.StatusInternalServerError, "internal", "internal error"))
				}
			}
		}()
		c.Next()
	}
}

// Serve runs handler on addr until ctx ends, then shuts down gracefully within timeout.
func Serve(ctx context.Context, log *zap.Logger, addr string, cfg ServerConfig, handler http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	if cfg.MetricsAddr == "" {
		if cfg.Pprof {
			_ = ln.Close()
			return errPprofWithoutMetricsAddr
		}
		return ServeListener(ctx, log, ln, cfg.ShutdownTimeout, handler)
	}
	api := hideMetrics(handler)
	mln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("listen %s: %w", cfg.MetricsAddr, err)
	}
	// Both run until ctx ends; if one fails, the other is stopped too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		err := ServeListener(ctx, log.With(zap.String("server", "metrics")), mln, cfg.ShutdownTimeout, internal(handler, cfg.Pprof))
		cancel()
		errc <- err
	}()
	err = ServeListener(ctx, log, ln, cfg.ShutdownTimeout, api)
	cancel()
	return errors.Join(err, <-errc)
}

var errPprofWithoutMetricsAddr = errors.New("TRIGGER_PPROF needs TRIGGER_METRICS_ADDR: profiles are served on the metrics port only")

// internal is what the metrics port serves: GET /metrics, and the profiles when asked for.
func internal(handler http.Handler, withPprof bool) http.Handler {
	metrics := OnlyMetrics(handler)
	if !withPprof {
		return metrics
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", metrics)
	return mux
}

// metricsHidden marks a request to /metrics on an API port while a metrics port is set: the
// metrics are then the metrics port's alone, which a NetworkPolicy can keep from the internet.
type metricsHidden struct{}

func hideMetrics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			r = r.WithContext(context.WithValue(r.Context(), metricsHidden{}, true))
		}
		h.ServeHTTP(w, r)
	})
}

// OnlyMetrics passes GET /metrics to handler (an Instrument one) and answers 404 to the rest.
func OnlyMetrics(handler http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.NotFound(w, r)
			return
		}
		handler.ServeHTTP(w, r)
	})
}

// ServeListener is Serve on an open listener.
func ServeListener(ctx context.Context, log *zap.Logger, ln net.Listener, timeout time.Duration, handler http.Handler) error {
	const idle = 120 * time.Second
	pl := newParkingListener(ctx, ln, idle)
	base := context.WithValue(context.WithoutCancel(ctx), parkingKey{}, pl)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Long enough for a 20 s long poll and a slow client.
		WriteTimeout:   writeTimeout,
		IdleTimeout:    idle,
		MaxHeaderBytes: 16 << 10,
		BaseContext:    func(net.Listener) context.Context { return base },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(pl) }()
	log.Info("listening", zap.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", zap.Duration("timeout", timeout))
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// Parked requests are not the server's: it does not wait for them.
	if err := pl.waitParked(sctx); err != nil {
		return fmt.Errorf("shutdown: parked requests: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
