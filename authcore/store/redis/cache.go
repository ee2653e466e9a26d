package redis

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/authgate/authgate/authcore/internal/arena"
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

// maxCachedRecord: a session record longer than this is returned to its
// reader but not held (sessions are a few hundred bytes; the bound keeps
// the arena's 32-bit offsets far from overflowing).
const maxCachedRecord = 64 << 10

// maxArena bounds one generation's bytes; a fill that would pass it
// starts a new generation.
const maxArena = 1 << 30

// cacheSeed keys the hashes the cache and the slide log file entries
// under.
var cacheSeed = maphash.MakeSeed()

// sessionCache holds the sessions this node read through its tracking
// connections. An entry is only ever served while its connection holds
// proof that every invalidation issued up to RevocationWindow ago has been
// applied (Store.TouchSession checks it); the cache itself only keeps
// entries and turns away fills that a later write of this node made stale.
//
// Its generations are arena.Gen: no pointer per entry for the garbage
// collector to follow (a gateway holding 100 000 sessions as strings and
// slices gave every collection 300 000 objects to mark), and a record
// handed out stays valid however the cache moves on.
//
// Two generations bound it without a sweeper: fills go into the current
// one, and when it holds max/2 sessions (or its arena is mostly records
// dropped since) it becomes the previous one and the previous one is let
// go. A session found in the previous generation moves into the current
// one, so the sessions in use stay and the rest age out.
type sessionCache struct {
	mu        sync.RWMutex
	cur, prev arena.Gen[entryMeta]
	genMax    int
	// tombs marks sessions this node wrote (created, saved, deleted), by
	// key hash, with the time of the write: a read sent before it and
	// answered after it may carry the old value, and must not be cached.
	tombs   map[uint64]int64
	pruneAt int
}

// entryMeta is what the cache knows of a record besides its bytes: it was
// read through the stream whose id is sid, in the stream's connection
// generation gen; slidAt (mono) and slidMS: the read came right after
// this node's PEXPIRE of the key to slidMS, sent at slidAt (slidMS 0
// otherwise).
type entryMeta struct {
	sid            uint32
	gen            uint64
	slidAt, slidMS int64
}

// cacheEntry is a held session: its record in wire form (a slice of a
// generation's bytes, never written to again, decoded by each request it
// serves) and its meta.
type cacheEntry struct {
	data []byte
	entryMeta
}

func newSessionCache(entries int) *sessionCache {
	return &sessionCache{genMax: max(entries/2, 1), tombs: map[uint64]int64{}, pruneAt: 1024}
}

func cacheHash(key string) uint64 { return maphash.String(cacheSeed, key) }

// lookup finds key (of hash h) in g.
func lookup(g *arena.Gen[entryMeta], h uint64, key string) (cacheEntry, bool) {
	data, m, ok := g.Lookup(h, key)
	return cacheEntry{data: data, entryMeta: m}, ok
}

func (c *sessionCache) get(key string) (cacheEntry, bool) {
	h := cacheHash(key)
	c.mu.RLock()
	e, ok := lookup(&c.cur, h, key)
	old := false
	if !ok {
		e, ok = lookup(&c.prev, h, key)
		old = ok
	}
	c.mu.RUnlock()
	if old {
		c.promote(h, key)
	}
	return e, ok
}

// promote moves key from the previous generation into the current one,
// if it is still there (an invalidation may have dropped it meanwhile,
// and then it stays dropped).
func (c *sessionCache) promote(h uint64, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur.Has(h) {
		return
	}
	if e, ok := lookup(&c.prev, h, key); ok {
		c.prev.Remove(h)
		c.place(h, key, e.data, e.entryMeta)
	}
}

// place files an entry in the current generation, starting a new one
// first when it is full or mostly dropped records. Called with mu held.
func (c *sessionCache) place(h uint64, key string, data []byte, m entryMeta) {
	size := len(key) + len(data)
	g := &c.cur
	if (!g.Has(h) && g.Len() >= c.genMax) || g.Size()+size > maxArena ||
		(g.Size() >= 1<<20 && g.Size() > 2*g.Live()) {
		c.prev = c.cur
		c.cur = arena.New[entryMeta](c.prev.Len(), max(c.prev.Live(), 4096))
	}
	arena.Add(&c.cur, h, key, data, m)
	c.prev.Remove(h)
}

// fill caches data for key, read by a command sent at sentAt, unless this
// node wrote key since then or the read is too old to be worth keeping.
// data is copied; the caller may keep it.
func (c *sessionCache) fill(key string, data []byte, m entryMeta, sentAt, now int64) {
	if now-sentAt > int64(fillMaxAge) || len(data) > maxCachedRecord || len(key) > maxCachedRecord {
		return
	}
	h := cacheHash(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.tombs[h]; ok {
		if at >= sentAt {
			return
		}
		delete(c.tombs, h)
	}
	c.place(h, key, data, m)
}

// drop applies an invalidation from Redis. (Were another key to share
// key's hash, its entry goes too: a read from Redis, nothing more.)
func (c *sessionCache) drop(key string) {
	h := cacheHash(key)
	c.mu.Lock()
	c.cur.Remove(h)
	c.prev.Remove(h)
	c.mu.Unlock()
}

// dropAll applies a flush (an invalidation with no key list).
func (c *sessionCache) dropAll() {
	c.mu.Lock()
	c.cur, c.prev = arena.Gen[entryMeta]{}, arena.Gen[entryMeta]{}
	c.mu.Unlock()
}

// forget is called on this node's own write of key at now: the next read
// here goes to Redis, and no read sent before the write is cached.
func (c *sessionCache) forget(key string, now int64) {
	h := cacheHash(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur.Remove(h)
	c.prev.Remove(h)
	c.tombs[h] = now
	if len(c.tombs) >= c.pruneAt {
		for k, at := range c.tombs {
			if now-at > int64(tombLife) {
				delete(c.tombs, k)
			}
		}
		c.pruneAt = max(1024, 2*len(c.tombs))
	}
}

// size is how many sessions the cache holds.
func (c *sessionCache) size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cur.Len() + c.prev.Len()
}
