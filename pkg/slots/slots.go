// Package slots bounds how many callers of one key (a tenant, a client address) do something
// at once, the rest waiting their turn.
package slots

import (
	"context"
	"sync"
)

// Keyed gives up to n places per key. A key's places exist only while someone holds or waits
// for one, so the map holds only the keys busy right now.
type Keyed struct {
	n  int
	mu sync.Mutex
	m  map[string]*places
}

type places struct {
	sem   chan struct{}
	users int // holding or waiting
}

// NewKeyed returns n places per key.
func NewKeyed(n int) *Keyed { return &Keyed{n: max(n, 1), m: map[string]*places{}} }

// Enter waits for one of key's places until ctx ends; leave gives it back. ok is false, and
// there is nothing to give back, when ctx ended first.
func (k *Keyed) Enter(ctx context.Context, key string) (leave func(), ok bool) {
	k.mu.Lock()
	p := k.m[key]
	if p == nil {
		p = &places{sem: make(chan struct{}, k.n)}
		k.m[key] = p
	}
	p.users++
	k.mu.Unlock()
	if !Acquire(ctx, p.sem) {
		k.forget(key, p)
		return nil, false
	}
	return func() {
		<-p.sem
		k.forget(key, p)
	}, true
}

func (k *Keyed) forget(key string, p *places) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p.users--; p.users == 0 {
		delete(k.m, key)
	}
}

// Busy is how many keys have someone holding or waiting for a place.
func (k *Keyed) Busy() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// Users is how many callers hold or wait for one of key's places.
func (k *Keyed) Users(key string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p := k.m[key]; p != nil {
		return p.users
	}
	return 0
}

// Acquire takes a place in sem, waiting until ctx ends. A free place is taken even if ctx has
// just ended: select picks at random among ready cases, and a caller that waited its whole
// time for one turn must not then be refused another with room free.
func Acquire(ctx context.Context, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
	}
	select {
	case sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}
