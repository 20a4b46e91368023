package httpx

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr is the address a request's failed authentications are counted against.
//
// With trustedProxies 0 it is the connection's remote address and X-Forwarded-For is ignored:
// anyone can write that header, and believing it would let one client spread its failures
// over addresses it made up. With n trusted proxies, each appending the address it received the
// request from, the n-th entry from the right is the client the outermost proxy saw; entries
// further left were written by the client and are never read. IPv6 addresses count per /64,
// the block one subscriber is usually given, so a client cannot dodge its budget by walking
// through its own block.
func ClientAddr(r *http.Request, trustedProxies int) string {
	addr := remoteAddr(r)
	if trustedProxies > 0 {
		if fwd, ok := forwardedFor(r, trustedProxies); ok {
			addr = fwd
		}
	}
	if !addr.IsValid() {
		// Not an IP (a Unix socket, a test harness): one bucket for all such callers.
		return r.RemoteAddr
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, _ := netip.ParseAddr(host)
	return addr
}

// forwardedFor returns the entry n from the right of the X-Forwarded-For list, all headers of
// that name read as one list. A request that passed through fewer proxies than configured has
// a shorter list; its leftmost entry is then the best there is.
func forwardedFor(r *http.Request, n int) (netip.Addr, bool) {
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		for _, hop := range strings.Split(h, ",") {
			if hop = strings.TrimSpace(hop); hop != "" {
				hops = append(hops, hop)
			}
		}
	}
	if len(hops) == 0 {
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(hops[max(len(hops)-n, 0)])
	return addr, err == nil
}
