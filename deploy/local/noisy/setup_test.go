package noisy

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/client"
)

func TestRefusedForOnlyTheRateLimit(t *testing.T) {
	for _, c := range []struct {
		err     error
		wait    time.Duration
		refused bool
	}{
		{fmt.Errorf("publish: %w", &client.Error{Status: http.StatusTooManyRequests, RetryAfter: 2 * time.Second}), 2 * time.Second, true},
		{&client.Error{Status: http.StatusTooManyRequests}, 100 * time.Millisecond, true},
		{&client.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second}, 0, false},
		{errors.New("connection reset"), 0, false},
		{nil, 0, false},
	} {
		wait, refused := refusedFor(c.err)
		if wait != c.wait || refused != c.refused {
			t.Errorf("%v: got %v %v, want %v %v", c.err, wait, refused, c.wait, c.refused)
		}
	}
}
