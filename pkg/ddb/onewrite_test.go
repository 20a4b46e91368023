package ddb

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
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
