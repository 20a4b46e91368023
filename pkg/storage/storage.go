// Package storage holds the errors every store adapter shares, so handlers can map them to
// HTTP statuses without knowing which database answered.
package storage

import "errors"

// ErrUnavailable means the database could not serve the request right now (throttling, an
// outage, a network fault). Callers answer 503 with Retry-After; the client may retry.
var ErrUnavailable = errors.New("storage unavailable")
