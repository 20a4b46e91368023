package runner

import (
	"net"
	"net/http"
	"time"
)

// NewHTTPClient returns the client the worker uses when none is injected: bounded dials and
// header waits, and enough idle connections that each key's puller, acks, extensions and nacks
// keep warm ones of their own.
func NewHTTPClient(cfg Config, keys int) *http.Client {
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4*keys + 2,
		MaxIdleConnsPerHost:   4*keys + 2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: cfg.pullTimeout(),
		ExpectContinueTimeout: time.Second,
	}
	// Each call carries its own deadline (a long poll's is longer than an ack's); this is the
	// backstop for one that does not.
	return &http.Client{Transport: t, Timeout: cfg.pullTimeout()}
}
