package httpx

import (
	"context"
	"net"
	"sync"
	"time"
)

// parkingListener is what a server accepts from: the real listener's new connections, and
// kept-alive connections that a parked request's answer gives back (see Park). The server
// takes a given-back connection for a new one and reads its next request as usual.
type parkingListener struct {
	net.Listener
	serving  context.Context // ends when the server begins to stop
	idle     time.Duration   // the server's IdleTimeout: how long a given-back connection may stay quiet
	accepted chan acceptResult
	back     chan net.Conn
	done     chan struct{}
	once     sync.Once
	err      error // why accepted was closed

	parked sync.WaitGroup // requests parked or being answered
}

type acceptResult struct {
	conn net.Conn
	err  error
}

// parkingKey finds the server's parkingListener in a request's context.
type parkingKey struct{}

func newParkingListener(serving context.Context, ln net.Listener, idle time.Duration) *parkingListener {
	l := &parkingListener{Listener: ln, serving: serving, idle: idle, accepted: make(chan acceptResult), back: make(chan net.Conn), done: make(chan struct{})}
	go l.pump()
	return l
}

// pump accepts from the real listener until it fails for good.
func (l *parkingListener) pump() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.accepted <- acceptResult{c, err}:
		case <-l.done:
			if c != nil {
				_ = c.Close()
			}
			return
		}
		if t, ok := err.(interface{ Temporary() bool }); err != nil && (!ok || !t.Temporary()) {
			l.err = err
			close(l.accepted)
			return
		}
	}
}

func (l *parkingListener) Accept() (net.Conn, error) {
	select {
	case a, ok := <-l.accepted:
		if !ok {
			return nil, l.err
		}
		return a.conn, a.err
	case c := <-l.back:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *parkingListener) Close() error {
	err := net.ErrClosed
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// closing says the server is stopping: an answer then closes its connection.
func (l *parkingListener) closing() bool {
	if l.serving.Err() != nil {
		return true
	}
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// giveBack hands a connection to the server for its next request; pending are bytes already
// read past the answered request. A closed listener closes the connection instead.
func (l *parkingListener) giveBack(c net.Conn, pending []byte) {
	now := time.Now()
	rc := &returnedConn{Conn: c, pending: pending, since: now, idleUntil: now.Add(l.idle)}
	select {
	case l.back <- rc:
	case <-l.done:
		_ = c.Close()
	}
}

// waitParked waits until every parked request is answered, or ctx ends.
func (l *parkingListener) waitParked(ctx context.Context) error {
	all := make(chan struct{})
	go func() { l.parked.Wait(); close(all) }()
	select {
	case <-all:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// returnedConn is a given-back connection. The server sees a new connection and allows its
// first request ReadHeaderTimeout from the moment it takes it; a kept-alive one is allowed
// IdleTimeout until its next request begins, as net/http allows its own. So until the first
// byte arrives the socket's deadline is the idle one, and the server's deadlines for that
// first request move by as long as the connection stayed quiet.
type returnedConn struct {
	net.Conn
	pending []byte

	mu        sync.Mutex
	since     time.Time     // when it was given back
	idleUntil time.Time     // zero once the first byte arrived
	asked     time.Time     // the read deadline the server asked for while idle
	shift     time.Duration // how long the connection stayed quiet
	wrote     bool          // the first answer began: the server's deadlines are its own again
}

func (c *returnedConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.arrived()
		return n, nil
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.arrived()
	}
	return n, err
}

// arrived ends the idle wait: the server's deadline applies from now.
func (c *returnedConn) arrived() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idleUntil.IsZero() {
		return
	}
	c.shift = time.Since(c.since)
	c.idleUntil = time.Time{}
	if !c.asked.IsZero() {
		_ = c.Conn.SetReadDeadline(c.asked.Add(c.shift))
	}
}

func (c *returnedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case t.IsZero() || c.wrote:
	case !c.idleUntil.IsZero():
		c.asked = t
		t = c.idleUntil
	default:
		t = t.Add(c.shift)
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *returnedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.wrote = true
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// CloseWrite lets the server half-close the connection before closing it, as it does a
// connection of its own.
func (c *returnedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
