package api

// Headers of the wire contract besides Authorization and Content-Type.
const (
	// HeaderIdempotencyKey makes a POST /events idempotent for 24 hours.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderIdempotentReplayed is "true" on the 200 that answers a replayed POST /events.
	HeaderIdempotentReplayed = "Idempotent-Replayed"
	// HeaderRequestID carries the request's id, the one the error envelope repeats.
	HeaderRequestID = "X-Request-Id"
)
