// Package tenanttest holds what tenant.Store implementations and their users test with: the
// conformance suite every store must pass and an in-memory store that passes it.
package tenanttest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// Memory is an in-memory tenant.Store for unit tests. It passes the same conformance suite as
// the DynamoDB store, so tests written against it hold for the real one.
type Memory struct {
	mu      sync.Mutex
	tenants map[string]tenant.Tenant
	keys    map[string]tenant.APIKey // by hash
}

var _ tenant.Store = (*Memory)(nil)

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{tenants: map[string]tenant.Tenant{}, keys: map[string]tenant.APIKey{}}
}

// Callers own what they pass in and get out; sharing a scopes slice would let one mutate the other.
func cloneKey(k tenant.APIKey) tenant.APIKey {
	k.Scopes = slices.Clone(k.Scopes)
	return k
}

// CreateTenant implements tenant.Store.
func (m *Memory) CreateTenant(_ context.Context, t tenant.Tenant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tenants[t.ID]; ok {
		return fmt.Errorf("create tenant %s: %w", t.ID, tenant.ErrExists)
	}
	m.tenants[t.ID] = t
	return nil
}

// GetTenant implements tenant.Store.
func (m *Memory) GetTenant(_ context.Context, id string) (tenant.Tenant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tenants[id]
	if !ok {
		return tenant.Tenant{}, tenant.ErrNotFound
	}
	return t, nil
}

// ListTenants implements tenant.Store, in id order.
func (m *Memory) ListTenants(_ context.Context, limit int, after string) ([]tenant.Tenant, string, error) {
	if limit < 1 {
		return nil, "", fmt.Errorf("list tenants: limit %d", limit)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.tenants))
	for id := range m.tenants {
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	next := ""
	if len(ids) > limit {
		ids = ids[:limit]
		next = ids[limit-1]
	}
	out := make([]tenant.Tenant, len(ids))
	for i, id := range ids {
		out[i] = m.tenants[id]
	}
	return out, next, nil
}

// UpdateTenant implements tenant.Store.
func (m *Memory) UpdateTenant(_ context.Context, id string, p tenant.Patch, at time.Time) (tenant.Tenant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tenants[id]
	if !ok {
		return tenant.Tenant{}, tenant.ErrNotFound
	}
	t, err := p.Apply(t, at)
	if err != nil {
		return tenant.Tenant{}, err
	}
	m.tenants[id] = t
	return t, nil
}

// CreateKey implements tenant.Store.
func (m *Memory) CreateKey(_ context.Context, k tenant.APIKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[k.Hash]; ok {
		return fmt.Errorf("create key %s: hash already stored", k.ID)
	}
	m.keys[k.Hash] = cloneKey(k)
	return nil
}

// KeyByHash implements tenant.Store.
func (m *Memory) KeyByHash(_ context.Context, hash string) (tenant.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[hash]
	if !ok {
		return tenant.APIKey{}, tenant.ErrKeyNotFound
	}
	return cloneKey(k), nil
}

// KeyAndTenant implements tenant.Store.
func (m *Memory) KeyAndTenant(ctx context.Context, hash, tenantID string) (tenant.APIKey, tenant.Tenant, error) {
	k, err := m.KeyByHash(ctx, hash)
	if err != nil {
		return tenant.APIKey{}, tenant.Tenant{}, err
	}
	t, err := m.GetTenant(ctx, tenantID)
	return k, t, err
}

func (m *Memory) find(tenantID, keyID string) (tenant.APIKey, bool) {
	for _, k := range m.keys {
		if k.TenantID == tenantID && k.ID == keyID {
			return k, true
		}
	}
	return tenant.APIKey{}, false
}

// GetKey implements tenant.Store.
func (m *Memory) GetKey(_ context.Context, tenantID, keyID string) (tenant.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.find(tenantID, keyID)
	if !ok {
		return tenant.APIKey{}, tenant.ErrKeyNotFound
	}
	return cloneKey(k), nil
}

// ListKeys implements tenant.Store, in key id order as the DynamoDB index returns them.
func (m *Memory) ListKeys(_ context.Context, tenantID string) ([]tenant.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []tenant.APIKey
	for _, k := range m.keys {
		if k.TenantID == tenantID {
			out = append(out, cloneKey(k))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// RevokeKey implements tenant.Store.
func (m *Memory) RevokeKey(_ context.Context, tenantID, keyID string, at time.Time) (tenant.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.find(tenantID, keyID)
	if !ok {
		return tenant.APIKey{}, tenant.ErrKeyNotFound
	}
	k.Status = tenant.KeyRevoked
	if k.RevokedAt.IsZero() {
		k.RevokedAt = at
	}
	m.keys[k.Hash] = k
	return cloneKey(k), nil
}

// ExpireKeyBy implements tenant.Store.
func (m *Memory) ExpireKeyBy(_ context.Context, tenantID, keyID string, at time.Time) (tenant.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.find(tenantID, keyID)
	if !ok {
		return tenant.APIKey{}, tenant.ErrKeyNotFound
	}
	if k.ExpiresAt.IsZero() || k.ExpiresAt.After(at) {
		k.ExpiresAt = at
		m.keys[k.Hash] = k
	}
	return cloneKey(k), nil
}

// RecordKeyUse implements tenant.Store.
func (m *Memory) RecordKeyUse(_ context.Context, hash string, at, since time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[hash]
	if !ok || k.LastUsedAt.After(since) {
		return nil
	}
	k.LastUsedAt = at
	m.keys[hash] = k
	return nil
}
