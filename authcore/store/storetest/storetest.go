// Package storetest is the conformance suite of authcore.Store: the memory
// and Redis stores must behave the same, and Run is where "the same" is
// written down. It also starts throwaway redis-servers for tests
// (StartRedis).
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
)

// Timing of the TTL tests. The TTL is short so the suite stays fast, and
// the slack absorbs scheduling delays (-race, a loaded CI machine) without
// making the checks meaningless: sliding touches come every ttl/3, and
// expiry is checked ttlSlack after the TTL ran out.
const (
	shortTTL = 300 * time.Millisecond
	ttlSlack = 150 * time.Millisecond
	longTTL  = time.Minute
)

// Run runs the conformance suite against the stores newStore returns. It
// calls newStore once per subtest; each store must start empty of the ids
// the suite uses (random ones) and Run closes it when the subtest ends.
// Stores must not share a clock the test controls: the TTL subtests wait
// in real time (a few hundred milliseconds each).
func Run(t *testing.T, newStore func(t *testing.T) authcore.Store) {
	open := func(t *testing.T) authcore.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}

	t.Run("FixtureSetsEveryField", func(t *testing.T) {
		// Guards the suite itself: a Session field the fixture leaves zero
		// is a field whose round trip nobody checks.
		for _, path := range zeroFields(reflect.ValueOf(*fullSession(newID())), "Session") {
			t.Errorf("fullSession leaves %s zero: set it so the suite checks that stores keep it", path)
		}
	})

	t.Run("CreateThenTouchReturnsEveryField", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			sess *authcore.Session
		}{
			{"all fields set", fullSession(newID())},
			{"not stepped up", plainSession(newID())},
			{"characters that need escaping", func() *authcore.Session {
				s := fullSession(newID())
				s.CredentialsID = `12"34\56<78>&` + "\u00e9\u2028"
				s.Identity.ID = "id with spaces\n"
				return s
			}()},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				want := *tc.sess
				mustCreate(t, s, tc.sess, longTTL)
				got, err := s.TouchSession(t.Context(), tc.sess.ID, longTTL)
				if err != nil {
					t.Fatalf("TouchSession after CreateSession: %v", err)
				}
				checkSame(t, got, &want)
				// A second touch returns the same again: touching changes
				// only the TTL, never the data.
				got, err = s.TouchSession(t.Context(), tc.sess.ID, longTTL)
				if err != nil {
					t.Fatalf("second TouchSession: %v", err)
				}
				checkSame(t, got, &want)
			})
		}
	})

	t.Run("TouchMissingIsNotFound", func(t *testing.T) {
		for _, tc := range []struct{ name, id string }{
			{"never created", newID()},
			{"empty id", ""},
			{"id with braces", "{" + newID() + "}"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				got, err := s.TouchSession(t.Context(), tc.id, longTTL)
				if !errors.Is(err, authcore.ErrNotFound) {
					t.Fatalf("TouchSession(missing) error = %v, want ErrNotFound", err)
				}
				if got != nil {
					t.Errorf("TouchSession(missing) returned a session: %+v", got)
				}
			})
		}
	})

	t.Run("ExpiresAfterTTL", func(t *testing.T) {
		s := open(t)
		sess := fullSession(newID())
		start := time.Now()
		mustCreate(t, s, sess, shortTTL)
		expectGone(t, s, sess.ID, start.Add(shortTTL+ttlSlack))
	})

	t.Run("TouchSlidesTTL", func(t *testing.T) {
		s := open(t)
		sess := fullSession(newID())
		mustCreate(t, s, sess, shortTTL)
		// Keep touching for more than twice the TTL: without sliding the
		// session would have expired twice over.
		start := time.Now()
		touches := 0
		for time.Since(start) < 2*shortTTL+shortTTL/3 {
			time.Sleep(shortTTL / 3)
			if _, err := s.TouchSession(t.Context(), sess.ID, shortTTL); err != nil {
				t.Fatalf("touch %d, %v after create: %v (the TTL did not slide)",
					touches+1, time.Since(start).Round(time.Millisecond), err)
			}
			touches++
		}
		// Then stop touching: it expires one TTL after the last touch.
		expectGone(t, s, sess.ID, time.Now().Add(shortTTL+ttlSlack))
	})

	t.Run("TouchSetsTTLNotAddsToIt", func(t *testing.T) {
		// A touch sets the TTL to the given value: touching a long-lived
		// session with a short TTL shortens it.
		s := open(t)
		sess := fullSession(newID())
		mustCreate(t, s, sess, longTTL)
		if _, err := s.TouchSession(t.Context(), sess.ID, shortTTL); err != nil {
			t.Fatalf("TouchSession: %v", err)
		}
		expectGone(t, s, sess.ID, time.Now().Add(shortTTL+ttlSlack))
	})

	t.Run("SaveReplacesData", func(t *testing.T) {
		s := open(t)
		id := newID()
		mustCreate(t, s, plainSession(id), longTTL)
		updated := fullSession(id)
		updated.CredentialsID = "9988776655"
		updated.StepUpMethod = authcore.StepUpPush
		want := *updated
		if err := s.SaveSession(t.Context(), updated, longTTL); err != nil {
			t.Fatalf("SaveSession of an existing session: %v", err)
		}
		got, err := s.TouchSession(t.Context(), id, longTTL)
		if err != nil {
			t.Fatalf("TouchSession after SaveSession: %v", err)
		}
		checkSame(t, got, &want)

		// And back: fields can be cleared too (stepped-up time, flag).
		cleared := plainSession(id)
		want = *cleared
		if err := s.SaveSession(t.Context(), cleared, longTTL); err != nil {
			t.Fatalf("second SaveSession: %v", err)
		}
		if got, err = s.TouchSession(t.Context(), id, longTTL); err != nil {
			t.Fatalf("TouchSession after second SaveSession: %v", err)
		}
		checkSame(t, got, &want)
	})

	t.Run("SaveSetsTTL", func(t *testing.T) {
		s := open(t)
		sess := fullSession(newID())
		mustCreate(t, s, sess, longTTL)
		if err := s.SaveSession(t.Context(), sess, shortTTL); err != nil {
			t.Fatalf("SaveSession: %v", err)
		}
		expectGone(t, s, sess.ID, time.Now().Add(shortTTL+ttlSlack))
	})

	t.Run("SaveNeverRevives", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			// setup leaves the session id missing from s.
			setup func(t *testing.T, s authcore.Store, sess *authcore.Session)
		}{
			{"never created", func(*testing.T, authcore.Store, *authcore.Session) {}},
			{"deleted", func(t *testing.T, s authcore.Store, sess *authcore.Session) {
				mustCreate(t, s, sess, longTTL)
				if err := s.DeleteSession(t.Context(), sess.ID); err != nil {
					t.Fatalf("DeleteSession: %v", err)
				}
			}},
			{"expired", func(t *testing.T, s authcore.Store, sess *authcore.Session) {
				mustCreate(t, s, sess, shortTTL/3)
				time.Sleep(shortTTL/3 + ttlSlack)
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				sess := fullSession(newID())
				tc.setup(t, s, sess)
				if err := s.SaveSession(t.Context(), sess, longTTL); !errors.Is(err, authcore.ErrNotFound) {
					t.Fatalf("SaveSession of a %s session: error = %v, want ErrNotFound", tc.name, err)
				}
				if got, err := s.TouchSession(t.Context(), sess.ID, longTTL); !errors.Is(err, authcore.ErrNotFound) {
					t.Fatalf("after the failed save, TouchSession = (%v, %v), want ErrNotFound: SaveSession revived the session", got, err)
				}
			})
		}
	})

	t.Run("NonPositiveTTLIsRefused", func(t *testing.T) {
		// Every record must expire: a zero or negative TTL is a caller bug,
		// never a record kept forever or born dead.
		s := open(t)
		sess := fullSession(newID())
		for _, ttl := range []time.Duration{0, -time.Second} {
			if err := s.CreateSession(t.Context(), sess, ttl); err == nil {
				t.Fatalf("CreateSession with ttl %v succeeded", ttl)
			}
		}
		mustCreate(t, s, sess, longTTL)
		if _, err := s.TouchSession(t.Context(), sess.ID, 0); err == nil {
			t.Fatal("TouchSession with ttl 0 succeeded")
		}
		if err := s.SaveSession(t.Context(), sess, 0); err == nil {
			t.Fatal("SaveSession with ttl 0 succeeded")
		}
		if _, err := s.TouchSession(t.Context(), sess.ID, longTTL); err != nil {
			t.Fatalf("the session was harmed by the refused calls: %v", err)
		}
	})

	t.Run("DeleteMissingIsNoError", func(t *testing.T) {
		s := open(t)
		if err := s.DeleteSession(t.Context(), newID()); err != nil {
			t.Fatalf("DeleteSession of a missing id: %v", err)
		}
	})

	t.Run("DeleteThenTouchIsNotFound", func(t *testing.T) {
		s := open(t)
		sess := fullSession(newID())
		mustCreate(t, s, sess, longTTL)
		if err := s.DeleteSession(t.Context(), sess.ID); err != nil {
			t.Fatalf("DeleteSession: %v", err)
		}
		if _, err := s.TouchSession(t.Context(), sess.ID, longTTL); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("TouchSession after delete: error = %v, want ErrNotFound", err)
		}
		if err := s.DeleteSession(t.Context(), sess.ID); err != nil {
			t.Fatalf("deleting again: %v", err)
		}
	})

	t.Run("SessionsAreIndependent", func(t *testing.T) {
		s := open(t)
		a, b := fullSession(newID()), plainSession(newID())
		wantB := *b
		mustCreate(t, s, a, longTTL)
		mustCreate(t, s, b, longTTL)
		if err := s.DeleteSession(t.Context(), a.ID); err != nil {
			t.Fatalf("DeleteSession(a): %v", err)
		}
		if _, err := s.TouchSession(t.Context(), a.ID, longTTL); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("TouchSession(a) after delete: error = %v, want ErrNotFound", err)
		}
		got, err := s.TouchSession(t.Context(), b.ID, longTTL)
		if err != nil {
			t.Fatalf("deleting a removed b too: TouchSession(b): %v", err)
		}
		checkSame(t, got, &wantB)
	})

	t.Run("ConcurrentTouchSaveDelete", func(t *testing.T) {
		// Many goroutines touch and save one session while another deletes
		// it. Every call answers the session or ErrNotFound; once the delete
		// has returned, nothing finds the session and no save brings it
		// back.
		s := open(t)
		sess := fullSession(newID())
		mustCreate(t, s, sess, longTTL)
		const workers, iterations = 16, 100
		var (
			wg      sync.WaitGroup
			ops     atomic.Int64
			deleted atomic.Bool
		)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				save := *sess
				save.LastUsed = save.LastUsed.Add(time.Duration(w) * time.Second)
				for range iterations {
					after := deleted.Load()
					ops.Add(1)
					if w%4 == 0 {
						err := s.SaveSession(t.Context(), &save, longTTL)
						switch {
						case after && !errors.Is(err, authcore.ErrNotFound):
							t.Errorf("SaveSession after the delete: error = %v, want ErrNotFound", err)
							return
						case err != nil && !errors.Is(err, authcore.ErrNotFound):
							t.Errorf("SaveSession: %v", err)
							return
						}
						continue
					}
					got, err := s.TouchSession(t.Context(), sess.ID, longTTL)
					switch {
					case after && !errors.Is(err, authcore.ErrNotFound):
						t.Errorf("TouchSession after the delete = (%v, %v), want ErrNotFound", got, err)
						return
					case err == nil && (got.ID != sess.ID || got.CredentialsID != sess.CredentialsID):
						t.Errorf("TouchSession returned another session: %+v", got)
						return
					case err != nil && !errors.Is(err, authcore.ErrNotFound):
						t.Errorf("TouchSession: %v", err)
						return
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Delete once traffic is well under way.
			for ops.Load() < workers*iterations/4 {
				time.Sleep(time.Millisecond)
			}
			if err := s.DeleteSession(t.Context(), sess.ID); err != nil {
				t.Errorf("DeleteSession: %v", err)
			}
			deleted.Store(true)
		}()
		wg.Wait()
		if err := s.SaveSession(t.Context(), sess, longTTL); !errors.Is(err, authcore.ErrNotFound) {
			t.Errorf("SaveSession after all: error = %v, want ErrNotFound", err)
		}
		if got, err := s.TouchSession(t.Context(), sess.ID, longTTL); !errors.Is(err, authcore.ErrNotFound) {
			t.Errorf("TouchSession after all = (%v, %v), want ErrNotFound: the session was revived", got, err)
		}
	})

	t.Run("ConcurrentSessions", func(t *testing.T) {
		// Independent sessions used from many goroutines at once: the full
		// life cycle of each is unaffected by the others.
		s := open(t)
		const workers, perWorker = 16, 20
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := lifeCycle(t.Context(), s, perWorker); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	})

	t.Run("Ping", func(t *testing.T) {
		s := open(t)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})

	t.Run("Close", func(t *testing.T) {
		s := newStore(t)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
}

// lifeCycle creates, touches, saves and deletes n sessions of its own.
func lifeCycle(ctx context.Context, s authcore.Store, n int) error {
	for i := range n {
		sess := fullSession(newID())
		want := *sess
		if err := s.CreateSession(ctx, sess, longTTL); err != nil {
			return fmt.Errorf("session %d: CreateSession: %w", i, err)
		}
		got, err := s.TouchSession(ctx, sess.ID, longTTL)
		if err != nil {
			return fmt.Errorf("session %d: TouchSession: %w", i, err)
		}
		if diff := diffSession(got, &want); len(diff) > 0 {
			return fmt.Errorf("session %d: TouchSession returned a different session: %v", i, diff)
		}
		sess.StepUpMethod = authcore.StepUpPush
		if err := s.SaveSession(ctx, sess, longTTL); err != nil {
			return fmt.Errorf("session %d: SaveSession: %w", i, err)
		}
		if got, err = s.TouchSession(ctx, sess.ID, longTTL); err != nil {
			return fmt.Errorf("session %d: TouchSession after save: %w", i, err)
		}
		if got.StepUpMethod != authcore.StepUpPush {
			return fmt.Errorf("session %d: saved StepUpMethod %q, read back %q", i, authcore.StepUpPush, got.StepUpMethod)
		}
		if err := s.DeleteSession(ctx, sess.ID); err != nil {
			return fmt.Errorf("session %d: DeleteSession: %w", i, err)
		}
		if _, err := s.TouchSession(ctx, sess.ID, longTTL); !errors.Is(err, authcore.ErrNotFound) {
			return fmt.Errorf("session %d: TouchSession after delete: error = %v, want ErrNotFound", i, err)
		}
	}
	return nil
}

// fullSession returns a session with every field set, times off the
// millisecond grid so that the millisecond precision of the stored form
// shows.
func fullSession(id string) *authcore.Session {
	created := time.Now().Add(-time.Minute).Truncate(time.Millisecond).Add(123456 * time.Nanosecond)
	return &authcore.Session{
		ID:                 id,
		CredentialsID:      "110104413000181234",
		CredentialsType:    "ROOT",
		Identity:           authcore.IdentityRef{Type: "CONSUMER", ID: "110104413000187654"},
		Created:            created,
		LastUsed:           created.Add(42*time.Second + 999999*time.Nanosecond),
		Expires:            created.Add(12 * time.Hour),
		SteppedUp:          created.Add(30*time.Second + 1),
		StepUpMethod:       authcore.StepUpOTP,
		PasswordUpdateOnly: true,
	}
}

// plainSession is a fresh login: not stepped up, no flags.
func plainSession(id string) *authcore.Session {
	now := time.Now()
	return &authcore.Session{
		ID:              id,
		CredentialsID:   "110104413000185555",
		CredentialsType: "USER",
		Identity:        authcore.IdentityRef{Type: "CORPORATE", ID: "110104413000186666"},
		Created:         now,
		LastUsed:        now,
		Expires:         now.Add(12 * time.Hour),
	}
}

// newID returns a random session id shaped like the gateway's (128 bits,
// base64url), so the suite's ids never collide across runs or stores.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func mustCreate(t *testing.T, s authcore.Store, sess *authcore.Session, ttl time.Duration) {
	t.Helper()
	if err := s.CreateSession(t.Context(), sess, ttl); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

// expectGone waits until at and checks that the session is gone. There is
// no way to poll: every read of a session slides its TTL, so the check is
// a single touch after the deadline (a few hundred milliseconds away).
func expectGone(t *testing.T, s authcore.Store, id string, at time.Time) {
	t.Helper()
	time.Sleep(time.Until(at))
	if got, err := s.TouchSession(t.Context(), id, longTTL); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("TouchSession after the TTL ran out = (%v, %v), want ErrNotFound", got, err)
	}
}

func checkSame(t *testing.T, got, want *authcore.Session) {
	t.Helper()
	for _, d := range diffSession(got, want) {
		t.Error(d)
	}
}

// diffSession compares every field of got and want. Times count at the
// millisecond precision of the stored form (time zones do not matter); a
// zero time must stay zero.
func diffSession(got, want *authcore.Session) []string {
	if got == nil {
		return []string{"got no session"}
	}
	return diffValue(reflect.ValueOf(*got), reflect.ValueOf(*want), "Session")
}

var timeType = reflect.TypeFor[time.Time]()

func diffValue(got, want reflect.Value, path string) []string {
	switch {
	case want.Type() == timeType:
		g, w := got.Interface().(time.Time), want.Interface().(time.Time)
		if w.IsZero() {
			if !g.IsZero() {
				return []string{fmt.Sprintf("%s = %v, want the zero time", path, g)}
			}
			return nil
		}
		if w = time.UnixMilli(w.UnixMilli()); !g.Equal(w) {
			return []string{fmt.Sprintf("%s = %v, want %v", path, g, w)}
		}
		return nil
	case want.Kind() == reflect.Struct:
		var diffs []string
		for i := range want.NumField() {
			f := want.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			diffs = append(diffs, diffValue(got.Field(i), want.Field(i), path+"."+f.Name)...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			return []string{fmt.Sprintf("%s = %#v, want %#v", path, got.Interface(), want.Interface())}
		}
		return nil
	}
}

// zeroFields lists the exported fields of v (recursively) that are zero.
func zeroFields(v reflect.Value, path string) []string {
	if v.Kind() == reflect.Struct && v.Type() != timeType {
		var zero []string
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				zero = append(zero, zeroFields(v.Field(i), path+"."+f.Name)...)
			}
		}
		return zero
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}
