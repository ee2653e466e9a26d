// Package authtest holds the fakes the core's tests share: a settable
// clock and a sender that records instead of delivering. It is imported
// by tests only.
package authtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads start until advanced.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// RecordingSender keeps what it is asked to send.
type RecordingSender struct {
	mu   sync.Mutex
	msgs []authcore.Message
}

// Send records m.
func (r *RecordingSender) Send(_ context.Context, m authcore.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return nil
}

// Last returns the latest message, failing the test when there is none.
func (r *RecordingSender) Last(t testing.TB) authcore.Message {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.msgs) == 0 {
		t.Fatal("nothing was sent")
	}
	return r.msgs[len(r.msgs)-1]
}

// Count returns how many messages were sent.
func (r *RecordingSender) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}
