package redis

// CachedSessions reports how many sessions s holds in memory.
func CachedSessions(s *Store) int { return s.tr.cache.len() }
