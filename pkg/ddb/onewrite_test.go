package ddb

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// writes counts the writes that reach the connection, and keeps what they wrote.
type writes struct {
	n   int
	out strings.Builder
}

func (w *writes) Write(p []byte) (int, error) { w.n++; return w.out.Write(p) }

// wire writes a request the way net/http's transport does, through a buffered writer that
// flushes the headers early when the transfer writer asks for it.
type wire struct {
	writes int
	sent   string
}

func (w *wire) Do(r *http.Request) (*http.Response, error) {
	var c writes
	bw := bufio.NewWriter(&c)
	if err := r.Write(bw); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	w.writes, w.sent = c.n, c.out.String()
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
}

// opaqueBody is a body net/http does not know to be in memory, as the SDK's is.
type opaqueBody struct{ io.Reader }

func (opaqueBody) Close() error { return nil }

func TestOneWriteSendsHeadersAndBodyTogether(t *testing.T) {
	const body = `{"TableName":"events","Item":{}}`
	newReq := func(b string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8000/", nil)
		r.Body, r.ContentLength = opaqueBody{strings.NewReader(b)}, int64(len(b))
		return r
	}
	var direct wire
	if _, err := direct.Do(newReq(body)); err != nil {
		t.Fatal(err)
	}
	if direct.writes != 2 {
		t.Fatalf("net/http wrote an opaque body in %d writes; this test assumes 2", direct.writes)
	}
	var w wire
	if _, err := (oneWrite{&w}).Do(newReq(body)); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 || !strings.HasSuffix(w.sent, "\r\n\r\n"+body) {
		t.Errorf("%d writes of %q, want 1 ending in the body", w.writes, w.sent)
	}
	big := strings.Repeat("x", maxOneWrite+1)
	if _, err := (oneWrite{&w}).Do(newReq(big)); err != nil {
		t.Fatal(err)
	}
	if w.writes < 2 || !strings.HasSuffix(w.sent, big) {
		t.Errorf("a body over maxOneWrite: %d writes, want it left to net/http, headers first", w.writes)
	}
}

// An attempt ends d after it starts, while its answer's body is still coming, and its context
// ends as soon as the body is closed.
func TestAttemptBoundEndsSlowAnswersAndClosedOnes(t *testing.T) {
	stall := make(chan struct{})
	defer close(stall)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("12345"))
		w.(http.Flusher).Flush()
		if r.URL.Path == "/stall" {
			select {
			case <-stall:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = w.Write([]byte("67890"))
	}))
	defer srv.Close()
	c := attemptBound{srv.Client(), 200 * time.Millisecond}

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/stall", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reading a stalled body: %v, want the attempt's deadline", err)
	}

	var seen context.Context
	probe := doFunc(func(r *http.Request) (*http.Response, error) {
		seen = r.Context()
		return srv.Client().Do(r)
	})
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/whole", nil)
	resp, err = attemptBound{probe, time.Minute}.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "1234567890" {
		t.Fatalf("whole answer: %q, %v", body, err)
	}
	if seen.Err() != nil {
		t.Fatal("the attempt's context ended before its body was closed")
	}
	_ = resp.Body.Close()
	if seen.Err() == nil {
		t.Fatal("the attempt's context outlived its closed body")
	}
}

type doFunc func(*http.Request) (*http.Response, error)

func (f doFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }
