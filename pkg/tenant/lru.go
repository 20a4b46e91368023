package tenant

import "container/list"

// lru is a map bounded to max entries that forgets the least recently used one first. Every
// operation is O(1), so a full cache costs no more per request than an empty one. It does no
// locking of its own: its owner's lock covers it.
type lru[V any] struct {
	max   int
	order *list.List // of *lruItem[V]; front: most recently used
	items map[string]*list.Element
}

type lruItem[V any] struct {
	key   string
	value V
}

func newLRU[V any](size int) *lru[V] {
	return &lru[V]{max: max(size, 1), order: list.New(), items: map[string]*list.Element{}}
}

// get returns key's value and marks it used.
func (l *lru[V]) get(key string) (V, bool) {
	e, ok := l.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	l.order.MoveToFront(e)
	return e.Value.(*lruItem[V]).value, true
}

// put sets key's value, forgetting the least recently used entry if there is no room.
func (l *lru[V]) put(key string, v V) {
	if e, ok := l.items[key]; ok {
		e.Value.(*lruItem[V]).value = v
		l.order.MoveToFront(e)
		return
	}
	if l.order.Len() >= l.max {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.items, oldest.Value.(*lruItem[V]).key)
	}
	l.items[key] = l.order.PushFront(&lruItem[V]{key: key, value: v})
}

func (l *lru[V]) remove(key string) {
	if e, ok := l.items[key]; ok {
		l.order.Remove(e)
		delete(l.items, key)
	}
}

func (l *lru[V]) len() int { return l.order.Len() }
