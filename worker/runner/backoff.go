package runner

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/trigger-api/trigger-api/pkg/client"
)

// Backoff is a capped exponential pause: Base doubled per consecutive failure up to Max, with
// the upper half jittered so that loops failing together do not retry together.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
}

// Delay is the pause before retry number attempt (1 for the first retry).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Ceiling(attempt)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// Ceiling is the largest pause Delay may return for attempt.
func (b Backoff) Ceiling(attempt int) time.Duration {
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Default pauses. Transient failures recover within seconds, so retries start fast; a refused
// key needs a person (or a key rotation) to fix it, so its consumer waits minutes, not milliseconds.
var (
	DefaultRetryBackoff   = Backoff{Base: 250 * time.Millisecond, Max: 30 * time.Second}
	DefaultRefusedBackoff = Backoff{Base: 30 * time.Second, Max: 5 * time.Minute}
)

// PauseReason says why a loop pauses.
type PauseReason string

// Pause reasons.
const (
	// PauseIdle: a pull found nothing sooner than TRIGGER_POLL_INTERVAL after it began.
	PauseIdle PauseReason = "idle"
	// PauseRetry: a transient failure (5xx, 429, network) of a pull or an ack; the pause
	// grows per failure.
	PauseRetry PauseReason = "retry"
	// PauseRefused: the API refused the key or the request (401, 403, other 4xx).
	PauseRefused PauseReason = "refused"
)

// Pauser waits d or until ctx ends, returning ctx's error in the latter case.
type Pauser func(ctx context.Context, reason PauseReason, d time.Duration) error

func sleep(ctx context.Context, _ PauseReason, d time.Duration) error { return client.Sleep(ctx, d) }
