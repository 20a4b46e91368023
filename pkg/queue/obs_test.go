package queue

import (
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// TestWakeupsAreExposedByCause: a parked pull released by a notice counts once under the
// notification cause on /metrics, as the dashboard's panel reads it.
func TestWakeupsAreExposedByCause(t *testing.T) {
	tel, err := telemetry.New(noop.NewTracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	store := &fakeStore{}
	q := NewInbox(store, Options{Tel: tel, LongPollBackstop: time.Hour})
	done := park(t, q, 1)
	now := time.Now()
	store.add(now)
	q.Notify(Notice{TenantID: acme.TenantID, Count: 1, VisibleAt: now})
	if got := <-done; got.err != nil || got.n != 1 {
		t.Fatalf("pull: %d events, %v", got.n, got.err)
	}
	w := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	re := regexp.MustCompile(`(?m)^trigger_inbox_long_poll_wakeups_total\{[^}]*trigger_cause="notification"[^}]*\} 1$`)
	if !re.MatchString(w.Body.String()) {
		t.Errorf("no wakeup counted under cause notification:\n%s", w.Body.String())
	}
}
