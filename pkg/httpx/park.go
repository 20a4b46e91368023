package httpx

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// A request that must wait a long time (a long poll) holds, in net/http, a goroutine for its
// connection and another reading in the background, with their stacks and buffers: about
// 100 KiB. Park takes such a request's connection from the server, so it waits as a small
// struct with no goroutine; its answer is written later, from any goroutine, straight on the
// connection, which then goes back to the server for its next request.

// writeTimeout bounds writing an answer, counted from the request's start.
const writeTimeout = 60 * time.Second

// Parked is a request whose connection was taken from the server to wait without a goroutine.
// Exactly one of Write, WriteError or Close ends it.
type Parked struct {
	l       *parkingListener
	conn    net.Conn
	pending []byte // read past the request: the next one, pipelined
	header  http.Header
	ctx     context.Context
	log     *zap.Logger
	reqID   string
	start   time.Time
	span    *holdSpan
	// The authenticator and tenant of the request, as ChargeWork and the error renderer use
	// them in a handler: nil outside RequireKey.
	auth      *tenant.Authenticator
	principal tenant.Principal

	// handled is done once the handler chain has returned, so that the access line, the
	// span and the metrics it held back are complete before the answer records them.
	handled sync.WaitGroup
	access  func(status, size int)
}

// Park takes the request's connection from the server if it can: an HTTP/1.1 keep-alive
// request, served by ServeListener, whose body was read to its end. The handler must then
// return at once without writing; the request's access line, server span and metrics end
// with the Parked's answer. false: the request stays the server's, as before.
func Park(c *gin.Context) (*Parked, bool) {
	r := requestOf(c)
	req := c.Request
	l, _ := req.Context().Value(parkingKey{}).(*parkingListener)
	if l == nil || r == nil || req.ProtoMajor != 1 || req.ProtoMinor < 1 || req.Close || !bodyDone(req) {
		return nil, false
	}
	header := c.Writer.Header().Clone()
	conn, rw, err := http.NewResponseController(c.Writer).Hijack()
	if err != nil {
		return nil, false
	}
	p := &Parked{l: l, conn: conn, header: header, ctx: context.WithoutCancel(req.Context()), log: r.logger(), reqID: r.id, start: time.Now(),
		auth: r.auth, principal: r.principal}
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n)
		p.pending = bytes.Clone(b)
	}
	if rc, ok := conn.(*returnedConn); ok {
		p.conn, p.pending = rc.Conn, append(p.pending, rc.pending...)
	}
	p.handled.Add(1) // the access log's
	if p.span = heldSpan(p.ctx); p.span != nil {
		p.start = p.span.start
		p.handled.Add(1)
		p.span.hold(p.handled.Done)
	}
	r.parked = p
	l.parked.Add(1)
	return p, true
}

// bodyDone reads what is left of the request's body, as net/http does after a handler, up
// to a small bound: true if it ended, so what follows on the connection is the next request.
func bodyDone(req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	_, err := io.CopyN(io.Discard, req.Body, 4<<10)
	return err == io.EOF
}

// Context is the request's context without its end: the handler's return ends the original.
func (p *Parked) Context() context.Context { return p.ctx }

// Logger is the request's logger.
func (p *Parked) Logger() *zap.Logger { return p.log }

// Gone says whether the client has closed or reset the connection. It does not wait: bytes
// already sent (a pipelined request) mean the client is there, and are kept for the server.
func (p *Parked) Gone() bool {
	if len(p.pending) > 0 {
		return false
	}
	b, gone := peekConn(p.conn)
	p.pending = append(p.pending, b...)
	return gone
}

// Write answers with status, a Content-Type and body, as the handler would have, then gives
// the connection back to the server. An error: the answer did not reach the connection.
func (p *Parked) Write(status int, contentType string, body []byte) error {
	p.header.Set("Content-Type", contentType)
	return p.respond(status, body)
}

// ChargeWork counts the answer's work against the tenant's rate, as ChargeWork does in a
// handler.
func (p *Parked) ChargeWork(n int) {
	if p.auth != nil {
		p.auth.Charge(p.principal, n)
	}
}

// WriteError answers err in the error envelope, as Fail does in a handler.
func (p *Parked) WriteError(err error) error {
	if p.auth != nil {
		p.auth.Hold(p.ctx, err)
	}
	he, known := toHTTP(err)
	if !known {
		p.log.Error("request failed", zap.Error(err))
	} else if he.Status == http.StatusServiceUnavailable {
		p.log.Warn("dependency unavailable", zap.Error(err))
	}
	switch he.Status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		p.header.Set("Retry-After", strconv.Itoa(max(he.RetryAfter, 1)))
	case http.StatusUnauthorized:
		p.header.Set("WWW-Authenticate", `Bearer realm="trigger-api"`)
	}
	body, _ := json.Marshal(envelope{Error: envelopeBody{Code: he.Code, Message: he.Message, RequestID: p.reqID}})
	return p.Write(he.Status, "application/json; charset=utf-8", body)
}

// Close ends a request whose client has gone: it is recorded as a request cut short, as the
// server records one whose client leaves while its handler waits.
func (p *Parked) Close() {
	_ = p.conn.Close()
	he, _ := toHTTP(context.Canceled)
	p.finish(he.Status, 0)
}

// WriteStream answers with status and a Content-Type, the body written by body as net/http
// would send it: with a Content-Length when body writes it in one piece, chunked when it takes
// more, so a large answer never exists whole in memory. body may reuse a piece once written.
// An error: the answer did not reach the connection.
func (p *Parked) WriteStream(status int, contentType string, body func(io.Writer) error) error {
	p.header.Set("Content-Type", contentType)
	w := &streamWriter{p: p, status: status}
	err := body(w)
	if w.bw == nil {
		if err != nil {
			// body failed before anything was sent: the answer is lost, as after a failed write.
			_ = p.conn.Close()
			p.finish(status, 0)
			return err
		}
		return p.respond(status, w.first)
	}
	if err == nil {
		// The chunked writer's Close ends the chunks; the blank line ends the trailers.
		if err = w.chunks.Close(); err == nil {
			_, err = io.WriteString(w.bw, "\r\n")
		}
	}
	return p.end(status, w.bw, w.n, w.closing, err)
}

// streamWriter keeps an answer's first piece until a second one says it goes chunked.
type streamWriter struct {
	p       *Parked
	status  int
	first   []byte
	pieces  int
	bw      *bufio.Writer  // the connection's, once the status line and headers are written
	chunks  io.WriteCloser // on bw
	closing bool
	n       int64
}

func (w *streamWriter) Write(b []byte) (int, error) {
	w.pieces++
	if w.pieces == 1 {
		w.first = append(w.first[:0], b...)
		return len(b), nil
	}
	if w.bw == nil {
		w.bw, w.closing = w.p.begin(w.status, -1)
		w.chunks = httputil.NewChunkedWriter(w.bw)
		if err := w.write(w.first); err != nil {
			return 0, err
		}
		w.first = nil
	}
	return len(b), w.write(b)
}

func (w *streamWriter) write(b []byte) error {
	n, err := w.chunks.Write(b)
	w.n += int64(n)
	return err
}

// respond writes the whole answer on the connection and hands the connection on.
func (p *Parked) respond(status int, body []byte) error {
	bw, closing := p.begin(status, len(body))
	n, err := bw.Write(body)
	return p.end(status, bw, int64(n), closing, err)
}

// begin writes the status line and the headers, for a body of length bytes (below 0: sent
// chunked), and returns the writer the body goes to; closing says the connection takes no
// next request.
func (p *Parked) begin(status, length int) (bw *bufio.Writer, closing bool) {
	closing = p.l.closing()
	h := p.header
	if length >= 0 {
		h.Set("Content-Length", strconv.Itoa(length))
	} else {
		h.Del("Content-Length")
		h.Set("Transfer-Encoding", "chunked")
	}
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if closing {
		// The server is shutting down: this connection takes no next request.
		h.Set("Connection", "close")
	}
	_ = p.conn.SetWriteDeadline(p.start.Add(writeTimeout))
	bw = bufio.NewWriterSize(p.conn, parkedWriteBuffer)
	bw.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	_ = h.Write(bw)
	bw.WriteString("\r\n")
	return bw, closing
}

// end sends what bw holds, records the answer of size body bytes, and hands the connection on,
// or closes it after a failed write or when it takes no next request.
func (p *Parked) end(status int, bw *bufio.Writer, size int64, closing bool, err error) error {
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		size = 0
	}
	p.finish(status, int(size))
	if err != nil || closing {
		_ = p.conn.Close()
		return err
	}
	_ = p.conn.SetDeadline(time.Time{})
	p.l.giveBack(p.conn, p.pending)
	return nil
}

// parkedWriteBuffer is what an answer on a parked connection gathers before writing: a small
// answer goes out in one write, a large one in pieces of this size.
const parkedWriteBuffer = 32 << 10

// finish ends the request's access line, span and metrics once the handler chain is done.
func (p *Parked) finish(status, size int) {
	p.handled.Wait()
	if p.access != nil {
		p.access(status, size)
	}
	if p.span != nil {
		p.span.finish(p.ctx, status, int64(size))
	}
	p.l.parked.Done()
}
