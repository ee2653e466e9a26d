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

// ClientGone reports whether err comes from the request's own context
// being cancelled: the client went away while the store was asked. That
// is no outage, and is not logged as one, though the request is refused
// like any other that could not be checked.
func ClientGone(err error) bool { return errors.Is(err, context.Canceled) }

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
	// GetSession returns the session as stored, without sliding its time
	// to live and without any cache (an administrator's listing is no use
	// of the session), or ErrNotFound.
	GetSession(ctx context.Context, id string) (*Session, error)

	// The small key-value operations below carry challenges, counters and
	// one-time tokens. Keys are logical names such as "o:{sid}:stepup"
	// (StoreKeys lists them all); the store adds its prefix. Callers put
	// the part that ties related keys together in braces (a Redis Cluster
	// hash tag) so that they share a slot. Every value has a positive time
	// to live.

	// Get returns the value at key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value at key for ttl, replacing any value.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value at key for ttl only when key is absent, and
	// reports whether it did: the one winner among concurrent callers.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Incr adds one to the counter at key and returns the new count. A new
	// counter starts at 1 and lives for ttl from then; later increments
	// do not extend it. It is atomic across every node of the store.
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
	// Delete removes key; a missing key is no error.
	Delete(ctx context.Context, key string) error
	// TakeOnce returns the value at key and removes it in one atomic step,
	// or ErrNotFound: of concurrent callers, exactly one gets the value.
	TakeOnce(ctx context.Context, key string) ([]byte, error)

	// Swap stores value at key for ttl only if the key still holds old
	// (absent when old is nil), atomically, and reports whether it did:
	// read-modify-write without lost updates.
	Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error)

	// AddMember adds member to the set at key and sets the set's time to
	// live to ttl, in one atomic step.
	AddMember(ctx context.Context, key, member string, ttl time.Duration) error
	// Members returns the members of the set at key; none when it is missing.
	Members(ctx context.Context, key string) ([]string, error)
	// RemoveMember removes member from the set at key; a missing member or
	// set is no error. The set keeps its time to live.
	RemoveMember(ctx context.Context, key, member string) error

	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}
