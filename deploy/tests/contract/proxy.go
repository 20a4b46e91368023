package contract

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// maxBody bounds what the proxy holds of one body: the largest the API takes is a 1 MiB batch,
// and the largest it answers is 100 events of 256 KiB.
const maxBody = 32 << 20

// Report receives each exchange that went through a Proxy, with its verdict.
type Report func(ex Exchange, res Result)

// NewProxy returns a reverse proxy to target that checks every exchange passing through it
// against v and hands the verdict to report. Clients see the service's answer unchanged.
func NewProxy(target *url.URL, v *Validator, report Report) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
		},
		Transport: &checkingTransport{base: http.DefaultTransport, v: v, report: report},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
			if r.Context().Err() != nil {
				return // the client went away; nobody reads this answer
			}
			report(Exchange{Request: r, Status: http.StatusBadGateway}, Result{Response: fmt.Errorf("the contract proxy could not reach %s: %w", target, err)})
		},
	}
}

type checkingTransport struct {
	base   http.RoundTripper
	v      *Validator
	report Report
}

func (t *checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxBody+1))
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(b) > maxBody {
			return nil, fmt.Errorf("request body over %d bytes: the contract proxy does not hold it", maxBody)
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.ContentLength = int64(len(b))
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if req.Context().Err() != nil {
		// The client went away (a worker stopping mid-poll): nobody reads this answer, and
		// the service may have cut it short.
		return resp, nil
	}
	ex := Exchange{Request: req, RequestBody: reqBody, Status: resp.StatusCode, Header: resp.Header, Body: body}
	if len(body) > maxBody {
		t.report(ex, Result{Response: fmt.Errorf("answer body over %d bytes", maxBody)})
		return resp, nil
	}
	t.report(ex, t.v.Check(req.Context(), ex))
	return resp, nil
}
