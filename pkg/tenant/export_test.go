package tenant

import "github.com/trigger-api/trigger-api/pkg/apikey"

// FlightWaiters is how many requests wait on the store read of raw in flight; 0 when none is.
func (a *Authenticator) FlightWaiters(raw string) int {
	key, err := apikey.Parse(raw)
	if err != nil {
		return 0
	}
	s := a.cache.shard(key.Hash())
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.flights[key.Hash()]; ok {
		return f.waiters
	}
	return 0
}

// AddressReads is how many reads of unknown keys client holds or waits for.
func (a *Authenticator) AddressReads(client string) int { return a.failures.reads.Users(client) }

// ReadsPerAddress is how many reads of unknown keys one address may have in flight.
const ReadsPerAddress = readsPerAddress
