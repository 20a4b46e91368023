package queue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

const (
	// idempotencyWindow is how long an Idempotency-Key is remembered.
	idempotencyWindow = 24 * time.Hour
	// batchParallelism bounds the idempotent writes of one batch.
	batchParallelism = 16
)

// Publisher is the ingest side: it validates what producers send and stores it durably.
type Publisher struct {
	store  events.Store
	now    func() time.Time
	notify Notifier
	obs    publishObs
}

// NewPublisher returns the publishing use cases over store.
func NewPublisher(store events.Store, o Options) *Publisher {
	o = o.complete()
	return &Publisher{store: store, now: o.Now, notify: o.Notifier, obs: newPublishObs(o)}
}

// Published is a stored event; Replayed says an earlier request with the same idempotency key
// stored it, and Event then names that original (its id and received_at).
type Published struct {
	Event    events.Event
	Replayed bool
}

// Publish validates body as one event and stores it. With an idempotency key, the same key and
// body within the window replay the original; the same key with another body is
// ErrIdempotencyConflict.
func (q *Publisher) Publish(ctx context.Context, p tenant.Principal, body []byte, idempotencyKey *string) (Published, error) {
	if idempotencyKey != nil && !events.ValidIdempotencyKey(*idempotencyKey) {
		return Published{}, errBadIdempotencyKey
	}
	eventType, err := events.Validate(body)
	if err != nil {
		return Published{}, err
	}
	now := q.now()
	e := events.New(p.TenantID, eventType, body, p.Partitions, now)
	e.KeepFor(retention(p))
	ctx, cancel := detached(ctx)
	defer cancel()
	ctx, span := q.obs.publish(ctx, &e)
	defer span.End()
	var out Published
	if idempotencyKey != nil {
		out.Event, out.Replayed, err = q.store.PutOnce(ctx, e, idempotency(*idempotencyKey, body, now), now)
	} else {
		out.Event, err = e, q.store.Put(ctx, e)
	}
	q.obs.published(ctx, span, out.Event, out.Replayed, err)
	if err == nil && !out.Replayed {
		q.notify.Notify(Notice{TenantID: e.TenantID, Partition: e.Partition, Count: 1, VisibleAt: e.VisibleAt})
	}
	return out, err
}

// Get reads one of the tenant's events.
func (q *Publisher) Get(ctx context.Context, p tenant.Principal, eventID string) (events.Event, error) {
	return get(ctx, q.store, p, eventID, q.now())
}

// BatchItem is one input's outcome in a batch: stored, or why not.
type BatchItem struct {
	Published
	Err error
}

// PublishBatch stores up to MaxBatchEvents events, each judged on its own: a bad one gets its
// error and never blocks the others. An item's optional top-level "idempotency_key" string
// makes that item idempotent; the item is stored exactly as sent, key included.
func (q *Publisher) PublishBatch(ctx context.Context, p tenant.Principal, items []json.RawMessage) []BatchItem {
	now := q.now()
	out := make([]BatchItem, len(items))
	b := batchWrites{spans: make([]trace.Span, len(items))}
	for i, raw := range items {
		eventType, key, err := validateItem(raw)
		if err != nil {
			out[i].Err = err
			continue
		}
		// The caller's buffer may be reused; the stored payload gets its own copy.
		e := events.New(p.TenantID, eventType, bytes.Clone(raw), p.Partitions, now)
		e.KeepFor(retention(p))
		// Each event its own publish span and so its own context, ended once its write is known.
		_, b.spans[i] = q.obs.publish(ctx, &e)
		if key == "" {
			b.plain, b.plainAt = append(b.plain, e), append(b.plainAt, i)
		} else {
			b.keyed = append(b.keyed, keyedWrite{at: i, e: e, idem: idempotency(key, raw, now)})
		}
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	q.write(ctx, &b, out, now)
	var stored []events.Event
	for _, it := range out {
		if it.Err == nil && !it.Replayed {
			stored = append(stored, it.Event)
		}
	}
	q.notify.Notify(notices(p.TenantID, stored, now.Truncate(time.Millisecond))...)
	return out
}

type keyedWrite struct {
	at   int
	e    events.Event
	idem events.Idempotency
}

// batchWrites sorts a batch's valid items into plain puts and the idempotent writes, which each
// need a transaction of their own.
type batchWrites struct {
	plain   []events.Event
	plainAt []int
	keyed   []keyedWrite
	spans   []trace.Span
}

func (q *Publisher) write(ctx context.Context, b *batchWrites, out []BatchItem, now time.Time) {
	var wg sync.WaitGroup
	if len(b.plain) > 0 {
		wg.Go(func() {
			for j, err := range q.store.PutMany(ctx, b.plain) {
				i := b.plainAt[j]
				out[i] = BatchItem{Published: Published{Event: b.plain[j]}, Err: err}
				q.obs.published(ctx, b.spans[i], b.plain[j], false, err)
			}
		})
	}
	sem := make(chan struct{}, batchParallelism)
	for _, k := range b.keyed {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			wctx := trace.ContextWithSpan(ctx, b.spans[k.at])
			e, replayed, err := q.store.PutOnce(wctx, k.e, k.idem, now)
			out[k.at] = BatchItem{Published: Published{Event: e, Replayed: replayed}, Err: err}
			q.obs.published(wctx, b.spans[k.at], e, replayed, err)
		})
	}
	wg.Wait()
	for _, s := range b.spans {
		if s != nil {
			s.End()
		}
	}
}

// idempotency derives the stored record: the key only as a hash, the body as a fingerprint.
func idempotency(key string, body []byte, now time.Time) events.Idempotency {
	k := sha256.Sum256([]byte(key))
	f := sha256.Sum256(body)
	return events.Idempotency{
		KeyHash:     hex.EncodeToString(k[:]),
		Fingerprint: hex.EncodeToString(f[:]),
		ExpiresAt:   now.Add(idempotencyWindow),
	}
}

var errBadIdempotencyKey = &events.ValidationError{Code: "invalid_request",
	Msg: fmt.Sprintf("idempotency_key must be a string of 1 to %d printable ASCII characters", events.MaxIdempotencyKeyBytes)}

// validateItem checks one batch item as Publish checks a body, and reads its idempotency key.
func validateItem(raw json.RawMessage) (eventType, key string, err error) {
	if len(raw) > events.MaxEventBytes {
		return "", "", events.ErrEventTooLarge
	}
	if eventType, err = events.Validate(raw); err != nil {
		return "", "", err
	}
	// A map, as in events.Validate: struct fields would also match "IDEMPOTENCY_KEY".
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return "", "", err
	}
	rawKey, ok := fields["idempotency_key"]
	if !ok {
		return eventType, "", nil
	}
	if err := json.Unmarshal(rawKey, &key); err != nil || !events.ValidIdempotencyKey(key) {
		return "", "", errBadIdempotencyKey
	}
	return eventType, key, nil
}
