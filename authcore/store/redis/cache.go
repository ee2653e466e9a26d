package redis

import (
	"sync"
	"time"
)

// epoch anchors mono: durations since it come from the monotonic clock,
// so proof windows cannot be bent by a wall-clock step.
var epoch = time.Now()

// mono is t (which must carry a monotonic reading, as time.Now does) in
// nanoseconds since epoch.
func mono(t time.Time) int64 { return int64(t.Sub(epoch)) }

// fillMaxAge: a session read that comes back later than this after it was
// sent is returned to its caller but not cached. Only fills older than a
// tombstone can be stale on this node, and tombstones outlive this.
const fillMaxAge = time.Second

// tombLife is how long a tombstone of this node's own write is kept:
// longer than any fill it must turn away (fillMaxAge).
const tombLife = 2 * time.Second

// sessionCache holds the sessions this node read through its tracking
// connections. An entry is only ever served while its connection holds
// proof that every invalidation issued up to RevocationWindow ago has been
// applied (Store.TouchSession checks it); the cache itself only keeps
// entries and turns away fills that a later write of this node made stale.
type sessionCache struct {
	mu      sync.RWMutex
	entries map[string]cacheEntry
	// tombs marks sessions this node wrote (created, saved, deleted), with
	// the time of the write: a read sent before it and answered after it
	// may carry the old value, and must not be cached.
	tombs   map[string]int64
	pruneAt int
	max     int
}

// cacheEntry is one session record as read through st in st's connection
// generation gen. The record stays in its wire form, a byte slice the
// garbage collector never looks into, and is decoded by each request it
// serves: decoded sessions (a struct of a dozen pointers each) made
// marking a cache of 100 000 sessions cost a busy gateway more than the
// decoding they saved.
type cacheEntry struct {
	data []byte
	st   *stream
	gen  uint64
	// slidAt (mono) and slidMS: the read came right after this node's
	// PEXPIRE of the key to slidMS, sent at slidAt; slidMS is 0 otherwise.
	slidAt, slidMS int64
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{entries: map[string]cacheEntry{}, tombs: map[string]int64{}, pruneAt: 1024, max: max}
}

func (c *sessionCache) get(key string) (cacheEntry, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	return e, ok
}

// fill caches data for key, read by a command sent at sentAt, unless this
// node wrote key since then or the read is too old to be worth keeping.
// When full it drops a sixteenth of the entries, whichever the map yields
// first: a dropped session is read from Redis again, nothing more.
func (c *sessionCache) fill(key string, e cacheEntry, sentAt, now int64) {
	if now-sentAt > int64(fillMaxAge) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.tombs[key]; ok {
		if at >= sentAt {
			return
		}
		delete(c.tombs, key)
	}
	if len(c.entries) >= c.max {
		n := max(c.max/16, 1)
		for k := range c.entries {
			delete(c.entries, k)
			if n--; n == 0 {
				break
			}
		}
	}
	c.entries[key] = e
}

// drop applies an invalidation from Redis.
func (c *sessionCache) drop(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

// dropAll applies a flush (an invalidation with no key list).
func (c *sessionCache) dropAll() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}

// forget is called on this node's own write of key at now: the next read
// here goes to Redis, and no read sent before the write is cached.
func (c *sessionCache) forget(key string, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
	c.tombs[key] = now
	if len(c.tombs) >= c.pruneAt {
		for k, at := range c.tombs {
			if now-at > int64(tombLife) {
				delete(c.tombs, k)
			}
		}
		c.pruneAt = max(1024, 2*len(c.tombs))
	}
}
