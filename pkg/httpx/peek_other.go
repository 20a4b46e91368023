//go:build !unix

package httpx

import "net"

// peekConn cannot look at the socket here: the client counts as present, and a release for a
// client that has gone costs a lease given back when its answer fails.
func peekConn(net.Conn) ([]byte, bool) { return nil, false }
