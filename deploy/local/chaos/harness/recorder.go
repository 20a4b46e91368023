package harness

import (
	"net/http"
	"sync"
	"time"
)

// recorder is the transport of every client the run uses against the API. The client retries
// inside a call, so only the transport sees each raw answer: a 503 that a retry turned into a
// 202 still counts here.
type recorder struct {
	next http.RoundTripper

	mu                sync.Mutex
	statuses          map[int]int
	retryAfterMissing int // 503s (and 429s) without Retry-After
	transportErrors   int
	firstError        string
	longest           time.Duration // the slowest raw call: evidence of how close anything came to hanging
}

func newRecorder(next http.RoundTripper) *recorder {
	return &recorder{next: next, statuses: map[int]int{}}
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	began := time.Now()
	resp, err := r.next.RoundTrip(req)
	took := time.Since(began)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.longest = max(r.longest, took)
	if err != nil {
		r.transportErrors++
		if r.firstError == "" {
			r.firstError = req.Method + " " + req.URL.Path + ": " + err.Error()
		}
		return nil, err
	}
	r.statuses[resp.StatusCode]++
	if (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests) &&
		resp.Header.Get("Retry-After") == "" {
		r.retryAfterMissing++
	}
	return resp, nil
}

// counts is a copy of what the recorder has seen so far.
type counts struct {
	statuses          map[int]int
	retryAfterMissing int
	transportErrors   int
	firstError        string
	longest           time.Duration
}

func (r *recorder) counts() counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := counts{statuses: make(map[int]int, len(r.statuses)), retryAfterMissing: r.retryAfterMissing,
		transportErrors: r.transportErrors, firstError: r.firstError, longest: r.longest}
	for s, n := range r.statuses {
		c.statuses[s] = n
	}
	return c
}
