package redis

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore/internal/arena"
)

func cacheKey(i int) string { return fmt.Sprintf("ag:session:%032d", i) }

func cacheRecord(i int) []byte {
	return []byte(fmt.Sprintf("2|cred-%d|ROOT|CONSUMER|id-%d|1|2|3|0||false", i, i))
}

func TestCacheKeepsWhatItWasGiven(t *testing.T) {
	c := newSessionCache(100)
	m := entryMeta{sid: 3, gen: 7, slidAt: 11, slidMS: 60000}
	data := cacheRecord(1)
	c.fill(cacheKey(1), data, m, 100, 200)
	data[0] = 'X' // the caller's slice is its own again
	e, ok := c.get(cacheKey(1))
	if !ok || !bytes.Equal(e.data, cacheRecord(1)) || e.entryMeta != m {
		t.Fatalf("get = %q %+v %v, want %q %+v", e.data, e.entryMeta, ok, cacheRecord(1), m)
	}
	if _, ok := c.get(cacheKey(2)); ok {
		t.Fatal("a key never filled is held")
	}
	// A record handed out stays as it was whatever the cache does next.
	for i := 2; i < 1000; i++ {
		c.fill(cacheKey(i), cacheRecord(i), m, 100, 200)
		c.fill(cacheKey(1), cacheRecord(i), m, 100, 200)
	}
	if !bytes.Equal(e.data, cacheRecord(1)) {
		t.Fatalf("a record handed out changed to %q", e.data)
	}
	if e2, ok := c.get(cacheKey(1)); !ok || !bytes.Equal(e2.data, cacheRecord(999)) {
		t.Fatalf("after refills: %q %v, want the last one", e2.data, ok)
	}
}

func TestCacheTurnsAwayFillsOlderThanItsOwnWrites(t *testing.T) {
	c := newSessionCache(100)
	now := mono(time.Now())
	c.fill(cacheKey(1), cacheRecord(1), entryMeta{}, now, now)
	c.forget(cacheKey(1), now+10)
	if _, ok := c.get(cacheKey(1)); ok {
		t.Fatal("held after this node's own write")
	}
	c.fill(cacheKey(1), cacheRecord(1), entryMeta{}, now+5, now+20) // sent before the write
	if _, ok := c.get(cacheKey(1)); ok {
		t.Fatal("a read sent before this node's write was cached")
	}
	c.fill(cacheKey(1), cacheRecord(2), entryMeta{}, now+15, now+20) // sent after it
	if e, ok := c.get(cacheKey(1)); !ok || !bytes.Equal(e.data, cacheRecord(2)) {
		t.Fatalf("a read sent after the write: %q %v", e.data, ok)
	}
	c.fill(cacheKey(3), cacheRecord(3), entryMeta{}, now, now+int64(fillMaxAge)+1)
	if _, ok := c.get(cacheKey(3)); ok {
		t.Fatal("a read answered after fillMaxAge was cached")
	}
	c.fill(cacheKey(4), make([]byte, maxCachedRecord+1), entryMeta{}, now, now)
	if _, ok := c.get(cacheKey(4)); ok {
		t.Fatal("a record over maxCachedRecord was cached")
	}
}

// Invalidations reach entries in either generation, and an entry dropped
// while a reader moves it into the current generation stays dropped.
func TestCacheDropsInBothGenerations(t *testing.T) {
	c := newSessionCache(8) // 4 per generation
	for i := range 4 {
		c.fill(cacheKey(i), cacheRecord(i), entryMeta{}, 0, 0)
	}
	c.fill(cacheKey(4), cacheRecord(4), entryMeta{}, 0, 0) // 0..3 are the previous generation now
	if c.prev.Len() != 4 || c.cur.Len() != 1 {
		t.Fatalf("generations hold %d and %d, want 4 and 1", c.prev.Len(), c.cur.Len())
	}
	c.drop(cacheKey(0))
	c.drop(cacheKey(4))
	for _, i := range []int{0, 4} {
		if _, ok := c.get(cacheKey(i)); ok {
			t.Errorf("key %d held after its invalidation", i)
		}
	}
	c.drop(cacheKey(1))
	c.promote(cacheHash(cacheKey(1)), cacheKey(1)) // a reader that found it just before
	if _, ok := c.get(cacheKey(1)); ok {
		t.Error("a dropped entry came back by being moved to the current generation")
	}
	if _, ok := c.get(cacheKey(2)); !ok {
		t.Fatal("an entry of the previous generation is not served")
	}
	if !c.cur.Has(cacheHash(cacheKey(2))) {
		t.Error("an entry served from the previous generation was not moved to the current one")
	}
	c.dropAll()
	if n := c.size(); n != 0 {
		t.Errorf("%d entries held after a flush", n)
	}
}

// Full, the cache lets the sessions not used lately go and keeps the ones
// in use; refilling one session over and over does not grow it.
func TestCacheStaysBounded(t *testing.T) {
	const max = 1000
	c := newSessionCache(max)
	hot := cacheKey(-1)
	c.fill(hot, cacheRecord(-1), entryMeta{}, 0, 0)
	for i := range 20 * max {
		c.fill(cacheKey(i), cacheRecord(i), entryMeta{}, 0, 0)
		if i%100 == 0 {
			if _, ok := c.get(hot); !ok {
				t.Fatalf("the session in use was let go after %d fills", i)
			}
		}
		if n := c.size(); n > max {
			t.Fatalf("holds %d sessions, bound %d", n, max)
		}
	}
	for range 100_000 {
		c.fill(hot, cacheRecord(-1), entryMeta{}, 0, 0)
	}
	if n := c.cur.Size() + c.prev.Size(); n > 4<<20 {
		t.Errorf("arenas hold %d bytes after refilling one session", n)
	}
}

// Two keys of one hash can only miss, never answer for each other.
func TestCacheComparesTheKey(t *testing.T) {
	var g arena.Gen[entryMeta]
	arena.Add(&g, cacheHash("b"), "a", []byte("record of a"), entryMeta{})
	if e, ok := lookup(&g, cacheHash("b"), "b"); ok {
		t.Fatalf("b answered with %q", e.data)
	}
}

// The point of the layout: 100 000 held sessions are a handful of heap
// objects for the garbage collector, not 200 000. Each fill gets a key
// and a record of its own, as the reads of a gateway do.
func TestCacheHoldsFewHeapObjects(t *testing.T) {
	const n = 100_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newSessionCache(2 * n)
	l := newSlideLog(2 * n)
	for i := range n {
		c.fill(cacheKey(i), cacheRecord(i), entryMeta{}, 0, 0)
		l.mark(fmt.Sprint(i), time.Hour, 1)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if c.size() != n {
		t.Fatalf("holds %d, want %d", c.size(), n)
	}
	objs := int64(after.HeapObjects) - int64(before.HeapObjects)
	if objs > 5000 {
		t.Errorf("%d sessions in the cache and slide log take %d heap objects, want a few thousand at most", n, objs)
	}
	t.Logf("%d sessions in the cache and slide log: %d heap objects", n, objs)
	runtime.KeepAlive(c)
	runtime.KeepAlive(l)
}

func TestSlideLog(t *testing.T) {
	const ttl = 80 * time.Second // slid every 10s
	l := newSlideLog(100)
	at := int64(time.Hour)
	if s := l.state("a", ttl, at); s != slideNow {
		t.Fatalf("unknown session: %v, want slideNow", s)
	}
	l.mark("a", ttl, at)
	for _, c := range []struct {
		after time.Duration
		want  slideState
	}{{time.Second, slideNotDue}, {11 * time.Second, slideDue}, {41 * time.Second, slideNow}} {
		if s := l.state("a", ttl, at+int64(c.after)); s != c.want {
			t.Errorf("%v after its slide: %v, want %v", c.after, s, c.want)
		}
	}
	if s := l.state("a", 2*ttl, at+int64(time.Second)); s != slideNow {
		t.Errorf("slid to another window: %v, want slideNow", s)
	}
	if s := l.state("b", ttl, at+int64(time.Second)); s != slideNow {
		t.Errorf("another session: %v, want slideNow", s)
	}
	due := at + int64(11*time.Second)
	if !l.claim("a", ttl, due) || l.claim("a", ttl, due) {
		t.Error("of two claims of a due slide, exactly the first should send it")
	}
	if s := l.state("a", ttl, at+int64(2*slideLogGen)+int64(time.Minute)); s != slideNow {
		t.Errorf("after two generations: %v, want slideNow (forgotten)", s)
	}
}
