package notify

import (
	"context"
	"encoding/json"
	"net/http"

	"go.opentelemetry.io/otel/metric"

	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

const (
	// maxBody is far above what a sender puts in one request (perRequest notices).
	maxBody = 1 << 20
	// maxTenantID is the longest tenant id there is; longer is not a notice.
	maxTenantID = 63
)

// Handler answers POST /notify by handing its notices to sink, and 404 to everything else.
// Only ingest and inbox pods reach the notify port (the chart's NetworkPolicy); a notice is a
// hint, never a fact, so a false one costs reads, not correctness.
func Handler(sink queue.Notifier, tel *telemetry.Telemetry) http.Handler {
	if tel == nil {
		tel = telemetry.Nop()
	}
	received, _ := tel.MeterProvider.Meter(telemetry.ScopeName).Int64Counter("trigger.notify.received",
		metric.WithDescription("events announced to this inbox replica"), metric.WithUnit("{event}"))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != Path {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var msg message
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&msg); err != nil {
			http.Error(w, "bad notice", http.StatusBadRequest)
			return
		}
		ns := make([]queue.Notice, 0, len(msg.Notices))
		count := 0
		for _, n := range msg.Notices {
			if n.TenantID == "" || len(n.TenantID) > maxTenantID || n.Count <= 0 || n.Partition < 0 {
				continue
			}
			ns = append(ns, fromWire(n))
			count += n.Count
		}
		sink.Notify(ns...)
		received.Add(context.Background(), int64(count))
		w.WriteHeader(http.StatusNoContent)
	})
}
