package ingestapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	"github.com/trigger-api/trigger-api/pkg/tenant/tenanttest"
	"github.com/trigger-api/trigger-api/services/ingest/ingestapi"
)

// discardStore accepts every Put and keeps nothing, so the benchmark measures the handler and
// its middleware rather than a map growing with b.N. The embedded interface is nil: POST
// /events only calls Put, and anything else failing loudly is what a benchmark wants.
type discardStore struct {
	events.Store
	puts atomic.Int64
}

func (s *discardStore) Put(context.Context, events.Event) error { s.puts.Add(1); return nil }

// jsonLogger encodes like the binaries' production logger but writes nowhere, so the access
// log's encoding cost is counted without the terminal's.
func jsonLogger() *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "time"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(io.Discard), zap.InfoLevel)).
		With(zap.String("service", "ingest"))
}

// benchRouter is the real ingest router over in-memory stores with a key whose resolution is
// already cached, which is the steady state of a busy producer.
func benchRouter(b *testing.B, log *zap.Logger) (http.Handler, string, *discardStore) {
	return benchHandler(b, log, nil)
}

// benchHandler is benchRouter behind the binary's instrumentation when tel is given: server
// span, request metrics and the publish span, as the binary serves a request.
func benchHandler(b *testing.B, log *zap.Logger, tel *telemetry.Telemetry) (http.Handler, string, *discardStore) {
	b.Helper()
	tenants := tenanttest.NewMemory()
	apitest.SeedTenant(b, tenants, "acme", 1)
	key := apitest.SeedKey(b, tenants, "acme", apitest.KeyOptions{})
	store := &discardStore{}
	d := ingestapi.Deps{
		Log:       log,
		Publisher: queue.NewPublisher(store, queue.Options{Log: log, Tel: tel}),
		Auth:      tenant.NewAuthenticator(tenants, tenant.AuthConfig{}, nil),
		Ready:     func(context.Context) error { return nil },
		Tel:       tel,
	}
	var h http.Handler = ingestapi.NewRouter(d)
	if tel != nil {
		h = ingestapi.NewHandler(d)
	}
	if res := apitest.Do(b, h, apitest.Request{Method: "POST", Path: "/events", Key: key, Body: seedBody}); res.Status != http.StatusAccepted {
		b.Fatalf("warm-up: %d %s", res.Status, res.Body)
	}
	return h, key, store
}

func newPost(key string, body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	return req
}

// BenchmarkIngestHandler is one accepted POST /events through the real router and middleware.
// The "harness" case runs the same request and recorder through a handler that does nothing:
// subtract it to get what the service itself allocates per request.
func BenchmarkIngestHandler(b *testing.B) {
	body := []byte(seedBody)
	b.Run("harness", func(b *testing.B) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusAccepted)
		})
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(httptest.NewRecorder(), newPost("k", body))
		}
	})
	for _, tc := range []struct {
		name string
		log  *zap.Logger
	}{
		{"nop-log", zap.NewNop()},
		{"json-log", jsonLogger()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h, key, store := benchRouter(b, tc.log)
			postLoop(b, h, key, body)
			if store.puts.Load() == 0 {
				b.Fatal("no event reached the store")
			}
		})
	}
	// Every request sampled, spans recorded but exported nowhere: the telemetry's own cost at
	// its highest, exemplars included (OTEL_METRICS_EXEMPLAR_FILTER=always_off leaves them out).
	b.Run("sampled-telemetry", func(b *testing.B) {
		tel, err := telemetry.New(sdktrace.NewTracerProvider())
		if err != nil {
			b.Fatal(err)
		}
		h, key, _ := benchHandler(b, zap.NewNop(), tel)
		postLoop(b, h, key, body)
	})
	// Requests of one tenant share the authenticator's cache lock; running them in parallel
	// shows whether it serialises the hot path.
	b.Run("json-log-parallel", func(b *testing.B) {
		h, key, _ := benchRouter(b, jsonLogger())
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, newPost(key, body))
				if rec.Code != http.StatusAccepted {
					b.Errorf("status %d", rec.Code)
					return
				}
			}
		})
	})
}

// postLoop posts body with key to h until the benchmark has its measure, each answer a 202.
func postLoop(b *testing.B, h http.Handler, key string, body []byte) {
	b.Helper()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, newPost(key, body))
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
