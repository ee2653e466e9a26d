// Package memory is the embedded, single-node Store: the same semantics as
// the Redis store, kept in this process.
package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/authgate/authgate/authcore"
)

// Store is an in-memory authcore.Store. Expired records are invisible at
// once and swept in the background.
//
// Sessions and key-value records share one map under the key names the
// Redis store uses (without its prefix): a session is
// authcore.Keys.Session("", id), a key-value record is its logical key. So the two stores agree even on
// what a key-value call does to a session's key.
type Store struct {
	now func() time.Time

	mu      sync.Mutex
	records map[string]entry
	closed  chan struct{}
	once    sync.Once
}

type entry struct {
	data    []byte
	set     map[string]struct{} // for AddMember/Members
	expires time.Time
}

// New returns an empty store that sweeps expired records every minute.
// now is its clock (time.Now when nil).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{now: now, records: map[string]entry{}, closed: make(chan struct{})}
	go s.sweep(time.Minute)
	return s
}

func (s *Store) sweep(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
			now := s.now()
			s.mu.Lock()
			for k, e := range s.records {
				if !now.Before(e.expires) {
					delete(s.records, k)
				}
			}
			s.mu.Unlock()
		}
	}
}

// sessionKey is the Redis store's session key without its prefix.
func sessionKey(id string) string {
	return authcore.Keys.Session("", id)
}

// live returns the unexpired record at key; an expired one is deleted on
// the way. s.mu must be held.
func (s *Store) live(key string, now time.Time) (entry, bool) {
	e, ok := s.records[key]
	if ok && !now.Before(e.expires) {
		delete(s.records, key)
		return entry{}, false
	}
	return e, ok
}

// checkTTL refuses records that would never expire or be born expired,
// as the Redis store does: every record has a positive time to live.
func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory store: ttl must be positive, got %v", ttl)
	}
	return nil
}

// CreateSession implements authcore.Store.
func (s *Store) CreateSession(_ context.Context, sess *authcore.Session, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	data, err := authcore.MarshalSession(sess)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.records[sessionKey(sess.ID)] = entry{data: data, expires: s.now().Add(ttl)}
	s.mu.Unlock()
	return nil
}

// TouchSession implements authcore.Store.
func (s *Store) TouchSession(_ context.Context, id string, ttl time.Duration) (*authcore.Session, error) {
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	now := s.now()
	key := sessionKey(id)
	s.mu.Lock()
	e, ok := s.live(key, now)
	if ok {
		e.expires = now.Add(ttl)
		s.records[key] = e
	}
	s.mu.Unlock()
	if !ok {
		return nil, authcore.ErrNotFound
	}
	return authcore.UnmarshalSession(id, e.data)
}

// GetSession implements authcore.Store.
func (s *Store) GetSession(_ context.Context, id string) (*authcore.Session, error) {
	s.mu.Lock()
	e, ok := s.live(sessionKey(id), s.now())
	s.mu.Unlock()
	if !ok {
		return nil, authcore.ErrNotFound
	}
	return authcore.UnmarshalSession(id, e.data)
}

// SaveSession implements authcore.Store.
func (s *Store) SaveSession(_ context.Context, sess *authcore.Session, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	data, err := authcore.MarshalSession(sess)
	if err != nil {
		return err
	}
	now := s.now()
	key := sessionKey(sess.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live(key, now); !ok {
		return authcore.ErrNotFound
	}
	s.records[key] = entry{data: data, expires: now.Add(ttl)}
	return nil
}

// DeleteSession implements authcore.Store.
func (s *Store) DeleteSession(_ context.Context, id string) error {
	s.mu.Lock()
	delete(s.records, sessionKey(id))
	s.mu.Unlock()
	return nil
}

// Get implements authcore.Store. The caller gets its own copy of the value.
func (s *Store) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	e, ok := s.live(key, s.now())
	s.mu.Unlock()
	if !ok {
		return nil, authcore.ErrNotFound
	}
	return bytes.Clone(e.data), nil
}

// Set implements authcore.Store. The store keeps its own copy of value.
func (s *Store) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	data := cloneValue(value)
	s.mu.Lock()
	s.records[key] = entry{data: data, expires: s.now().Add(ttl)}
	s.mu.Unlock()
	return nil
}

// SetNX implements authcore.Store.
func (s *Store) SetNX(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	data := cloneValue(value)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live(key, now); ok {
		return false, nil
	}
	s.records[key] = entry{data: data, expires: now.Add(ttl)}
	return true, nil
}

// errNotInteger and errOverflow are what Redis answers INCR on a value that
// is not the decimal text of an int64, or on math.MaxInt64.
var (
	errNotInteger = errors.New("memory store: value is not an integer or out of range")
	errOverflow   = errors.New("memory store: increment would overflow")
)

// Incr implements authcore.Store. As in Redis, a counter is the decimal
// text of an int64 (Get reads it as such), and an existing record keeps
// its expiry.
func (s *Store) Incr(_ context.Context, key string, ttl time.Duration) (int64, error) {
	if err := checkTTL(ttl); err != nil {
		return 0, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key, now)
	if !ok {
		s.records[key] = entry{data: []byte("1"), expires: now.Add(ttl)}
		return 1, nil
	}
	n, err := strconv.ParseInt(string(e.data), 10, 64)
	// Redis takes only the canonical form: no '+', spaces or leading zeros.
	if err != nil || strconv.FormatInt(n, 10) != string(e.data) {
		return 0, errNotInteger
	}
	if n == math.MaxInt64 {
		return 0, errOverflow
	}
	n++
	e.data = strconv.AppendInt(nil, n, 10)
	s.records[key] = e
	return n, nil
}

// Delete implements authcore.Store.
func (s *Store) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	delete(s.records, key)
	s.mu.Unlock()
	return nil
}

// Swap implements authcore.Store under one lock.
func (s *Store) Swap(_ context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key, now)
	if ok != (old != nil) || (ok && (e.set != nil || !bytes.Equal(e.data, old))) {
		return false, nil
	}
	s.records[key] = entry{data: cloneValue(value), expires: now.Add(ttl)}
	return true, nil
}

// AddMember implements authcore.Store.
func (s *Store) AddMember(_ context.Context, key, member string, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, _ := s.live(key, now)
	if e.set == nil {
		e = entry{set: map[string]struct{}{}}
	}
	e.set[member] = struct{}{}
	e.expires = now.Add(ttl)
	s.records[key] = e
	return nil
}

// RemoveMember implements authcore.Store.
func (s *Store) RemoveMember(_ context.Context, key, member string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.live(key, s.now()); ok && e.set != nil {
		delete(e.set, member)
	}
	return nil
}

// Members implements authcore.Store.
func (s *Store) Members(_ context.Context, key string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, _ := s.live(key, s.now())
	out := make([]string, 0, len(e.set))
	for m := range e.set {
		out = append(out, m)
	}
	return out, nil
}

// TakeOnce implements authcore.Store: the lookup and the delete happen
// under one lock, so of concurrent callers exactly one gets the value.
func (s *Store) TakeOnce(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	e, ok := s.live(key, s.now())
	delete(s.records, key)
	s.mu.Unlock()
	if !ok {
		return nil, authcore.ErrNotFound
	}
	// The record is gone from the map, so its bytes are the caller's now.
	return e.data, nil
}

// cloneValue copies value so that the caller may reuse its slice; an empty
// value stays a present, empty value (never nil).
func cloneValue(value []byte) []byte {
	return append([]byte{}, value...)
}

// Ping implements authcore.Store; memory always answers.
func (s *Store) Ping(context.Context) error { return nil }

// Close stops the sweeper.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

var _ authcore.Store = (*Store)(nil)
