// Package memory is the embedded, single-node Store: the same semantics as
// the Redis store, kept in this process.
package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/authgate/authgate/authcore"
)

// Store is an in-memory authcore.Store. Expired records are invisible at
// once and swept in the background.
type Store struct {
	now func() time.Time

	mu       sync.Mutex
	sessions map[string]entry
	closed   chan struct{}
	once     sync.Once
}

type entry struct {
	data    []byte
	expires time.Time
}

// New returns an empty store that sweeps expired records every minute.
// now is its clock (time.Now when nil).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{now: now, sessions: map[string]entry{}, closed: make(chan struct{})}
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
			for k, e := range s.sessions {
				if !now.Before(e.expires) {
					delete(s.sessions, k)
				}
			}
			s.mu.Unlock()
		}
	}
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
	s.sessions[sess.ID] = entry{data: data, expires: s.now().Add(ttl)}
	s.mu.Unlock()
	return nil
}

// TouchSession implements authcore.Store.
func (s *Store) TouchSession(_ context.Context, id string, ttl time.Duration) (*authcore.Session, error) {
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	now := s.now()
	s.mu.Lock()
	e, ok := s.sessions[id]
	if ok && !now.Before(e.expires) {
		delete(s.sessions, id)
		ok = false
	}
	if ok {
		e.expires = now.Add(ttl)
		s.sessions[id] = e
	}
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
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.sessions[sess.ID]
	if !ok || !now.Before(e.expires) {
		delete(s.sessions, sess.ID)
		return authcore.ErrNotFound
	}
	s.sessions[sess.ID] = entry{data: data, expires: now.Add(ttl)}
	return nil
}

// DeleteSession implements authcore.Store.
func (s *Store) DeleteSession(_ context.Context, id string) error {
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
	return nil
}

// Ping implements authcore.Store; memory always answers.
func (s *Store) Ping(context.Context) error { return nil }

// Close stops the sweeper.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

var _ authcore.Store = (*Store)(nil)
