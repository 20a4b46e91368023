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
	Partition     int
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

// InboxQuery selects a page of a tenant's undelivered, visible events, oldest first.
type InboxQuery struct {
	TenantID   string
	Partitions int
	Limit      int
	After      Position // zero: from the start
	EventType  string   // empty: every type
	Now        time.Time
}

// InboxPage is one page of the inbox; Next is zero when nothing follows.
type InboxPage struct {
	Events []Event
	Next   Position
}

// Store persists events.
type Store interface {
	// Put writes a new event durably.
	Put(ctx context.Context, e Event) error
	// Get reads one of a tenant's events; ErrNotFound when absent, expired or another tenant's.
	Get(ctx context.Context, tenantID, eventID string, now time.Time) (Event, error)
	// Inbox lists undelivered visible events, re-read from the base table.
	Inbox(ctx context.Context, q InboxQuery) (InboxPage, error)
	// Ack marks an event delivered; already is true when it was acknowledged before.
	Ack(ctx context.Context, tenantID, eventID string, now, expiresAt time.Time) (already bool, err error)
}
