// Package storetest is the conformance suite of authcore.Store: the memory
// and Redis stores must behave the same, and Run is where "the same" is
// written down. It also starts throwaway redis-servers for tests
// (StartRedis).
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
)

// Timing of the TTL tests. The TTL is short so the suite stays fast, and
// the slack absorbs scheduling delays (-race, a loaded CI machine) without
// making the checks meaningless: sliding touches come every ttl/3, and
// expiry is checked ttlSlack after the TTL ran out, counted from when the
// write answered (the store applied it by then, however long it took).
const (
	shortTTL = 300 * time.Millisecond
	ttlSlack = 150 * time.Millisecond
	longTTL  = time.Minute
	// stallBound bounds the retries of a TTL test that a stalled machine
	// spoiled (unstalled): it only stops a hang.
	stallBound = 30 * time.Second
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
		mustCreate(t, s, sess, shortTTL)
		expectGone(t, s, sess.ID, time.Now().Add(shortTTL+ttlSlack))
	})

	t.Run("GetSessionReadsWithoutSliding", func(t *testing.T) {
		s := open(t)
		sess := fullSession(newID())
		want := *sess
		mustCreate(t, s, sess, shortTTL)
		created := time.Now()
		got, err := s.GetSession(t.Context(), sess.ID)
		if err != nil {
			t.Fatalf("GetSession after CreateSession: %v", err)
		}
		checkSame(t, got, &want)
		// Reading again and again keeps nothing alive: the session ends
		// one TTL after it was written.
		for time.Since(created) < shortTTL/2 {
			if _, err := s.GetSession(t.Context(), sess.ID); err != nil && !errors.Is(err, authcore.ErrNotFound) {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Until(created.Add(shortTTL + ttlSlack)))
		if got, err := s.GetSession(t.Context(), sess.ID); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("GetSession one TTL after the write, reads in between = (%v, %v), want ErrNotFound", got, err)
		}
		if _, err := s.GetSession(t.Context(), newID()); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("GetSession of a missing session: %v, want ErrNotFound", err)
		}
	})

	t.Run("TouchSlidesTTL", func(t *testing.T) {
		s := open(t)
		var sess *authcore.Session
		unstalled(t, func() bool {
			sess = fullSession(newID())
			// sent is when the newest write of the session was sent: the
			// store applied it no earlier, so a touch that answers less
			// than a TTL later must find the session.
			sent := time.Now()
			mustCreate(t, s, sess, shortTTL)
			// Keep touching for more than twice the TTL: without sliding
			// the session would have expired twice over.
			start := time.Now()
			touches := 0
			for time.Since(start) < 2*shortTTL+shortTTL/3 {
				time.Sleep(shortTTL / 3)
				touchSent := time.Now()
				if _, err := s.TouchSession(t.Context(), sess.ID, shortTTL); err != nil {
					if errors.Is(err, authcore.ErrNotFound) && time.Since(sent) >= shortTTL {
						t.Logf("touch %d answered %v after the previous write was sent: stalled",
							touches+1, time.Since(sent).Round(time.Millisecond))
						return false
					}
					t.Fatalf("touch %d, %v after create: %v (the TTL did not slide)",
						touches+1, time.Since(start).Round(time.Millisecond), err)
				}
				sent = touchSent
				touches++
			}
			return true
		})
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

	t.Run("KV", func(t *testing.T) { runKV(t, open) })
	t.Run("Sets", func(t *testing.T) { runSets(t, open) })
	t.Run("Swap", func(t *testing.T) { runSwap(t, open) })

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

// runKV holds the key-value operations (Get, Set, SetNX, Incr, Delete,
// TakeOnce) to their contract. Get never changes a TTL, so the expiry
// checks read with it.
func runKV(t *testing.T, open func(t *testing.T) authcore.Store) {
	t.Run("GetMissingIsNotFound", func(t *testing.T) {
		s := open(t)
		if got, err := s.Get(t.Context(), newKey()); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("Get of a missing key = (%q, %v), want ErrNotFound", got, err)
		}
		if got, err := s.TakeOnce(t.Context(), newKey()); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("TakeOnce of a missing key = (%q, %v), want ErrNotFound", got, err)
		}
	})

	t.Run("SetThenGet", func(t *testing.T) {
		s := open(t)
		key := newKey()
		mustSet(t, s, key, []byte("challenge"), longTTL)
		expectValue(t, s, key, []byte("challenge"))
		// Get does not consume the value.
		expectValue(t, s, key, []byte("challenge"))
	})

	t.Run("SetReplacesValueAndTTL", func(t *testing.T) {
		s := open(t)
		key, written := shortKeyUnstalled(t, s, []byte("second"),
			func(key string) { mustSet(t, s, key, []byte("first"), longTTL) },
			func(key string, sent time.Time) bool { return valueUnlessStalled(t, s, key, []byte("second"), sent) })
		expectKeyGone(t, s, key, written.Add(shortTTL+ttlSlack))
	})

	t.Run("ValuesAreBinarySafe", func(t *testing.T) {
		s := open(t)
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		key := newKey()
		mustSet(t, s, key, all, longTTL)
		expectValue(t, s, key, all)
		got, err := s.TakeOnce(t.Context(), key)
		if err != nil || !bytes.Equal(got, all) {
			t.Fatalf("TakeOnce = (%x, %v), want the bytes 0x00..0xff", got, err)
		}
		if ok, err := s.SetNX(t.Context(), key, all, longTTL); err != nil || !ok {
			t.Fatalf("SetNX of a taken key = (%v, %v), want true", ok, err)
		}
		expectValue(t, s, key, all)

		// An empty value is a value: present, not missing.
		empty := newKey()
		mustSet(t, s, empty, []byte{}, longTTL)
		if got, err := s.Get(t.Context(), empty); err != nil || len(got) != 0 {
			t.Fatalf("Get of an empty value = (%q, %v), want (\"\", nil)", got, err)
		}
	})

	t.Run("ValuesAreCopied", func(t *testing.T) {
		// Neither the caller's slice nor a returned one aliases the stored
		// value.
		s := open(t)
		key := newKey()
		buf := []byte("abc")
		mustSet(t, s, key, buf, longTTL)
		buf[0] = 'x'
		got, err := s.Get(t.Context(), key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		got[1] = 'y'
		expectValue(t, s, key, []byte("abc"))

		nx := newKey()
		buf = []byte("def")
		if ok, err := s.SetNX(t.Context(), nx, buf, longTTL); err != nil || !ok {
			t.Fatalf("SetNX = (%v, %v), want true", ok, err)
		}
		buf[0] = 'x'
		expectValue(t, s, nx, []byte("def"))
	})

	t.Run("SetExpiresAfterTTL", func(t *testing.T) {
		s := open(t)
		key, written := shortKeyUnstalled(t, s, []byte("v"), nil,
			func(key string, sent time.Time) bool { return valueUnlessStalled(t, s, key, []byte("v"), sent) })
		expectKeyGone(t, s, key, written.Add(shortTTL+ttlSlack))
		if got, err := s.TakeOnce(t.Context(), key); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("TakeOnce of an expired key = (%q, %v), want ErrNotFound", got, err)
		}
	})

	t.Run("SetNXOnlyWhenAbsent", func(t *testing.T) {
		s := open(t)
		key := newKey()
		setNX := func(value string, ttl time.Duration, want bool) {
			t.Helper()
			ok, err := s.SetNX(t.Context(), key, []byte(value), ttl)
			if err != nil || ok != want {
				t.Fatalf("SetNX(%q) = (%v, %v), want %v", value, ok, err, want)
			}
		}
		setNX("a", longTTL, true)
		setNX("b", longTTL, false)
		expectValue(t, s, key, []byte("a")) // the loser changed nothing

		var written time.Time
		unstalled(t, func() bool {
			if err := s.Delete(t.Context(), key); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			sent := time.Now()
			setNX("c", shortTTL, true) // absent again after a delete
			written = time.Now()
			// A losing SetNX with a long TTL neither replaces the value
			// nor extends its TTL.
			ok, err := s.SetNX(t.Context(), key, []byte("d"), longTTL)
			if err == nil && ok && time.Since(sent) >= shortTTL {
				t.Logf("SetNX(\"d\") won %v after \"c\" was sent: stalled", time.Since(sent).Round(time.Millisecond))
				return false
			}
			if err != nil || ok {
				t.Fatalf("SetNX(\"d\") = (%v, %v), want false", ok, err)
			}
			return valueUnlessStalled(t, s, key, []byte("c"), sent)
		})
		expectKeyGone(t, s, key, written.Add(shortTTL+ttlSlack))
		setNX("e", longTTL, true) // and absent again after expiry
		expectValue(t, s, key, []byte("e"))
	})

	t.Run("ExpiredIsAbsentToEveryOp", func(t *testing.T) {
		// Each op meets its expired key first-hand, with no Get before it
		// that might clear the record on the way.
		s := open(t)
		getKey, nxKey, incrKey, takeKey := newKey(), newKey(), newKey(), newKey()
		for _, key := range []string{getKey, nxKey, takeKey} {
			mustSet(t, s, key, []byte("old"), shortTTL)
		}
		if _, err := s.Incr(t.Context(), incrKey, shortTTL); err != nil {
			t.Fatalf("Incr: %v", err)
		}
		time.Sleep(shortTTL + ttlSlack) // from the last write's answer
		if got, err := s.Get(t.Context(), getKey); !errors.Is(err, authcore.ErrNotFound) {
			t.Errorf("Get of an expired key = (%q, %v), want ErrNotFound", got, err)
		}
		if ok, err := s.SetNX(t.Context(), nxKey, []byte("new"), longTTL); err != nil || !ok {
			t.Errorf("SetNX of an expired key = (%v, %v), want true", ok, err)
		}
		if n, err := s.Incr(t.Context(), incrKey, longTTL); err != nil || n != 1 {
			t.Errorf("Incr of an expired counter = (%d, %v), want a new counter at 1", n, err)
		}
		if got, err := s.TakeOnce(t.Context(), takeKey); !errors.Is(err, authcore.ErrNotFound) {
			t.Errorf("TakeOnce of an expired key = (%q, %v), want ErrNotFound", got, err)
		}
	})

	t.Run("IncrCounts", func(t *testing.T) {
		s := open(t)
		key := newKey()
		for want := int64(1); want <= 3; want++ {
			if n, err := s.Incr(t.Context(), key, longTTL); err != nil || n != want {
				t.Fatalf("Incr = (%d, %v), want %d", n, err, want)
			}
		}
		// A counter reads back as its decimal text, as in Redis.
		expectValue(t, s, key, []byte("3"))
		if n, err := s.Incr(t.Context(), newKey(), longTTL); err != nil || n != 1 {
			t.Fatalf("Incr of another key = (%d, %v), want 1: counters are per key", n, err)
		}
	})

	t.Run("IncrExpiresAfterTTL", func(t *testing.T) {
		s := open(t)
		key := newKey()
		if n, err := s.Incr(t.Context(), key, shortTTL); err != nil || n != 1 {
			t.Fatalf("Incr = (%d, %v), want 1", n, err)
		}
		expectKeyGone(t, s, key, time.Now().Add(shortTTL+ttlSlack))
		if n, err := s.Incr(t.Context(), key, longTTL); err != nil || n != 1 {
			t.Fatalf("Incr after expiry = (%d, %v), want a new counter at 1", n, err)
		}
	})

	t.Run("IncrDoesNotExtendTTL", func(t *testing.T) {
		// A counter lives for the ttl of the Incr that created it: a rate
		// limit window is fixed, not slid forward by every attempt.
		s := open(t)
		var (
			key     string
			written time.Time
		)
		unstalled(t, func() bool {
			key = newKey()
			sent := time.Now()
			if n, err := s.Incr(t.Context(), key, shortTTL); err != nil || n != 1 {
				t.Fatalf("Incr = (%d, %v), want 1", n, err)
			}
			written = time.Now()
			time.Sleep(shortTTL * 2 / 3)
			n, err := s.Incr(t.Context(), key, shortTTL)
			if err == nil && n == 1 && time.Since(sent) >= shortTTL {
				t.Logf("the second Incr answered %v after the first was sent: stalled", time.Since(sent).Round(time.Millisecond))
				return false
			}
			if err != nil || n != 2 {
				t.Fatalf("Incr %v after the first = (%d, %v), want 2", time.Since(written).Round(time.Millisecond), n, err)
			}
			return true
		})
		// Extended, it would live until 2/3 ttl + ttl.
		expectKeyGone(t, s, key, written.Add(shortTTL+ttlSlack))
	})

	t.Run("IncrKeepsExistingTTL", func(t *testing.T) {
		// Incr of a value stored by Set counts on from it and keeps its TTL.
		s := open(t)
		key, written := shortKeyUnstalled(t, s, []byte("41"), nil, func(key string, sent time.Time) bool {
			n, err := s.Incr(t.Context(), key, longTTL)
			if err == nil && n == 1 && time.Since(sent) >= shortTTL {
				t.Logf("Incr answered %v after the Set was sent: stalled", time.Since(sent).Round(time.Millisecond))
				return false
			}
			if err != nil || n != 42 {
				t.Fatalf("Incr of \"41\" = (%d, %v), want 42", n, err)
			}
			return true
		})
		expectKeyGone(t, s, key, written.Add(shortTTL+ttlSlack))
	})

	t.Run("IncrOfNonCounterIsAnError", func(t *testing.T) {
		s := open(t)
		for _, v := range []string{"abc", "", " 1", "+1", "01", "1.5", "9223372036854775807"} {
			key := newKey()
			mustSet(t, s, key, []byte(v), longTTL)
			n, err := s.Incr(t.Context(), key, longTTL)
			if err == nil || errors.Is(err, authcore.ErrNotFound) {
				t.Errorf("Incr of %q = (%d, %v), want an error other than ErrNotFound", v, n, err)
			}
			expectValue(t, s, key, []byte(v))
		}
	})

	t.Run("DeleteRemoves", func(t *testing.T) {
		s := open(t)
		key := newKey()
		mustSet(t, s, key, []byte("v"), longTTL)
		if err := s.Delete(t.Context(), key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if got, err := s.Get(t.Context(), key); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("Get after Delete = (%q, %v), want ErrNotFound", got, err)
		}
		if err := s.Delete(t.Context(), key); err != nil {
			t.Fatalf("deleting again: %v", err)
		}
	})

	t.Run("DeleteMissingIsNoError", func(t *testing.T) {
		s := open(t)
		if err := s.Delete(t.Context(), newKey()); err != nil {
			t.Fatalf("Delete of a missing key: %v", err)
		}
	})

	t.Run("TakeOnceTakesOnce", func(t *testing.T) {
		s := open(t)
		key := newKey()
		mustSet(t, s, key, []byte("token"), longTTL)
		if got, err := s.TakeOnce(t.Context(), key); err != nil || string(got) != "token" {
			t.Fatalf("TakeOnce = (%q, %v), want \"token\"", got, err)
		}
		if got, err := s.TakeOnce(t.Context(), key); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("second TakeOnce = (%q, %v), want ErrNotFound", got, err)
		}
		if got, err := s.Get(t.Context(), key); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("Get after TakeOnce = (%q, %v), want ErrNotFound", got, err)
		}
	})

	t.Run("NonPositiveTTLIsRefused", func(t *testing.T) {
		s := open(t)
		kept := newKey()
		mustSet(t, s, kept, []byte("kept"), longTTL)
		for _, ttl := range []time.Duration{0, -time.Second} {
			fresh := newKey()
			for _, key := range []string{fresh, kept} {
				if err := s.Set(t.Context(), key, []byte("x"), ttl); err == nil {
					t.Errorf("Set with ttl %v succeeded", ttl)
				}
				if ok, err := s.SetNX(t.Context(), key, []byte("x"), ttl); err == nil || ok {
					t.Errorf("SetNX with ttl %v = (%v, %v), want an error", ttl, ok, err)
				}
				if n, err := s.Incr(t.Context(), key, ttl); err == nil {
					t.Errorf("Incr with ttl %v = %d, want an error", ttl, n)
				}
			}
			if got, err := s.Get(t.Context(), fresh); !errors.Is(err, authcore.ErrNotFound) {
				t.Errorf("after refused calls with ttl %v, Get = (%q, %v), want ErrNotFound: a refused call stored something", ttl, got, err)
			}
		}
		expectValue(t, s, kept, []byte("kept"))
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		s := open(t)
		a, b, c := newKey(), newKey(), newKey()
		mustSet(t, s, a, []byte("a"), longTTL)
		mustSet(t, s, b, []byte("b"), longTTL)
		if _, err := s.Incr(t.Context(), c, longTTL); err != nil {
			t.Fatalf("Incr: %v", err)
		}
		if err := s.Delete(t.Context(), a); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.TakeOnce(t.Context(), b); err != nil {
			t.Fatalf("TakeOnce: %v", err)
		}
		expectValue(t, s, c, []byte("1"))

		// A session and a key-value record tied to it by its id live
		// side by side: neither's delete removes the other.
		sess := fullSession(newID())
		mustCreate(t, s, sess, longTTL)
		otp := authcore.Keys.Code(authcore.Keys.StepUpScope(sess.ID, authcore.PurposeStepUp))
		mustSet(t, s, otp, []byte("123456"), longTTL)
		if err := s.Delete(t.Context(), otp); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.TouchSession(t.Context(), sess.ID, longTTL); err != nil {
			t.Fatalf("TouchSession after deleting a key-value record of the session: %v", err)
		}
		mustSet(t, s, otp, []byte("123456"), longTTL)
		if err := s.DeleteSession(t.Context(), sess.ID); err != nil {
			t.Fatalf("DeleteSession: %v", err)
		}
		expectValue(t, s, otp, []byte("123456"))
	})

	const racers = 50

	t.Run("ConcurrentIncr", func(t *testing.T) {
		// Every increment counts exactly once: the racers see each of
		// 1..racers exactly once.
		s := open(t)
		key := newKey()
		counts := make([]atomic.Int32, racers+1)
		race(t, racers, func(int) {
			n, err := s.Incr(t.Context(), key, longTTL)
			switch {
			case err != nil:
				t.Errorf("Incr: %v", err)
			case n < 1 || n > racers:
				t.Errorf("Incr = %d, want 1..%d", n, racers)
			default:
				counts[n].Add(1)
			}
		})
		for n := 1; n <= racers; n++ {
			if c := counts[n].Load(); c != 1 {
				t.Errorf("%d racers got %d from Incr, want exactly one", c, n)
			}
		}
		expectValue(t, s, key, []byte(strconv.Itoa(racers)))
	})

	t.Run("ConcurrentSetNX", func(t *testing.T) {
		s := open(t)
		key := newKey()
		var (
			wins   atomic.Int32
			winner atomic.Int32
		)
		race(t, racers, func(i int) {
			ok, err := s.SetNX(t.Context(), key, []byte(strconv.Itoa(i)), longTTL)
			if err != nil {
				t.Errorf("SetNX: %v", err)
				return
			}
			if ok {
				wins.Add(1)
				winner.Store(int32(i))
			}
		})
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d of %d concurrent SetNX calls won, want exactly one", n, racers)
		}
		expectValue(t, s, key, []byte(strconv.Itoa(int(winner.Load()))))
	})

	t.Run("ConcurrentTakeOnce", func(t *testing.T) {
		s := open(t)
		key := newKey()
		mustSet(t, s, key, []byte("one-time"), longTTL)
		var got atomic.Int32
		race(t, racers, func(int) {
			v, err := s.TakeOnce(t.Context(), key)
			switch {
			case err == nil && string(v) == "one-time":
				got.Add(1)
			case err == nil:
				t.Errorf("TakeOnce = %q, want \"one-time\"", v)
			case !errors.Is(err, authcore.ErrNotFound):
				t.Errorf("TakeOnce: error = %v, want ErrNotFound for the losers", err)
			}
		})
		if n := got.Load(); n != 1 {
			t.Fatalf("%d of %d concurrent TakeOnce calls got the value, want exactly one", n, racers)
		}
		if v, err := s.Get(t.Context(), key); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("Get after TakeOnce = (%q, %v), want ErrNotFound", v, err)
		}
	})
}

// race runs f(0..n-1) on n goroutines released together, and waits.
func race(t *testing.T, n int, f func(i int)) {
	t.Helper()
	var (
		ready, done sync.WaitGroup
		start       = make(chan struct{})
	)
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			f(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// unstalled runs attempt until it returns true, failing the test when none
// has in stallBound. An attempt returns false when the machine stalled it
// past the TTL it checks (a loaded CI machine can pause a test for longer
// than shortTTL): a store on a real clock may then rightly have expired
// what the attempt expected to find, and only another attempt can tell.
func unstalled(t *testing.T, attempt func() bool) {
	t.Helper()
	for deadline := time.Now().Add(stallBound); !attempt(); {
		if time.Now().After(deadline) {
			t.Fatalf("every attempt in %v stalled past the TTL", stallBound)
		}
	}
}

// newKey returns a fresh key shaped like the gateway's, hash tag included.
func newKey() string {
	return "t:{" + newID() + "}:k"
}

func mustSet(t *testing.T, s authcore.Store, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Set(t.Context(), key, value, ttl); err != nil {
		t.Fatalf("Set: %v", err)
	}
}

// shortKeyUnstalled sets a fresh key to value with shortTTL (after
// prepare, when set, has run on it) and runs check with when the write was
// sent, the store applying it no earlier; it does so until check accepts
// an attempt (unstalled), and returns that key and when its write
// answered, the store having applied it by then.
func shortKeyUnstalled(t *testing.T, s authcore.Store, value []byte, prepare func(key string), check func(key string, sent time.Time) bool) (key string, written time.Time) {
	t.Helper()
	unstalled(t, func() bool {
		key = newKey()
		if prepare != nil {
			prepare(key)
		}
		sent := time.Now()
		mustSet(t, s, key, value, shortTTL)
		written = time.Now()
		return check(key, sent)
	})
	return key, written
}

func expectValue(t *testing.T, s authcore.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	checkValue(t, key, got, err, want)
}

// valueUnlessStalled is expectValue for a key written with shortTTL, the
// write sent at sent; it returns false instead of failing when the key is
// gone and the read answered shortTTL or more after sent (unstalled).
func valueUnlessStalled(t *testing.T, s authcore.Store, key string, want []byte, sent time.Time) bool {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if errors.Is(err, authcore.ErrNotFound) && time.Since(sent) >= shortTTL {
		t.Logf("Get(%q) answered %v after the write was sent: stalled", key, time.Since(sent).Round(time.Millisecond))
		return false
	}
	checkValue(t, key, got, err, want)
	return true
}

// checkValue checks the answer of a Get of key.
func checkValue(t *testing.T, key string, got []byte, err error, want []byte) {
	t.Helper()
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

// expectKeyGone waits until at and checks that key is gone.
func expectKeyGone(t *testing.T, s authcore.Store, key string, at time.Time) {
	t.Helper()
	time.Sleep(time.Until(at))
	if got, err := s.Get(t.Context(), key); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("Get(%q) after the TTL ran out = (%q, %v), want ErrNotFound", key, got, err)
	}
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
		Kind:               authcore.KindBrowser,
		SecretHash:         "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg",
		ClientIP:           "2001:db8::7",
		// The user agent comes last in the stored form and may hold '|'.
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Test|Browser/1.0",
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

// runSets checks AddMember and Members.
func runSets(t *testing.T, open func(t *testing.T) authcore.Store) {
	t.Run("MissingSetIsEmpty", func(t *testing.T) {
		s := open(t)
		got, err := s.Members(t.Context(), "set:{"+newID()+"}")
		if err != nil || len(got) != 0 {
			t.Fatalf("Members of a missing set = %v, %v", got, err)
		}
	})
	t.Run("AddThenMembersWithoutDuplicates", func(t *testing.T) {
		s := open(t)
		key := "set:{" + newID() + "}"
		for _, m := range []string{"a", "b", "a", "c"} {
			if err := s.AddMember(t.Context(), key, m, longTTL); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Members(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != "a,b,c" {
			t.Fatalf("Members = %v, want a,b,c", got)
		}
	})
	t.Run("RemoveMember", func(t *testing.T) {
		s := open(t)
		key := "set:{" + newID() + "}"
		for _, m := range []string{"a", "b", "c"} {
			if err := s.AddMember(t.Context(), key, m, longTTL); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range []string{"b", "b", "zzz"} { // twice, and one never added: no error
			if err := s.RemoveMember(t.Context(), key, m); err != nil {
				t.Fatalf("RemoveMember(%q): %v", m, err)
			}
		}
		got, _ := s.Members(t.Context(), key)
		sort.Strings(got)
		if strings.Join(got, ",") != "a,c" {
			t.Fatalf("Members after removing b = %v, want a,c", got)
		}
		if err := s.RemoveMember(t.Context(), "set:{"+newID()+"}", "a"); err != nil {
			t.Fatalf("RemoveMember from a missing set: %v", err)
		}
	})
	t.Run("AddExtendsTheSetTTL", func(t *testing.T) {
		s := open(t)
		var key string
		unstalled(t, func() bool {
			key = "set:{" + newID() + "}"
			first := time.Now() // the store starts the first TTL no earlier
			if err := s.AddMember(t.Context(), key, "a", shortTTL); err != nil {
				t.Fatal(err)
			}
			time.Sleep(shortTTL / 2)
			extended := time.Now() // nor extends it any earlier
			if err := s.AddMember(t.Context(), key, "b", shortTTL); err != nil {
				t.Fatal(err)
			}
			// The set may have expired before the extension reached it,
			// or the extended one before Members did.
			late := time.Since(first) >= shortTTL
			// Past the first TTL, before the extended one.
			time.Sleep(shortTTL/2 + ttlSlack/2)
			got, _ := s.Members(t.Context(), key)
			if len(got) != 2 && (late || time.Since(extended) >= shortTTL) {
				t.Logf("Members = %v, answered %v after the first add was sent: stalled", got, time.Since(first).Round(time.Millisecond))
				return false
			}
			if len(got) != 2 {
				t.Fatalf("after the extension, Members = %v, want both", got)
			}
			return true
		})
		time.Sleep(shortTTL)
		if got, _ := s.Members(t.Context(), key); len(got) != 0 {
			t.Fatalf("after the TTL, Members = %v, want none", got)
		}
	})
	t.Run("ConcurrentAddsAreAllKept", func(t *testing.T) {
		s := open(t)
		key := "set:{" + newID() + "}"
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.AddMember(t.Context(), key, strconv.Itoa(i), longTTL); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got, _ := s.Members(t.Context(), key); len(got) != 50 {
			t.Fatalf("%d members, want 50", len(got))
		}
	})
	t.Run("NonPositiveTTLIsRefused", func(t *testing.T) {
		s := open(t)
		if err := s.AddMember(t.Context(), "set:{"+newID()+"}", "a", 0); err == nil {
			t.Fatal("AddMember with ttl 0 succeeded")
		}
	})
}

// runSwap checks the compare-and-swap that account changes rely on.
func runSwap(t *testing.T, open func(t *testing.T) authcore.Store) {
	t.Run("CreatesOnlyWhenAbsent", func(t *testing.T) {
		s := open(t)
		key := "sw:{" + newID() + "}"
		if ok, err := s.Swap(t.Context(), key, nil, []byte("v1"), longTTL); !ok || err != nil {
			t.Fatalf("Swap(absent -> v1) = %v, %v", ok, err)
		}
		if ok, err := s.Swap(t.Context(), key, nil, []byte("v2"), longTTL); ok || err != nil {
			t.Fatalf("Swap(absent -> v2) on a present key = %v, %v, want false", ok, err)
		}
		if got, _ := s.Get(t.Context(), key); string(got) != "v1" {
			t.Fatalf("value %q, want v1", got)
		}
	})
	t.Run("ReplacesOnlyTheExpectedValue", func(t *testing.T) {
		s := open(t)
		key := "sw:{" + newID() + "}"
		_ = s.Set(t.Context(), key, []byte("v1"), longTTL)
		if ok, _ := s.Swap(t.Context(), key, []byte("other"), []byte("v2"), longTTL); ok {
			t.Fatal("Swap with a stale old value succeeded")
		}
		if ok, _ := s.Swap(t.Context(), key, []byte{}, []byte("v2"), longTTL); ok {
			t.Fatal("Swap expecting an empty value succeeded on v1")
		}
		if ok, err := s.Swap(t.Context(), key, []byte("v1"), []byte("v2"), longTTL); !ok || err != nil {
			t.Fatalf("Swap(v1 -> v2) = %v, %v", ok, err)
		}
		if got, _ := s.Get(t.Context(), key); string(got) != "v2" {
			t.Fatalf("value %q, want v2", got)
		}
	})
	t.Run("ConcurrentSwapsLoseNoUpdate", func(t *testing.T) {
		// 20 writers each append their mark with a read-swap-retry loop;
		// every mark must be there at the end.
		s := open(t)
		key := "sw:{" + newID() + "}"
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					old, err := s.Get(t.Context(), key)
					if errors.Is(err, authcore.ErrNotFound) {
						old = nil
					} else if err != nil {
						t.Error(err)
						return
					}
					next := append(bytes.Clone(old), byte('a'+i))
					if ok, err := s.Swap(t.Context(), key, old, next, longTTL); err != nil {
						t.Error(err)
						return
					} else if ok {
						return
					}
				}
			}()
		}
		wg.Wait()
		if got, _ := s.Get(t.Context(), key); len(got) != 20 {
			t.Fatalf("value %q has %d marks, want 20", got, len(got))
		}
	})
	t.Run("NonPositiveTTLIsRefused", func(t *testing.T) {
		s := open(t)
		if _, err := s.Swap(t.Context(), "sw:{"+newID()+"}", nil, []byte("v"), 0); err == nil {
			t.Fatal("Swap with ttl 0 succeeded")
		}
	})
}
