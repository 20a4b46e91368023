package inboxapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/apitest"
)

// writesRecorder keeps the answer and the size of the largest single write it was given.
type writesRecorder struct {
	*httptest.ResponseRecorder
	writes, largest int
}

func (w *writesRecorder) Write(b []byte) (int, error) {
	w.writes++
	w.largest = max(w.largest, len(b))
	return w.ResponseRecorder.Write(b)
}

// A page of large events goes out a piece at a time, never as one answer built whole beside
// the events it carries, and the pieces together are the page, byte for byte.
func TestLargeAnswersAreWrittenInPieces(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	apitest.SeedTenant(t, f.tenants, "acme", 1)
	key := apitest.SeedKey(t, f.tenants, "acme", apitest.KeyOptions{})
	start := time.Now().Add(-time.Minute)
	payloads := putSized(t, f.events, "acme", 8, 100<<10, start)
	// More listings than the tenant has read turns: each answer written gives its turn back.
	for _, route := range []struct{ method, path, body string }{
		{"GET", "/inbox?limit=100", ""},
		{"GET", "/inbox?limit=100", ""},
		{"GET", "/inbox?limit=100", ""},
		{"GET", "/inbox?limit=100", ""},
		{"POST", "/inbox/pull", `{"max_events":100}`},
	} {
		req := httptest.NewRequest(route.method, route.path, strings.NewReader(route.body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		w := &writesRecorder{ResponseRecorder: httptest.NewRecorder()}
		f.h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("%s %s: %d %s", route.method, route.path, w.Code, w.Body.Bytes())
		}
		var a inboxAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
			t.Fatalf("%s: the pieces are not one JSON answer: %v", route.path, err)
		}
		if len(a.Events) != len(payloads) {
			t.Fatalf("%s: %d events, want %d", route.path, len(a.Events), len(payloads))
		}
		for i, e := range a.Events {
			if !bytes.Equal(e.Payload, payloads[i]) {
				t.Fatalf("%s: event %d's payload changed on the way", route.path, i)
			}
		}
		if total := w.Body.Len(); w.writes < 4 || w.largest > total/4 {
			t.Fatalf("%s: %d bytes in %d writes, the largest %d: the answer went out whole", route.path, total, w.writes, w.largest)
		}
		if w.Header().Get("Content-Length") != "" {
			t.Fatalf("%s: a streamed answer claims a Content-Length", route.path)
		}
	}
	// An answer of one piece still goes out whole, with its length.
	res := apitest.Do(t, f.h, apitest.Request{Method: "GET", Path: "/inbox?limit=100", Key: key})
	if res.Status != http.StatusOK || res.Header.Get("Content-Length") != strconv.Itoa(len(res.Body)) {
		t.Fatalf("a small answer: %d, Content-Length %q for %d bytes", res.Status, res.Header.Get("Content-Length"), len(res.Body))
	}
}
