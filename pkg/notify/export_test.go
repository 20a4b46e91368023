package notify

import "context"

// SetResolver replaces the DNS lookup of host names in the peer list.
func (s *Sender) SetResolver(f func(ctx context.Context, host string) ([]string, error)) {
	s.resolve = f
}

// SetMaxPending lowers the notices one peer may hold unsent.
func (s *Sender) SetMaxPending(n int) { s.maxPending = n }
