package authcore

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by a Store when the record does not exist (or
// has expired).
var ErrNotFound = errors.New("not found")

// ErrUnavailable wraps a Store failure: the store could not be reached or
// did not answer. Callers answer 503 and never fail open.
var ErrUnavailable = errors.New("store unavailable")

// Store keeps sessions and the gateway's other shared, expiring state. The
// memory and Redis implementations have the same semantics and pass the
// same conformance suite (authcore/store/storetest). Every record has a
// time to live; nothing is kept forever.
type Store interface {
	// CreateSession stores a new session for ttl.
	CreateSession(ctx context.Context, s *Session, ttl time.Duration) error
	// TouchSession returns the session and slides its time to live to ttl,
	// in one round trip. It returns ErrNotFound for a missing session.
	TouchSession(ctx context.Context, id string, ttl time.Duration) (*Session, error)
	// SaveSession replaces an existing session's data and sets its time to
	// live to ttl. It returns ErrNotFound, and stores nothing, when the
	// session no longer exists: a logged-out session is never revived.
	SaveSession(ctx context.Context, s *Session, ttl time.Duration) error
	// DeleteSession removes the session; deleting a missing one is no error.
	DeleteSession(ctx context.Context, id string) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}
