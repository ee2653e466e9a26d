package authcore

import (
	"context"
	"errors"
	"time"
)

// Metrics receives the core's counts. Labels are drawn from small fixed
// sets (results, methods, operation names), never from user input or
// secrets. Implementations must be cheap and safe for concurrent use: the
// guard calls them on every request.
type Metrics interface {
	// Login counts a login attempt by the API it came through
	// (LoginAPIMulti, LoginAPIManage, LoginAPIPortal) and result: success,
	// invalid_credentials, password_expired, locked, rate_limited,
	// unavailable, error.
	Login(api, result string)
	// StepUp counts a step-up attempt by method (otp, push) and result
	// (success or the refusal's error code).
	StepUp(method, result string)
	// GuardDecision counts a guard decision by result: admitted, no_token,
	// invalid_token, access_token_required, step_up_required,
	// insufficient_permissions, unavailable, client_gone, error.
	GuardDecision(result string)
	// StoreDuration observes one store operation (its method name).
	StoreDuration(op string, d time.Duration)
	// ManageRequest counts a Manage API request by route (its name, or
	// "unknown") and result: success, or the lowercased title of the
	// error it was answered with (unavailable for a store outage).
	ManageRequest(route, result string)
}

// The APIs a login comes through, as the login metrics label them.
const (
	LoginAPIMulti  = "multi"
	LoginAPIManage = "manage"
	LoginAPIPortal = "portal"
)

type noMetrics struct{}

func (noMetrics) Login(string, string)                {}
func (noMetrics) StepUp(string, string)               {}
func (noMetrics) GuardDecision(string)                {}
func (noMetrics) StoreDuration(string, time.Duration) {}
func (noMetrics) ManageRequest(string, string)        {}

// instrumentedStore times every operation of a Store and tells the
// Outage whether the store answered. It implements each method itself (no
// embedded Store), so that a method added to Store does not compile here
// until it is timed.
type instrumentedStore struct {
	store  Store
	m      Metrics
	outage *Outage
}

var _ Store = instrumentedStore{}

func (s instrumentedStore) observe(op string, start time.Time, err error) {
	s.m.StoreDuration(op, time.Since(start))
	s.report(err)
}

// report tells the Outage how the store answered: a request's own
// cancellation says nothing about the store.
func (s instrumentedStore) report(err error) {
	switch {
	case errors.Is(err, ErrUnavailable) && !ClientGone(err):
		s.outage.Failed(err)
	case !errors.Is(err, ErrUnavailable):
		s.outage.Answered()
	}
}

func (s instrumentedStore) CreateSession(ctx context.Context, sess *Session, ttl time.Duration) error {
	start := time.Now()
	err := s.store.CreateSession(ctx, sess, ttl)
	s.observe("create_session", start, err)
	return err
}

func (s instrumentedStore) TouchSession(ctx context.Context, id string, ttl time.Duration) (*Session, error) {
	start := time.Now()
	v, err := s.store.TouchSession(ctx, id, ttl)
	s.observe("touch_session", start, err)
	return v, err
}

func (s instrumentedStore) SaveSession(ctx context.Context, sess *Session, ttl time.Duration) error {
	start := time.Now()
	err := s.store.SaveSession(ctx, sess, ttl)
	s.observe("save_session", start, err)
	return err
}

func (s instrumentedStore) DeleteSession(ctx context.Context, id string) error {
	start := time.Now()
	err := s.store.DeleteSession(ctx, id)
	s.observe("delete_session", start, err)
	return err
}

func (s instrumentedStore) GetSession(ctx context.Context, id string) (*Session, error) {
	start := time.Now()
	v, err := s.store.GetSession(ctx, id)
	s.observe("get_session", start, err)
	return v, err
}

func (s instrumentedStore) RemoveMember(ctx context.Context, key, member string) error {
	start := time.Now()
	err := s.store.RemoveMember(ctx, key, member)
	s.observe("remove_member", start, err)
	return err
}

func (s instrumentedStore) Get(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := s.store.Get(ctx, key)
	s.observe("get", start, err)
	return v, err
}

func (s instrumentedStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := s.store.Set(ctx, key, value, ttl)
	s.observe("set", start, err)
	return err
}

func (s instrumentedStore) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	start := time.Now()
	v, err := s.store.SetNX(ctx, key, value, ttl)
	s.observe("setnx", start, err)
	return v, err
}

func (s instrumentedStore) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	start := time.Now()
	v, err := s.store.Incr(ctx, key, ttl)
	s.observe("incr", start, err)
	return v, err
}

func (s instrumentedStore) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := s.store.Delete(ctx, key)
	s.observe("delete", start, err)
	return err
}

func (s instrumentedStore) TakeOnce(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := s.store.TakeOnce(ctx, key)
	s.observe("take_once", start, err)
	return v, err
}

func (s instrumentedStore) Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	start := time.Now()
	v, err := s.store.Swap(ctx, key, old, value, ttl)
	s.observe("swap", start, err)
	return v, err
}

func (s instrumentedStore) AddMember(ctx context.Context, key, member string, ttl time.Duration) error {
	start := time.Now()
	err := s.store.AddMember(ctx, key, member, ttl)
	s.observe("add_member", start, err)
	return err
}

func (s instrumentedStore) Members(ctx context.Context, key string) ([]string, error) {
	start := time.Now()
	v, err := s.store.Members(ctx, key)
	s.observe("members", start, err)
	return v, err
}

// Ping is not timed: it checks the store, it is no request's work. Its
// answer ends an outage all the same.
func (s instrumentedStore) Ping(ctx context.Context) error {
	err := s.store.Ping(ctx)
	s.report(err)
	return err
}

// Close is not timed: it releases the store.
func (s instrumentedStore) Close() error { return s.store.Close() }
