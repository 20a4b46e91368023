package api_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/events"
)

// TestAppendEventKeepsPayloadBytes: the payload goes out byte for byte, and what is written
// decodes strictly into api.Event, the type clients read it with.
func TestAppendEventKeepsPayloadBytes(t *testing.T) {
	payload := "{ \"event_type\" : \"a.b\",\n\"html\":\"<b>&</b>\" , \"u\":\"\\u00e9\"}"
	e := events.New("acme", "a.b", []byte(payload), 1, time.UnixMilli(1732140249123))
	e.DeliveredAt = time.UnixMilli(1732140250000)
	e.Traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, withLease := range []bool{false, true} {
		e.LeaseID = events.NewLeaseID()
		out := api.AppendEvent(nil, e, withLease)
		var got api.Event
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if string(got.Payload) != payload || got.EventID != e.ID || got.EventType != "a.b" || got.Timestamp != 1732140249123 ||
			got.ReceivedAt != got.Timestamp || got.Status != "undelivered" || got.DeliveryCount != 0 || got.DeliveredAt != 1732140250000 ||
			got.Traceparent() != e.Traceparent {
			t.Fatalf("AppendEvent = %s", out)
		}
		if withLease != (got.LeaseID == e.LeaseID) || withLease != (got.LeaseExpiresAt == e.VisibleAt.UnixMilli()) {
			t.Fatalf("withLease %v: %s", withLease, out)
		}
	}
}
