// Package ddbfault is a fault-injecting HTTP proxy between a DynamoDB client and DynamoDB Local.
// Tests and the chaos harness point the SDK's BaseEndpoint at it and add rules that delay,
// stall, throttle, fail or cut chosen calls, to show what the service does when DynamoDB is
// slow, overloaded or unreachable, or applies a write whose answer never arrives. Killing or
// SIGSTOPping DynamoDB Local (see ddblocal) hits every call at once; a rule hits one operation,
// one item or a share of calls, and leaves the rest of the test's traffic alone.
package ddbfault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards DynamoDB calls to one endpoint, acting on those its rules pick. It is safe for
// concurrent use.
type Proxy struct {
	url       string
	target    *url.URL
	srv       *http.Server
	transport *http.Transport
	// stop cancels the context every request's context derives from, so that Close ends stalls,
	// delays and forwards in progress instead of waiting for them.
	stop   context.CancelFunc
	served chan struct{} // closed once the server's accept loop has returned

	mu      sync.Mutex
	rules   []*rule       // replaced, never changed in place, so a request can read a snapshot
	release chan struct{} // closed by Release; the stalls taken before it wait on this one
	stalled int
	seen    map[string]int
	acted   map[actedKey]int
	closed  bool

	handlers  sync.WaitGroup // requests being served, added to only while not closed
	active    atomic.Int64   // the same count, readable by tests
	conns     atomic.Int64   // client connections accepted, to show keep-alive works
	closeOnce sync.Once
	closeErr  error
}

type actedKey struct {
	op   string
	kind Kind
}

// Start listens on 127.0.0.1 on a free port and forwards every request to target (e.g.
// "http://127.0.0.1:8000").
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("ddbfault: target %q: %w", target, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("ddbfault: target %q is not an http(s)://host:port endpoint", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ddbfault: listen: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	p := &Proxy{
		url:    "http://" + ln.Addr().String(),
		target: u,
		// The client's own timeouts decide how long a call may take: the proxy adds none, and
		// never routes through an HTTP proxy named in the environment.
		transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			// Accept-Encoding is forwarded as the client sent it; the answer must reach the
			// client as DynamoDB encoded it, since the SDK checks its CRC32.
			DisableCompression: true,
		},
		stop:    stop,
		served:  make(chan struct{}),
		release: make(chan struct{}),
		seen:    map[string]int{},
		acted:   map[actedKey]int{},
	}
	p.srv = &http.Server{
		Handler:     http.HandlerFunc(p.serve),
		BaseContext: func(net.Listener) context.Context { return ctx },
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				p.conns.Add(1)
			}
		},
		// Resets and aborted answers are the point of this server, not news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// URL is the proxy's address, to use as the SDK's BaseEndpoint.
func (p *Proxy) URL() string { return p.url }

// Close stops listening, ends stalled and delayed requests without forwarding them, closes every
// client connection and returns once no request is being served. Calling it again does nothing.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.stop()
		err := p.srv.Close()
		<-p.served
		p.handlers.Wait()
		p.transport.CloseIdleConnections()
		if err != nil && !errors.Is(err, net.ErrClosed) {
			p.closeErr = fmt.Errorf("ddbfault: close: %w", err)
		}
	})
	return p.closeErr
}

// enter counts a request in, unless the proxy is closing: Close waits only for requests that
// entered before it began.
func (p *Proxy) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.handlers.Add(1)
	p.active.Add(1)
	return true
}

func (p *Proxy) leave() {
	p.active.Add(-1)
	p.handlers.Done()
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if !p.enter() {
		abort(w)
		return
	}
	defer p.leave()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		abort(w) // the client left mid-request
		return
	}
	op := operation(r)
	a := p.decide(op, body)
	switch a.kind {
	case Delay:
		t := time.NewTimer(a.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			abort(w)
			return
		}
	case Stall:
		released := p.stall(r.Context(), a.release)
		if !released {
			abort(w)
			return
		}
	case Status500:
		writeError(w, http.StatusInternalServerError, "InternalServerError", "Internal server error")
		return
	case Status503:
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "Service unavailable")
		return
	case Throttle:
		writeError(w, http.StatusBadRequest, "ThrottlingException", "Rate of requests exceeds the allowed throughput.")
		return
	case Reset:
		abort(w)
		return
	case ApplyThenDrop:
		p.applyThenDrop(w, r, body)
		return
	}
	p.forward(w, r, body)
}

// stall waits for release and reports whether it came; a client that gives up, or Close,
// ends the wait without it.
func (p *Proxy) stall(ctx context.Context, release <-chan struct{}) bool {
	defer func() {
		p.mu.Lock()
		p.stalled--
		p.mu.Unlock()
	}()
	select {
	case <-release:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

// applyThenDrop lets DynamoDB apply the request and the client never hear of it, as when an
// answer is lost on the way back.
func (p *Proxy) applyThenDrop(w http.ResponseWriter, r *http.Request, body []byte) {
	if resp, err := p.roundTrip(r, body); err == nil {
		// Reading the whole answer makes sure DynamoDB finished before the client sees the reset.
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	abort(w)
}
