package redis

import (
	"sync"
	"time"
)

// maxSlideEvery caps the slide granularity: with the client-side cache a
// node slides a session's idle window at most this often (and at least
// every slideEvery), whatever the window.
const maxSlideEvery = 5 * time.Second

// slideEvery is how long a node may serve a session from its cache before
// it slides the session's TTL again: an eighth of the window, at most
// maxSlideEvery. The TTL in Redis therefore stays above 7/8 of the window
// while the session is used here. A window under 8ms is slid every time.
func slideEvery(ttl time.Duration) time.Duration {
	return min(ttl/8, maxSlideEvery)
}

// slideLog remembers when this node last slid each session it serves, in
// two generations of at least maxSlideEvery each: an entry is dropped
// within two generations of its slide, so the log holds only the sessions
// used here in the last 10 to 20 s, with no sweeper. One mutex: it is held for a
// map look-up, far below the cost of anything else on the request path.
type slideLog struct {
	mu        sync.Mutex
	genStart  time.Time
	cur, prev map[string]slide
}

type slide struct {
	at  time.Time
	ttl time.Duration
}

func newSlideLog() *slideLog {
	return &slideLog{cur: map[string]slide{}, prev: map[string]slide{}}
}

// rotate starts a new generation when the current one is maxSlideEvery
// old: the current becomes the previous and the previous is dropped (all
// of it after a long pause). An entry thus lives at least maxSlideEvery
// past its slide, which is all recent needs. Called with mu held.
func (l *slideLog) rotate(now time.Time) {
	age := now.Sub(l.genStart)
	switch {
	case age < maxSlideEvery:
		return
	case age < 2*maxSlideEvery:
		l.prev, l.cur = l.cur, l.prev
		clear(l.cur)
	default:
		clear(l.cur)
		clear(l.prev)
	}
	l.genStart = now
}

// recent reports whether this node slid the session to ttl less than
// slideEvery(ttl) before now.
func (l *slideLog) recent(id string, ttl time.Duration, now time.Time) bool {
	every := slideEvery(ttl)
	if every <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rotate(now)
	e, ok := l.cur[id]
	if !ok {
		e, ok = l.prev[id]
	}
	return ok && e.ttl == ttl && now.Sub(e.at) < every
}

// mark records that the session was slid to ttl at now.
func (l *slideLog) mark(id string, ttl time.Duration, now time.Time) {
	if slideEvery(ttl) <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rotate(now)
	l.cur[id] = slide{at: now, ttl: ttl}
}
