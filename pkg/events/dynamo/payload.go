package dynamo

import (
	"context"
	"maps"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/events"
)

// An event is two items under the tenant's partition key: its state (sort key the event id),
// which leases, nacks and acks update, and its payload (sort key payloadPrefix + id), written
// once before the state and never again. DynamoDB bills a write by the size of the whole item,
// so a lease of a 64 KiB event costs one unit for the state, not 65. The payload expires by
// TTL at a time fixed when it is written, later than the state can: deleting it any other way
// would be billed by its size too.
//
// A payload small enough that the state item stays within one write unit with it, even after
// the attributes a lease or an ack adds, stays inline in the state item instead: a second item
// would cost a unit of its own on every ingest and a read on every delivery.
const payloadPrefix = "payload#"

// writeUnit is the item size one DynamoDB write unit covers.
const writeUnit = 1024

// stateGrowth is what later writes may add to a state item: a lease id, the lease given back
// or nacked, the times of leasing, acknowledgement, death or redrive.
const stateGrowth = 300

// payloadAttr holds the payload, inline or in its own item; payloadBytes on the state item is
// its length, so a listing knows what it is about to read before reading it.
const (
	payloadAttr      = "payload"
	payloadBytesAttr = "payload_bytes"
	// payloadExpiresAttr on the state item is when the payload item expires: no
	// acknowledgement may keep the state longer.
	payloadExpiresAttr = "payload_expires_at"
)

// defaultPayloadKeep is how long a payload outlives ExpiresAt when the publisher did not say:
// the longest retention a tenant may have.
const defaultPayloadKeep = 365 * 24 * time.Hour

func payloadKey(tenantID, eventID string) ddb.Item {
	return ddb.Item{"tenant_id": ddb.S(tenantID), "event_id": ddb.S(payloadPrefix + eventID)}
}

// itemSize is DynamoDB's size of an item as far as these adapters write them: attribute names
// plus values, numbers at most 21 bytes.
func itemSize(it ddb.Item) int {
	n := 0
	for name, v := range it {
		n += len(name)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberB:
			n += len(v.Value)
		case *types.AttributeValueMemberN:
			n += min(len(v.Value)/2+1, 21)
		default:
			n += 64 // sets and the rest: not on event items
		}
	}
	return n
}

// items returns the state item of a new event and, when the payload does not stay inline,
// the payload's own item.
func items(e events.Event) (state, payload ddb.Item) {
	state = toItem(e)
	state[payloadBytesAttr] = ddb.N(int64(len(e.Payload)))
	if len(e.Payload) == 0 { // DynamoDB refuses empty binary values
		return state, nil
	}
	keepUntil := e.PayloadExpiresAt
	if keepUntil.IsZero() {
		keepUntil = e.ExpiresAt.Add(defaultPayloadKeep)
	}
	// Inline or not, the event lives no longer than its payload would: one rule for both.
	state[payloadExpiresAttr] = ddb.N(keepUntil.Unix())
	if itemSize(state)+len(payloadAttr)+len(e.Payload)+stateGrowth <= writeUnit {
		state[payloadAttr] = ddb.B(e.Payload)
		return state, nil
	}
	payload = payloadKey(e.TenantID, e.ID)
	payload[payloadAttr] = ddb.B(e.Payload)
	payload[ddb.EventsTTLAttribute] = ddb.N(keepUntil.Unix())
	return state, payload
}

// separate reports whether a state item's payload lives in an item of its own.
func separate(state ddb.Item) bool {
	_, inline := state[payloadAttr]
	return !inline && ddb.GetN(state, payloadBytesAttr) > 0
}

// withPayloads fills in the payloads of evs that live apart, read from their own items, and
// returns the events whose payload was found. The payload is immutable, so an eventually
// consistent read (half the price) serves unless it is too fresh to be seen yet: those are
// read again consistently. A payload is written before its state and outlives it, so one
// that is still missing can only be an event past its expiry, which is left out.
func (s *Store) withPayloads(ctx context.Context, evs []events.Event, states []ddb.Item) ([]events.Event, error) {
	var keys []ddb.Item
	for i, st := range states {
		if separate(st) {
			keys = append(keys, payloadKey(evs[i].TenantID, evs[i].ID))
		}
	}
	if len(keys) == 0 {
		return evs, nil
	}
	found, err := s.batchGet(ctx, keys, false)
	if err != nil {
		return nil, err
	}
	var missing []ddb.Item
	for _, k := range keys {
		if _, ok := found[ddb.GetS(k, "event_id")]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		again, err := s.batchGet(ctx, missing, true)
		if err != nil {
			return nil, err
		}
		maps.Copy(found, again)
	}
	kept := evs[:0]
	for i, st := range states {
		if separate(st) {
			it, ok := found[payloadPrefix+evs[i].ID]
			if !ok {
				continue
			}
			evs[i].Payload = ddb.GetB(it, payloadAttr)
		}
		kept = append(kept, evs[i])
	}
	return kept, nil
}
