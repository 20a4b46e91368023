package stack

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sync/atomic"

	"github.com/trigger-api/trigger-api/pkg/api"
)

// Upstreams are the services the gateway routes to.
type Upstreams struct {
	Ingest    *url.URL
	Inbox     *url.URL
	KeysAdmin *url.URL
	// Replicas are further replicas of a component (Ingest, Inbox or KeysAdmin) beside the
	// one above: the gateway takes turns between them, as a Kubernetes Service does between
	// a Deployment's pods.
	Replicas map[string][]*url.URL
}

// NewGateway routes paths the way the production Ingress does, plus /admin/* to keys-admin,
// which production keeps internal and only this local stack exposes. Anything else is a 404
// in the API's error envelope, so a client cannot tell the gateway's answer from a service's.
func NewGateway(up Upstreams, errLog *log.Logger) http.Handler {
	ingest := proxy(Ingest, append([]*url.URL{up.Ingest}, up.Replicas[Ingest]...), errLog)
	inbox := proxy(Inbox, append([]*url.URL{up.Inbox}, up.Replicas[Inbox]...), errLog)
	admin := proxy(KeysAdmin, append([]*url.URL{up.KeysAdmin}, up.Replicas[KeysAdmin]...), errLog)

	mux := http.NewServeMux()
	mux.Handle("/events", ingest)
	mux.Handle("/events/", ingest)
	mux.Handle("/inbox", inbox)
	mux.Handle("/inbox/", inbox)
	mux.Handle("/ack", inbox)
	mux.Handle("/nack", inbox)
	mux.Handle("/admin/", admin)
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "not_found", "no such route")
	})
	// Registered so that ServeMux answers 404 here rather than redirecting to /admin/.
	mux.Handle("/admin", notFound)
	mux.Handle("/", notFound)
	return withRequestID(mux)
}

// retryAfterSeconds is the Retry-After of the gateway's 503: a crashed replica is restarted,
// or left out by the next call, within about a second.
const retryAfterSeconds = "1"

func proxy(name string, targets []*url.URL, errLog *log.Logger) http.Handler {
	pool := &replicaPool{targets: targets, next: http.DefaultTransport}
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			// The pool picks the replica for each attempt; this one only sets the scheme
			// and the forwarding headers.
			r.SetURL(targets[0])
			r.SetXForwarded()
		},
		Transport: pool,
		ErrorLog:  errLog,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				// The client gave up (a worker stopping mid-poll); nobody reads this answer.
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			errLog.Printf("%s %s → %s: %v", r.Method, r.URL.Path, name, err)
			if errors.Is(err, errNoReplica) {
				writeError(w, r, http.StatusBadGateway, "bad_gateway", name+" is not answering")
				return
			}
			// A replica took the call and failed before answering, as a crashed pod does: the
			// call may or may not have been applied. That is the API's own 503 case (a write
			// whose answer was lost), which callers repeat, with the same Idempotency-Key.
			w.Header().Set("Retry-After", retryAfterSeconds)
			writeError(w, r, http.StatusServiceUnavailable, api.CodeUnavailable, name+" failed before answering; retry")
		},
	}
}

// errNoReplica marks a call that no replica accepted a connection for: nothing was sent.
var errNoReplica = errors.New("no replica accepted the connection")

// maxReplayBody bounds the request body the pool keeps to offer a call to a second replica;
// the API refuses larger ones anyway (a batch is at most 1 MiB).
const maxReplayBody = 2 << 20

// replicaPool takes turns between a service's replicas and moves a call on to the next one
// when a replica refuses the connection, so a replica that has crashed costs no failed call
// while another is up. A call that reached a replica is never sent again.
type replicaPool struct {
	targets []*url.URL
	turn    atomic.Uint64
	next    http.RoundTripper
}

func (p *replicaPool) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := replayable(req)
	if err != nil {
		return nil, err
	}
	first := p.turn.Add(1)
	var last error
	for i := range p.targets {
		t := p.targets[(first+uint64(i))%uint64(len(p.targets))]
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host, out.Host = t.Scheme, t.Host, ""
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := p.next.RoundTrip(out)
		if err == nil || !refused(err) || (body == nil && req.Body != nil && req.Body != http.NoBody) {
			return resp, err
		}
		last = err
	}
	return nil, fmt.Errorf("%w: %w", errNoReplica, last)
}

// replayable reads a request body small enough to send twice; nil for none or a larger one,
// which then goes to one replica only.
func replayable(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody || req.ContentLength > maxReplayBody {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxReplayBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxReplayBody {
		// Too large to keep: what was read goes first, the rest follows from the client.
		req.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), req.Body), req.Body}
		return nil, nil
	}
	_ = req.Body.Close()
	return b, nil
}

// refused reports a failure to connect: the replica saw nothing of the call.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

const requestIDHeader = "X-Request-Id"

// requestIDPattern is what the services accept as a caller's request id.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// withRequestID gives every request an id before it is routed, so the gateway's own answers
// and the service's log lines for a proxied call carry the same one.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !requestIDPattern.MatchString(r.Header.Get(requestIDHeader)) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			r.Header.Set(requestIDHeader, "req_"+hex.EncodeToString(b[:]))
		}
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	id := r.Header.Get(requestIDHeader)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set(requestIDHeader, id)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]string{"code": code, "message": message, "request_id": id},
	})
}
