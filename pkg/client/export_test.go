package client

import (
	"context"
	"time"
)

// WithSleep replaces the wait before a retry, so tests see the waits without spending them.
func WithSleep(f func(context.Context, time.Duration) error) Option {
	return func(c *conn) { c.sleep = f }
}
