// Package client is the typed Go client of Trigger API's public API. Client speaks the tenant
// calls (publish, read, pull, settle, dead letters) with a tenant API key; Admin speaks the
// admin calls (tenants and keys) with an admin token. Both speak the wire types of package api.
//
// # Errors
//
// An answer other than the call's success status is an *Error carrying the error envelope's
// code, message and request id, and the Retry-After the API asked for. IsCode, Transient and
// RetryAfter inspect it. No error, and no formatting of a Client or an Admin, ever shows the
// key or the token.
//
// # Retries
//
// By default a call that is safe to repeat is made up to DefaultRetries more times when the
// API answers 429 or 503 or no answer arrives at all: reads, ack, nack, extend and redrive
// (each settles an event once, whatever the number of calls), a publish that carries an
// Idempotency-Key, and the admin calls that set an absolute state (reads, patch, revoke). The
// wait is the answer's Retry-After, capped at MaxRetryWait, or else a short growing backoff;
// a wait that would outlast the context's deadline is not begun, the error is returned instead.
// A pull is never repeated (an answer lost on the way back has already leased its events, which
// a second pull would not return), and neither is a publish without an Idempotency-Key, a batch
// publish, nor the admin calls that create something. WithRetries(0) turns retrying off, for a
// caller with its own loop.
//
// # Telemetry
//
// Each call's context carries an otelhttp client labeler with the attribute trigger.operation
// (publish, publish_batch, get_event, inbox, pull, ack, extend, nack, dead, redrive,
// redrive_all, and for the admin calls create_tenant, get_tenant, list_tenants, patch_tenant,
// issue_key, list_keys, revoke_key, roll_key), so an otelhttp-wrapped transport passed with
// WithHTTPClient records each operation apart; that transport is also where trace context is
// propagated.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"

	"github.com/trigger-api/trigger-api/pkg/api"
)

const (
	// DefaultRetries is how many times a call safe to repeat is made again by default.
	DefaultRetries = 2
	// MaxRetryWait caps the wait before a retry, whatever Retry-After asks for.
	MaxRetryWait = 30 * time.Second
	// DefaultUserAgent is the User-Agent sent unless WithUserAgent says otherwise.
	DefaultUserAgent = "trigger-api-go"
)

// Bounds on the answers the client reads. An answer beyond its bound is not one the API sends,
// so it fails with ErrAnswerTooLarge rather than filling memory.
const (
	// maxPageBytes: a page holds at most 100 events of at most 256 KiB each, and their envelope.
	maxPageBytes = api.MaxPullEvents*api.MaxEventBytes + 4<<20
	// maxEventBytes: one event and its envelope.
	maxEventBytes = api.MaxEventBytes + 64<<10
	// maxSmallBytes: every other answer (settle and batch results, admin records) is short.
	maxSmallBytes = 1 << 20
	// maxErrorBytes: an error envelope.
	maxErrorBytes = 64 << 10
)

// Option changes how a Client or an Admin works.
type Option func(*conn)

// WithHTTPClient sends every call through h: pass an otelhttp-wrapped one to trace the calls
// and propagate trace context. nil keeps the default, which bounds nothing but a whole call
// at one minute, so give each call a context with its own deadline.
func WithHTTPClient(h *http.Client) Option {
	return func(c *conn) {
		if h != nil {
			c.http = h
		}
	}
}

// WithUserAgent sets the User-Agent of every call.
func WithUserAgent(ua string) Option { return func(c *conn) { c.userAgent = ua } }

// WithRetries sets how many more times a call safe to repeat is made after a 429, a 503 or a
// transport failure; 0 (or less) makes every call once.
func WithRetries(n int) Option { return func(c *conn) { c.retries = max(n, 0) } }

// conn is what Client and Admin share: where to call, with which credential, how. Client and
// Admin hold it by pointer, so printing either shows an address, never the credential.
type conn struct {
	http      *http.Client
	base      string // scheme://host[/prefix], no trailing slash
	auth      string // the Authorization header: never formatted, never logged
	userAgent string
	retries   int
	sleep     func(context.Context, time.Duration) error
}

func newConn(baseURL, credential, what string, opts []Option) (*conn, error) {
	base, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	// Checked here because a bad one would otherwise fail every call, and net/http's error
	// for a header value with a newline in it would not say which input was at fault.
	if credential == "" || strings.ContainsFunc(credential, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return nil, fmt.Errorf("client: the %s is empty or holds spaces or control characters", what)
	}
	c := &conn{
		http: &http.Client{Timeout: time.Minute}, base: base, auth: "Bearer " + credential,
		userAgent: DefaultUserAgent, retries: DefaultRetries, sleep: Sleep,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// parseBase accepts an absolute http or https URL, optionally with a path prefix. Its errors
// never repeat the URL: one with credentials in it is refused, not shown.
func parseBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", errors.New("client: base URL is not a valid URL")
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "", errors.New("client: base URL must be an absolute http or https URL")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", errors.New("client: base URL must not carry credentials, a query or a fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// request is one call as the API defines it.
type request struct {
	op     string // the trigger.operation label and the error's Op
	method string
	path   string // escaped, from the root of the API
	query  url.Values
	body   []byte // sent as is on POST and PATCH
	header map[string]string
	want   []int // the success statuses
	limit  int64 // bound of the success answer
	retry  bool  // safe to repeat
}

// answer is what a successful call returned besides its body.
type answer struct {
	status int
	header http.Header
}

// do makes the call, retrying it as the package documentation says, and decodes a success
// answer into out (if not nil).
func (c *conn) do(ctx context.Context, r request, out any) (answer, error) {
	// One labeler for every attempt: otelhttp reads its attributes per request.
	l := &otelhttp.Labeler{}
	l.Add(attribute.String("trigger.operation", r.op))
	ctx = otelhttp.ContextWithClientLabeler(ctx, l)
	for attempt := 1; ; attempt++ {
		ans, err := c.once(ctx, r, out)
		if err == nil || !r.retry || attempt > c.retries {
			return ans, err
		}
		wait, ok := retryWait(ctx, err, attempt)
		if !ok || c.sleep(ctx, wait) != nil {
			return ans, err
		}
	}
}

func (c *conn) once(ctx context.Context, r request, out any) (answer, error) {
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.method == http.MethodPost || r.method == http.MethodPatch {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return answer{}, fmt.Errorf("%s: %w", r.op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, &transportError{op: r.op, err: err}
	}
	defer func() {
		// Drained so the connection goes back to the pool instead of being closed.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	ans := answer{status: resp.StatusCode, header: resp.Header}
	if !slices.Contains(r.want, resp.StatusCode) {
		return ans, statusError(r.op, resp)
	}
	if out != nil {
		if err := decode(resp.Body, r.limit, out); err != nil {
			return ans, fmt.Errorf("%s: decode answer: %w", r.op, err)
		}
	}
	return ans, nil
}

// Sleep waits d or until ctx ends, returning ctx's error then: the wait to pair with
// RetryAfter in a caller's own retry loop.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
