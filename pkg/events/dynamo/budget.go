package dynamo

import (
	"context"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/events"
)

// firstChunk is the most events a budgeted read fetches before it knows their sizes: enough
// that events of ordinary size take one more round. Fewer when the budget is smaller than that
// many events at the size limit: a pull learns an event's size only by leasing it, and what it
// leased goes into the answer.
const firstChunk = 8

// byteBudget ends a read once the payloads it holds reach max bytes (0: no end). It sizes each
// next chunk by the payloads seen so far, so small events are fetched in few rounds and large
// ones stop near the budget.
type byteBudget struct {
	max, used, seen int
}

// add counts an event whose payload is n bytes.
func (b *byteBudget) add(n int) {
	b.used += n
	b.seen++
}

func (b *byteBudget) spent() bool { return b.max > 0 && b.used >= b.max }

// chunk is how many of the wanted remaining events to fetch next.
func (b *byteBudget) chunk(wanted int) int {
	if b.max == 0 || wanted <= 0 {
		return wanted
	}
	if b.seen == 0 {
		return min(wanted, max(1, min(firstChunk, b.max/events.MaxEventBytes)))
	}
	avg := max(b.used/b.seen, 1)
	return max(1, min(wanted, (b.max-b.used+avg-1)/avg))
}

// fetchPage reads positions' events, keeping those keep accepts, in order, until their
// payloads reach maxBytes (0: no end). The states come first, in one consistent read: they are
// small and say how big each payload is, so only payloads within the budget are read. next is
// the last position kept when the budget ended the page early (zero when every position was
// read), for the page's cursor.
func (s *Store) fetchPage(ctx context.Context, tenantID string, positions []events.Position, maxBytes int,
	keep func(ddb.Item) bool) (evs []events.Event, next events.Position, err error) {
	keys := make([]ddb.Item, len(positions))
	for i, p := range positions {
		keys[i] = key(tenantID, p.EventID)
	}
	found, err := s.batchGet(ctx, keys, true)
	if err != nil {
		return nil, events.Position{}, err
	}
	b := byteBudget{max: maxBytes}
	var states []ddb.Item
	for i, pos := range positions {
		if b.spent() {
			next = positions[i-1]
			break
		}
		it, ok := found[pos.EventID]
		if !ok || !keep(it) {
			continue
		}
		e := fromItem(it)
		evs = append(evs, e)
		states = append(states, it)
		b.add(int(ddb.GetN(it, payloadBytesAttr)))
	}
	evs, err = s.withPayloads(ctx, evs, states)
	if err != nil {
		return nil, events.Position{}, err
	}
	return evs, next, nil
}
