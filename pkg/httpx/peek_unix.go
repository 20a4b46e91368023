//go:build unix

package httpx

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// peekConn reads, without waiting, what the peer has sent on c: the bytes, and whether the
// peer has closed or reset the connection. A read with a deadline in the past cannot tell:
// Go fails it before asking the socket.
func peekConn(c net.Conn) ([]byte, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, true
	}
	_ = c.SetReadDeadline(time.Time{})
	var b [1]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), b[:])
		return true // never wait for readiness
	})
	switch {
	case err != nil:
		return nil, true
	case n > 0:
		return b[:n], false
	case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EINTR):
		return nil, false
	}
	return nil, true // end of stream, or an error such as a reset
}
