package redis

import (
	"hash/maphash"
	"sync"
	"time"
)

// maxSlideEvery caps the slide granularity: with the client-side cache a
// node slides a session's idle window at most this often (and at least
// every slideEvery), whatever the window.
const maxSlideEvery = 5 * time.Second

// slideEvery is how long a node may serve a session from its cache before
// it slides the session's TTL again: an eighth of the window, at most
// maxSlideEvery. A window under 8ns is slid every time.
func slideEvery(ttl time.Duration) time.Duration {
	return min(ttl/8, maxSlideEvery)
}

// slideLogGen is the length of a generation of the slide log: a slide is
// remembered for one to two of them. Long enough that a session used again
// after a few minutes is still known to have a long TTL in Redis (and is
// served from the cache while its slide goes out in the background), far
// below any idle window where that matters.
const slideLogGen = 5 * time.Minute

// slideLog remembers when this node last slid each session it serves, in
// two generations of at least slideLogGen each, unless a generation fills
// up first (max entries, the size of the session cache): an entry is
// dropped within two generations of its slide, so the log holds only the
// sessions used here lately, with no sweeper. Forgetting is always safe:
// a session the log does not know is slid, and waited for, on its next
// use. One mutex: it is held for a map look-up, far below the cost of
// anything else on the request path.
//
// Entries are plain integers filed under a 64-bit hash of the session id
// and checked against a second one, so the garbage collector has nothing
// to follow in them; two ids would have to share 128 bits of hash to pass
// for each other, and the worst that would do is let one session's TTL in
// Redis run a slide interval further down than this node thinks.
type slideLog struct {
	mu        sync.Mutex
	genStart  int64 // mono
	cur, prev map[uint64]slide
	max       int
}

type slide struct {
	check   uint64 // the id's second hash
	at, ttl int64  // mono, nanoseconds
}

// slideSeed keys the second hash of the slide log's entries.
var slideSeed = maphash.MakeSeed()

func newSlideLog(max int) *slideLog {
	return &slideLog{cur: map[uint64]slide{}, prev: map[uint64]slide{}, max: max}
}

// rotate starts a new generation when the current one is slideLogGen old
// or full: the current becomes the previous and the previous is dropped
// (all of it after a long pause). Called with mu held.
func (l *slideLog) rotate(now int64) {
	age := time.Duration(now - l.genStart)
	switch {
	case age < slideLogGen && len(l.cur) < l.max:
		return
	case age < 2*slideLogGen:
		l.prev, l.cur = l.cur, l.prev
		clear(l.cur)
	default:
		clear(l.cur)
		clear(l.prev)
	}
	l.genStart = now
}

// slideState is what a session's idle window needs when a request uses it.
type slideState uint8

const (
	// slideNotDue: this node slid it less than slideEvery ago.
	slideNotDue slideState = iota
	// slideDue: slid by this node between slideEvery and half the window
	// ago, so its TTL in Redis is still more than half the window: a held
	// copy may be served while the slide goes out without being waited for.
	slideDue
	// slideNow: not slid here lately enough to know its TTL: the read
	// slides it and waits.
	slideNow
)

// state reports what the session, used at now with idle window ttl, needs.
func (l *slideLog) state(id string, ttl time.Duration, now int64) slideState {
	every := slideEvery(ttl)
	if every <= 0 {
		return slideNow
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	age, ok := l.age(id, ttl, now)
	switch {
	case !ok:
		return slideNow
	case age < every:
		return slideNotDue
	case age < ttl/2:
		return slideDue
	}
	return slideNow
}

// claim marks a slideDue session as slid at now and reports whether this
// call is the one to send the slide: of many requests that find the same
// session due at once, one slides it. Called after state said slideDue.
func (l *slideLog) claim(id string, ttl time.Duration, now int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if age, ok := l.age(id, ttl, now); ok && age < slideEvery(ttl) {
		return false
	}
	l.cur[cacheHash(id)] = slide{check: maphash.String(slideSeed, id), at: now, ttl: int64(ttl)}
	return true
}

// age is how long ago this node slid the session to ttl, if it remembers.
// Called with mu held.
func (l *slideLog) age(id string, ttl time.Duration, now int64) (time.Duration, bool) {
	l.rotate(now)
	h := cacheHash(id)
	e, ok := l.cur[h]
	if !ok {
		e, ok = l.prev[h]
	}
	if !ok || e.ttl != int64(ttl) || e.check != maphash.String(slideSeed, id) {
		return 0, false
	}
	return time.Duration(now - e.at), true
}

// mark records that the session was slid to ttl at now.
func (l *slideLog) mark(id string, ttl time.Duration, now int64) {
	if slideEvery(ttl) <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rotate(now)
	l.cur[cacheHash(id)] = slide{check: maphash.String(slideSeed, id), at: now, ttl: int64(ttl)}
}
