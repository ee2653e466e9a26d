package redis

// NoGrace makes s's session writes return without RevocationGrace, so a
// test sees what the eviction of this node's own cache does on its own.
func NoGrace(s *Store) { s.grace = 0 }
