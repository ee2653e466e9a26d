package authcore

import (
	"context"
	"time"
)

// Metrics receives the core's counts. Labels are drawn from small fixed
// sets (results, methods, operation names), never from user input or
// secrets. Implementations must be cheap and safe for concurrent use: the
// guard calls them on every request.
type Metrics interface {
	// Login counts a login attempt, on either API, by result: success,
	// invalid_credentials, password_expired, locked, error.
	Login(result string)
	// StepUp counts a step-up attempt by method (otp, push) and result
	// (success or the refusal's error code).
	StepUp(method, result string)
	// GuardDecision counts a guard decision by result: admitted, no_token,
	// invalid_token, access_token_required, step_up_required,
	// insufficient_permissions, unavailable, client_gone, error.
	GuardDecision(result string)
	// StoreDuration observes one store operation (its method name).
	StoreDuration(op string, d time.Duration)
}

type noMetrics struct{}

func (noMetrics) Login(string)                        {}
func (noMetrics) StepUp(string, string)               {}
func (noMetrics) GuardDecision(string)                {}
func (noMetrics) StoreDuration(string, time.Duration) {}

// instrumentedStore times every operation of a Store. It implements each
// method itself (no embedded Store), so that a method added to Store does
// not compile here until it is timed.
type instrumentedStore struct {
	store Store
	m     Metrics
}

var _ Store = instrumentedStore{}

func (s instrumentedStore) observe(op string, start time.Time) {
	s.m.StoreDuration(op, time.Since(start))
}

func (s instrumentedStore) CreateSession(ctx context.Context, sess *Session, ttl time.Duration) error {
	defer s.observe("create_session", time.Now())
	return s.store.CreateSession(ctx, sess, ttl)
}

func (s instrumentedStore) TouchSession(ctx context.Context, id string, ttl time.Duration) (*Session, error) {
	defer s.observe("touch_session", time.Now())
	return s.store.TouchSession(ctx, id, ttl)
}

func (s instrumentedStore) SaveSession(ctx context.Context, sess *Session, ttl time.Duration) error {
	defer s.observe("save_session", time.Now())
	return s.store.SaveSession(ctx, sess, ttl)
}

func (s instrumentedStore) DeleteSession(ctx context.Context, id string) error {
	defer s.observe("delete_session", time.Now())
	return s.store.DeleteSession(ctx, id)
}

func (s instrumentedStore) Get(ctx context.Context, key string) ([]byte, error) {
	defer s.observe("get", time.Now())
	return s.store.Get(ctx, key)
}

func (s instrumentedStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	defer s.observe("set", time.Now())
	return s.store.Set(ctx, key, value, ttl)
}

func (s instrumentedStore) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	defer s.observe("setnx", time.Now())
	return s.store.SetNX(ctx, key, value, ttl)
}

func (s instrumentedStore) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	defer s.observe("incr", time.Now())
	return s.store.Incr(ctx, key, ttl)
}

func (s instrumentedStore) Delete(ctx context.Context, key string) error {
	defer s.observe("delete", time.Now())
	return s.store.Delete(ctx, key)
}

func (s instrumentedStore) TakeOnce(ctx context.Context, key string) ([]byte, error) {
	defer s.observe("take_once", time.Now())
	return s.store.TakeOnce(ctx, key)
}

func (s instrumentedStore) Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	defer s.observe("swap", time.Now())
	return s.store.Swap(ctx, key, old, value, ttl)
}

func (s instrumentedStore) AddMember(ctx context.Context, key, member string, ttl time.Duration) error {
	defer s.observe("add_member", time.Now())
	return s.store.AddMember(ctx, key, member, ttl)
}

func (s instrumentedStore) Members(ctx context.Context, key string) ([]string, error) {
	defer s.observe("members", time.Now())
	return s.store.Members(ctx, key)
}

// Ping is not timed: it checks the store, it is no request's work.
func (s instrumentedStore) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// Close is not timed: it releases the store.
func (s instrumentedStore) Close() error { return s.store.Close() }
