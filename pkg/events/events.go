// Package events holds the event domain: validation of what producers send, the inbox order
// and cursor, and the store interface the adapters implement.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"time"
)

// Domain errors.
var (
	// ErrNotFound covers events that do not exist and events of another tenant alike.
	ErrNotFound      = errors.New("event not found")
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrLeaseLost: the lease named no longer holds the event (it expired and the event was
	// leased again, or it was settled under another lease).
	ErrLeaseLost = errors.New("lease lost")
	// ErrSettled: the event is acknowledged already, so it cannot be nacked or redriven.
	ErrSettled = errors.New("event already settled")
	// ErrNotDead: only dead events can be redriven.
	ErrNotDead = errors.New("event is not dead")
	// ErrIdempotencyConflict: the idempotency key was used with a different body.
	ErrIdempotencyConflict = errors.New("idempotency key reused with a different body")
)

// Status is where an event is in its life.
type Status string

// Event states.
const (
	StatusUndelivered Status = "undelivered"
	StatusDelivered   Status = "delivered"
	StatusDead        Status = "dead"
)

// Event is one stored event.
type Event struct {
	TenantID      string
	ID            string
	Type          string
	Payload       []byte // the request body exactly as received
	ReceivedAt    time.Time
	Status        Status
	DeliveryCount int
	VisibleAt     time.Time
	DeliveredAt   time.Time
	DeadAt        time.Time
	Partition     int
	LeaseID       string // set while leased, and kept on the acknowledgement it led to
	// Traceparent is the W3C context of the span that published the event: every later step
	// of its life joins that trace. Empty when tracing was off.
	Traceparent string
	// ExpiresAt is when the event is gone: MaxAge after it was received while it is not
	// acknowledged, the tenant's retention after its acknowledgement.
	ExpiresAt time.Time
	// PayloadExpiresAt is when the stored payload is gone: no acknowledgement may keep the
	// event past it (zero: a year after ExpiresAt). Set at publishing with KeepFor, because the
	// payload is written once and never touched again.
	PayloadExpiresAt time.Time
}

// ReadUnit is the payload size for which a read costs one more request of the tenant's rate
// (DynamoDB bills a consistent read by the 4 KiB): a listing of large events is work that a
// listing of small ones is not.
const ReadUnit = 4 << 10

// ReadCost is what an answer carrying es costs the tenant's rate: the request, and one more
// per full ReadUnit of each payload, so events under 4 KiB cost nothing beyond the request.
func ReadCost(es []Event) int {
	n := 1
	for _, e := range es {
		n += len(e.Payload) / ReadUnit
	}
	return n
}

// MaxAge is how long an event waits for its acknowledgement, dead or alive, before it expires,
// as a queue's retention period: the payload is written once with an expiry, so that no later
// state change has to rewrite it (DynamoDB bills a write by the size of the whole item).
const MaxAge = 14 * 24 * time.Hour

// KeepFor sets how long the event stays readable after its acknowledgement: the payload then
// outlives every acknowledgement that can still happen.
func (e *Event) KeepFor(retention time.Duration) {
	e.PayloadExpiresAt = e.ExpiresAt.Add(retention)
}

// New builds an undelivered event with a fresh id, placed on one of the tenant's partitions.
func New(tenantID, eventType string, payload []byte, partitions int, now time.Time) Event {
	id := NewID()
	now = now.Truncate(time.Millisecond)
	return Event{
		TenantID:   tenantID,
		ID:         id,
		Type:       eventType,
		Payload:    payload,
		ReceivedAt: now,
		Status:     StatusUndelivered,
		VisibleAt:  now,
		Partition:  PartitionOf(id, partitions),
		ExpiresAt:  now.Add(MaxAge),
	}
}

// NewID returns "evt_" and 128 random bits in hex: random rather than time-ordered, so writes
// spread over the table's partitions.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the OS source failing is unrecoverable
	}
	return "evt_" + hex.EncodeToString(b[:])
}

var idPattern = regexp.MustCompile(`^evt_[0-9a-f]{32}$`)

// ValidID reports whether id has the shape of an event id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// PartitionOf spreads events over a tenant's inbox partitions by a hash of the id.
func PartitionOf(eventID string, partitions int) int {
	if partitions <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(eventID))
	return int(h.Sum32() % uint32(partitions))
}

// NewLeaseID returns a fresh lease id.
func NewLeaseID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return "lse_" + hex.EncodeToString(b[:])
}

var leaseIDPattern = regexp.MustCompile(`^lse_[0-9a-f]{32}$`)

// ValidLeaseID reports whether id has the shape of a lease id.
func ValidLeaseID(id string) bool { return leaseIDPattern.MatchString(id) }

// InboxQuery selects a page of a tenant's undelivered, visible events, oldest first.
type InboxQuery struct {
	TenantID   string
	Partitions int
	Limit      int
	After      Position // zero: from the start
	EventType  string   // empty: every type
	Now        time.Time
	// MaxBytes ends the page early, with Next set, once its payloads reach this many bytes
	// (0: no end): a page of events at the size limit is not held whole in memory.
	MaxBytes int
}

// InboxPage is one page of the inbox; Next is zero when nothing follows.
type InboxPage struct {
	Events []Event
	Next   Position
}

// LeaseQuery asks for up to Max visible events of a tenant, oldest first.
type LeaseQuery struct {
	TenantID      string
	Partitions    int
	Max           int
	Visibility    time.Duration // how long the lease hides the event
	MaxDeliveries int           // an event leased this often already becomes dead instead
	Now           time.Time
	MaxBytes      int // stop leasing once the leased payloads reach this many bytes (0: no end)
}

// Leased is what one lease call did: the events it leased, in inbox order, and the ids of the
// events it moved to the dead letters instead because they had used up their deliveries.
type Leased struct {
	Events []Event
	Buried []string
}

// DeadQuery pages through a tenant's dead events, oldest death first.
type DeadQuery struct {
	TenantID string
	Limit    int
	After    Position
	Now      time.Time
	MaxBytes int // as in InboxQuery
	// IDsOnly answers events that carry only their tenant and id, read from the index alone:
	// what redriving them needs, without reading payloads that would be thrown away. The
	// events may have left the dead letters meanwhile; MaxBytes does not apply.
	IDsOnly bool
}

// Idempotency is what an Idempotency-Key stores: the key's hash, a fingerprint of the body
// and when the record lapses.
type Idempotency struct {
	KeyHash     string
	Fingerprint string
	ExpiresAt   time.Time
}

// Store persists events. Every state change is a conditional write on the event itself, so
// concurrent callers and stale index entries can never lease, settle or revive an event twice.
type Store interface {
	// Put writes a new event durably.
	Put(ctx context.Context, e Event) error
	// PutOnce writes e unless the idempotency key was used before: then it returns the
	// original event with replayed true, or ErrIdempotencyConflict if the body differed.
	PutOnce(ctx context.Context, e Event, idem Idempotency, now time.Time) (original Event, replayed bool, err error)
	// PutMany writes events without idempotency keys; the result holds one error per event.
	PutMany(ctx context.Context, es []Event) []error
	// Get reads one of a tenant's events; ErrNotFound when absent, expired or another tenant's.
	Get(ctx context.Context, tenantID, eventID string, now time.Time) (Event, error)
	// Inbox lists undelivered visible events, re-read from the base table. It leases nothing.
	Inbox(ctx context.Context, q InboxQuery) (InboxPage, error)
	// Visible reports whether the tenant's inbox index shows any visible event: a cheap check
	// for waiting long polls, which may be stale.
	Visible(ctx context.Context, tenantID string, partitions int, now time.Time) (bool, error)
	// Lease leases up to q.Max visible events, each under a fresh lease id, oldest first. Once it
	// holds an event, a failed write ends it early with what it holds rather than an error.
	Lease(ctx context.Context, q LeaseQuery) (Leased, error)
	// Extend moves a held lease's expiry to until; ErrLeaseLost if leaseID no longer holds it.
	Extend(ctx context.Context, tenantID, eventID, leaseID string, until, now time.Time) (Event, error)
	// Nack makes an undelivered event visible at visibleAt and drops its lease. A non-empty
	// leaseID must still hold the event.
	Nack(ctx context.Context, tenantID, eventID, leaseID string, visibleAt time.Time, now time.Time) error
	// Ack marks an event delivered; already is true when it was acknowledged before. A
	// non-empty leaseID must hold the event, or be the lease it was acknowledged under. The
	// event returned carries at least its id, type and received_at, never its payload.
	Ack(ctx context.Context, tenantID, eventID, leaseID string, now, expiresAt time.Time) (e Event, already bool, err error)
	// Release hands back a lease whose events never reached the consumer: the event is visible
	// at once and the delivery the lease counted is given back. ErrLeaseLost if leaseID no
	// longer holds it.
	Release(ctx context.Context, tenantID, eventID, leaseID string, now time.Time) error
	// Dead lists dead events.
	Dead(ctx context.Context, q DeadQuery) (InboxPage, error)
	// Redrive puts a dead event back in the inbox with a fresh delivery count.
	Redrive(ctx context.Context, tenantID, eventID string, now time.Time) error
}
