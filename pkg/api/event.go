package api

import (
	"encoding/json"
	"strconv"

	"github.com/trigger-api/trigger-api/pkg/events"
)

// AppendEvent writes e as the API shows it, the JSON form of Event. The payload is the producer's bytes exactly as
// received (encoding/json would compact and re-escape them, and consumers that verify a digest
// of the payload need the original); it was validated as JSON on the way in. trace_context lets
// a consumer continue the event's trace. timestamp repeats
// received_at under the seed's name. withLease adds the lease, for answers to a pull only.
func AppendEvent(b []byte, e events.Event, withLease bool) []byte {
	b = append(b, `{"event_id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"event_type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"payload":`...)
	b = append(b, e.Payload...)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, e.ReceivedAt.UnixMilli(), 10)
	b = append(b, `,"received_at":`...)
	b = strconv.AppendInt(b, e.ReceivedAt.UnixMilli(), 10)
	b = append(b, `,"status":`...)
	b = appendString(b, string(e.Status))
	b = append(b, `,"delivery_count":`...)
	b = strconv.AppendInt(b, int64(e.DeliveryCount), 10)
	if !e.DeliveredAt.IsZero() {
		b = append(b, `,"delivered_at":`...)
		b = strconv.AppendInt(b, e.DeliveredAt.UnixMilli(), 10)
	}
	if !e.DeadAt.IsZero() {
		b = append(b, `,"dead_at":`...)
		b = strconv.AppendInt(b, e.DeadAt.UnixMilli(), 10)
	}
	if e.Traceparent != "" {
		b = append(b, `,"trace_context":{"traceparent":`...)
		b = appendString(b, e.Traceparent)
		b = append(b, '}')
	}
	if withLease {
		b = append(b, `,"lease_id":`...)
		b = appendString(b, e.LeaseID)
		b = append(b, `,"lease_expires_at":`...)
		b = strconv.AppendInt(b, e.VisibleAt.UnixMilli(), 10)
	}
	return append(b, '}')
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
