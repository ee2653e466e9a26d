package authcore

import (
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// OutageLogEvery is how often, at most, a node logs a store outage while
// it lasts (SPEC §10).
const OutageLogEvery = 10 * time.Second

// Outage turns a store outage into a few log lines instead of one a
// request: one when it starts, at most one every OutageLogEvery while it
// lasts (with the count of requests refused since the last line), and one
// when it ends. The store's callers report what they see: Failed for an
// operation the store did not answer, Answered for one it did, Refused
// for a request answered 503 because of it. An outage starts at the first
// failure and ends at the first answer after it; while the store answers,
// Answered costs one atomic load.
type Outage struct {
	log *zap.Logger
	now func() time.Time

	down atomic.Bool

	mu      sync.Mutex
	since   time.Time // when the outage started
	logged  time.Time // when it was last logged
	refused int64     // requests refused since the last line
	total   int64     // requests refused since it started
	cause   string    // the newest failure, for the next line
}

// NewOutage returns an Outage logging to log, on the clock now (time.Now
// when nil).
func NewOutage(log *zap.Logger, now func() time.Time) *Outage {
	if log == nil {
		log = zap.NewNop()
	}
	if now == nil {
		now = time.Now
	}
	return &Outage{log: log, now: now}
}

// Down reports whether an outage is going on.
func (o *Outage) Down() bool { return o.down.Load() }

// Failed reports a store operation that got no answer (err wraps
// ErrUnavailable; its text names no secret). The first one starts an
// outage and is logged.
func (o *Outage) Failed(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.cause = err.Error()
	}
	if o.down.Load() {
		o.maybeLog()
		return
	}
	now := o.now()
	o.since, o.logged, o.refused, o.total = now, now, 0, 0
	o.down.Store(true)
	o.log.Warn("session store unavailable: requests that need it are answered 503 until it answers again",
		zap.String("cause", o.cause))
}

// Refused counts a request answered 503 because the store did not
// answer, during an outage.
func (o *Outage) Refused() {
	if !o.down.Load() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused++
	o.total++
	o.maybeLog()
}

// Answered reports a store operation that got an answer: the end of an
// outage, if one was going on.
func (o *Outage) Answered() {
	if !o.down.Load() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down.Load() {
		return
	}
	o.down.Store(false)
	o.log.Info("session store available again",
		zap.Duration("lasted", o.now().Sub(o.since)), zap.Int64("refused", o.total))
	o.refused, o.total = 0, 0
}

// maybeLog writes the periodic line when OutageLogEvery has passed since
// the last one. Called with mu held during an outage.
func (o *Outage) maybeLog() {
	now := o.now()
	if now.Sub(o.logged) < OutageLogEvery {
		return
	}
	o.logged = now
	o.log.Warn("session store still unavailable",
		zap.Duration("for", now.Sub(o.since)), zap.Int64("refused", o.refused), zap.String("cause", o.cause))
	o.refused = 0
}
