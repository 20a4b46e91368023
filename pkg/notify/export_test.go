package notify

import (
	"context"
	"time"
)

// SetResolver replaces the DNS lookup of host names in the peer list.
func (s *Sender) SetResolver(f func(ctx context.Context, host string) ([]string, error)) {
	s.resolve = f
}

// SetMaxPending lowers the notices one peer may hold unsent.
func (s *Sender) SetMaxPending(n int) { s.maxPending = n }

// SetRest sets how long a peer's loop first rests after a failed request.
func (s *Sender) SetRest(d time.Duration) { s.restMin = d }

// Resting reports whether the loop of the peer at addr (ip:port) is waiting out a failure.
func (s *Sender) Resting(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peers[addr]
	return p != nil && p.resting.Load()
}
