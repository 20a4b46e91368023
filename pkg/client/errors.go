package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
)

// Error is an answer of the API other than the one the call expects. It carries what the
// error envelope says, never the call's credential.
type Error struct {
	Op        string // the operation, as in the trigger.operation label
	Status    int
	Code      string // the envelope's stable code; "" when the answer had no envelope
	Message   string
	RequestID string
	// RetryAfter is the answer's Retry-After (429 and 503), 0 when it had none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request_id " + e.RequestID + ")")
	}
	return b.String()
}

// ErrAnswerTooLarge is the cause of a call whose answer was larger than any the API sends.
var ErrAnswerTooLarge = errors.New("answer larger than the API sends")

// IsCode reports whether err is an *Error with the envelope code code (see the api.Code
// constants).
func IsCode(err error, code string) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Code == code
}

// Transient reports whether err may pass if the call is made again later: an answer of 5xx,
// 429 or 408, or no usable answer at all (a transport failure or timeout, an answer cut off
// or malformed). Any other answer is a refusal of the credential or the request, which
// repeating cannot fix.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	e, ok := errors.AsType[*Error](err)
	if !ok {
		return true
	}
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout
}

// RetryAfter is the Retry-After of the answer err carries, 0 if none.
func RetryAfter(err error) time.Duration {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.RetryAfter
	}
	return 0
}

// transportError is a call that got no answer. Its text is net/http's, which names the
// method and URL but never a header, so never the credential.
type transportError struct {
	op  string
	err error
}

func (e *transportError) Error() string { return e.op + ": " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func statusError(op string, resp *http.Response) *Error {
	e := &Error{
		Op: op, Status: resp.StatusCode, RequestID: resp.Header.Get(api.HeaderRequestID),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	var env api.ErrorEnvelope
	if json.NewDecoder(io.LimitReader(resp.Body, maxErrorBytes)).Decode(&env) == nil {
		e.Code, e.Message = env.Error.Code, env.Error.Message
		if env.Error.RequestID != "" {
			e.RequestID = env.Error.RequestID
		}
	}
	return e
}

// parseRetryAfter reads either form of Retry-After: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// retryWait says whether err is worth another attempt and how long to wait first: only 429 and
// 503 answers and transport failures are, and only while ctx has time for the wait.
func retryWait(ctx context.Context, err error, attempt int) (time.Duration, bool) {
	if ctx.Err() != nil {
		return 0, false
	}
	var wait time.Duration
	if e, ok := errors.AsType[*Error](err); ok {
		if e.Status != http.StatusTooManyRequests && e.Status != http.StatusServiceUnavailable {
			return 0, false
		}
		wait = e.RetryAfter
	} else if _, ok := errors.AsType[*transportError](err); !ok {
		return 0, false
	}
	if wait <= 0 {
		wait = backoff(attempt)
	}
	wait = min(wait, MaxRetryWait)
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
		return 0, false
	}
	return wait, true
}

// backoff is the wait when the API named none: 250 ms doubled per attempt up to 4 s, the upper
// half jittered so that callers failing together do not retry together.
func backoff(attempt int) time.Duration {
	d := 250 * time.Millisecond << min(attempt-1, 4)
	return d/2 + rand.N(d/2+1)
}

// decode reads one JSON value of at most limit bytes into out.
func decode(r io.Reader, limit int64, out any) error {
	return json.NewDecoder(&boundedReader{r: r, left: limit}).Decode(out)
}

// boundedReader reads at most left bytes of r and then fails with ErrAnswerTooLarge if r has
// more: unlike io.LimitReader, it tells a cut-off answer from a short one.
type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var probe [1]byte
		if n, err := b.r.Read(probe[:]); n > 0 {
			return 0, ErrAnswerTooLarge
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}
