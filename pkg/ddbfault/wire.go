package ddbfault

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// operation is the DynamoDB operation a request calls: X-Amz-Target is
// "DynamoDB_20120810.<Operation>".
func operation(r *http.Request) string {
	t := r.Header.Get("X-Amz-Target")
	return t[strings.LastIndexByte(t, '.')+1:]
}

// hopByHop are the headers that describe one connection, not the message (RFC 9110 7.6.1);
// everything else passes the proxy as it came, so the SDK's signature still matches.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopByHop(h http.Header) {
	for _, f := range h.Values("Connection") {
		for name := range strings.SplitSeq(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}

func (p *Proxy) roundTrip(r *http.Request, body []byte) (*http.Response, error) {
	u := *p.target
	u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out.Header = r.Header.Clone()
	removeHopByHop(out.Header)
	// The client signed the Host it sent, the proxy's; DynamoDB Local does not check it.
	out.Host = r.Host
	return p.transport.RoundTrip(out)
}

// forward passes the request to DynamoDB and its answer back as it arrives.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	resp, err := p.roundTrip(r, body)
	if err != nil {
		// The client meets an unreachable DynamoDB as it would without the proxy: as a
		// transport error, not as an answer no DynamoDB would give.
		abort(w)
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	removeHopByHop(h)
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // net/http would otherwise sniff one
	}
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	if err := stream(w, resp.Body); err != nil {
		// Half an answer must not look like a whole one to the client.
		panic(http.ErrAbortHandler)
	}
}

func stream(w http.ResponseWriter, body io.Reader) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if ferr := rc.Flush(); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// writeError answers as DynamoDB does when it refuses a call, so the SDK classifies and retries
// it as it would a real one.
func writeError(w http.ResponseWriter, status int, code, message string) {
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{"com.amazonaws.dynamodb.v20120810#" + code, message})
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	h.Set("X-Amzn-Requestid", rand.Text()+rand.Text())
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// abort ends the request with no answer: it resets the client connection (SO_LINGER 0 sends a
// RST rather than a FIN) so the client fails at once with "connection reset by peer", which the
// SDK retries as a transport error.
func abort(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (already answered or closed): net/http closes the connection instead.
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}
