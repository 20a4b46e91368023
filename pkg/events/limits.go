package events

// Limits of the event lifecycle. They are domain rules, enforced by the queue's use cases and
// named by the wire contract (package api); the consumer calls follow SQS's.
const (
	MaxBatchEvents = 100     // events in one batch ingest
	MaxBatchBytes  = 1 << 20 // one batch ingest's body

	DefaultListLimit = 50  // events in a listing page
	MaxListLimit     = 100 // events in a listing page

	DefaultPullEvents        = 10
	MaxPullEvents            = 100
	DefaultVisibilitySeconds = 30
	MaxVisibilitySeconds     = 12 * 60 * 60
	MaxWaitSeconds           = 20
	MaxNackDelaySeconds      = 12 * 60 * 60

	MaxSettleItems = 100  // events one ack, nack, extend or redrive call names
	MaxRedriveAll  = 1000 // events one redrive of everything moves
)
