package stack

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
)

// Upstreams are the services the gateway routes to.
type Upstreams struct {
	Ingest    *url.URL
	Inbox     *url.URL
	KeysAdmin *url.URL
}

// NewGateway routes paths the way the production Ingress does, plus /admin/* to keys-admin,
// which production keeps internal and only this local stack exposes. Anything else is a 404
// in the API's error envelope, so a client cannot tell the gateway's answer from a service's.
func NewGateway(up Upstreams, errLog *log.Logger) http.Handler {
	ingest := proxy("ingest", up.Ingest, errLog)
	inbox := proxy("inbox", up.Inbox, errLog)
	admin := proxy("keys-admin", up.KeysAdmin, errLog)

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

func proxy(name string, target *url.URL, errLog *log.Logger) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
		},
		ErrorLog: errLog,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				// The client gave up (a worker stopping mid-poll); nobody reads this answer.
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			errLog.Printf("%s %s → %s: %v", r.Method, r.URL.Path, name, err)
			writeError(w, r, http.StatusBadGateway, "bad_gateway", name+" is not answering")
		},
	}
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
