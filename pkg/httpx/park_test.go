package httpx_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/httpx"
)

// parkServer serves POST /wait, which parks its request and answers it when told, and
// GET /now, answered at once.
func parkServer(t *testing.T) (base string, answer chan<- string) {
	t.Helper()
	answers := make(chan string)
	engine := httpx.NewEngine(zap.NewNop(), func(context.Context) error { return nil })
	engine.POST("/wait", func(c *gin.Context) {
		p, ok := httpx.Park(c)
		if !ok {
			c.String(http.StatusOK, "not parked")
			return
		}
		go func() { _ = p.Write(http.StatusOK, "text/plain", []byte(<-answers)) }()
	})
	engine.GET("/now", func(c *gin.Context) { c.String(http.StatusOK, "now") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- httpx.ServeListener(ctx, zap.NewNop(), ln, 5*time.Second, httpx.Instrument(engine, nil))
	}()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), answers
}

// call makes a request and says whether it reused a kept-alive connection.
func call(t *testing.T, client *http.Client, req *http.Request) (string, bool) {
	t.Helper()
	var reused bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	}))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("%s %s: %d %s %v", req.Method, req.URL.Path, resp.StatusCode, b, err)
	}
	return string(b), reused
}

// A parked request is answered from another goroutine, and its connection then serves the
// next request. A request that asks to close its connection is not parked.
func TestParkedRequestIsAnsweredAndItsConnectionKept(t *testing.T) {
	base, answer := parkServer(t)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()

	got := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/wait", strings.NewReader(`{}`))
		body, _ := call(t, client, req)
		got <- body
	}()
	answer <- "later"
	if body := <-got; body != "later" {
		t.Fatalf("parked request answered %q", body)
	}
	req, _ := http.NewRequest("GET", base+"/now", nil)
	if body, reused := call(t, client, req); body != "now" || !reused {
		t.Fatalf("next request: %q, reused %v: want the parked request's connection", body, reused)
	}

	req, _ = http.NewRequest("POST", base+"/wait", strings.NewReader(`{}`))
	req.Close = true
	if body, _ := call(t, client, req); body != "not parked" {
		t.Fatalf("request with Connection: close: %q", body)
	}
}
