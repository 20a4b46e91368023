package dynamo

// Claim holds an index entry as a concurrent pull of this process would while leasing it.
func (s *Store) Claim(tenantID, sortKey string) bool { return s.claims.take(tenantID, sortKey) }
