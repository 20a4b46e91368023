package dynamo

import (
	"context"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/events"
)

// firstChunk is how many events a budgeted read fetches before it knows their sizes: enough
// that events of ordinary size take one more round, few enough that events at the size limit
// cannot take much more than a budget of 2 MiB.
const firstChunk = 8

// byteBudget ends a read once the payloads it holds reach max bytes (0: no end). It sizes each
// next chunk by the payloads seen so far, so small events are fetched in few rounds and large
// ones stop near the budget.
type byteBudget struct {
	max, used, seen int
}

func (b *byteBudget) add(e events.Event) {
	b.used += len(e.Payload)
	b.seen++
}

func (b *byteBudget) spent() bool { return b.max > 0 && b.used >= b.max }

// chunk is how many of the wanted remaining events to fetch next.
func (b *byteBudget) chunk(wanted int) int {
	if b.max == 0 || wanted <= 0 {
		return wanted
	}
	if b.seen == 0 {
		return min(wanted, firstChunk)
	}
	avg := max(b.used/b.seen, 1)
	return max(1, min(wanted, (b.max-b.used+avg-1)/avg))
}

// fetchPage reads positions' events in chunks within maxBytes, keeping those keep accepts, in
// order. next is the last position read when the budget ended the page early (zero when every
// position was read), for the page's cursor.
func (s *Store) fetchPage(ctx context.Context, tenantID string, positions []events.Position, maxBytes int,
	keep func(ddb.Item) bool) (evs []events.Event, next events.Position, err error) {
	b := byteBudget{max: maxBytes}
	for i := 0; i < len(positions); {
		chunk := positions[i : i+b.chunk(len(positions)-i)]
		found, err := s.batchGet(ctx, tenantID, chunk)
		if err != nil {
			return nil, events.Position{}, err
		}
		for _, pos := range chunk {
			if it, ok := found[pos.EventID]; ok && keep(it) {
				e := fromItem(it)
				evs = append(evs, e)
				b.add(e)
			}
		}
		i += len(chunk)
		if b.spent() && i < len(positions) {
			return evs, chunk[len(chunk)-1], nil
		}
	}
	return evs, events.Position{}, nil
}
