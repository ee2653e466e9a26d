package authcore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
)

// twoNodes builds two gateways on the stores of newStores, counting the
// password checks of both: each verifies two hashes, one per parameter
// set of the users' hashes (bcrypt) and of new hashes.
func twoNodes(t *testing.T, newStores nodeStores, clk *clock, limits map[string]authcore.RateLimit) (a, b *authcore.Services, checks func() int64) {
	t.Helper()
	hasher := &countingHasher{}
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	users := stepUpUsers(t)
	s1, s2 := newStores()
	mk := func(store authcore.Store) *authcore.Services {
		gw, err := authcore.New(authcore.Options{Store: store, Users: users,
			Tokens: authcore.NewTokens("test", key, clk.Now), Now: clk.Now, Hasher: hasher,
			PasswordHash: testHashParams, RateLimits: limits})
		if err != nil {
			t.Fatal(err)
		}
		return gw
	}
	return mk(s1), mk(s2), func() int64 { return int64(hasher.count() / 2) }
}

func TestConcurrentWrongPasswordsAcrossTwoNodesGetFiveChecks(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		for _, email := range []string{"alice@example.com", "nobody@example.com"} {
			t.Run(email, func(t *testing.T) {
				a, b, checks := twoNodes(t, newStores, clk, map[string]authcore.RateLimit{})
				var wg sync.WaitGroup
				var invalid, locked atomic.Int64
				for i := 0; i < 20; i++ {
					gw := a
					if i%2 == 1 {
						gw = b
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, err := gw.Sessions.Login(context.Background(), email, "wrong")
						switch {
						case errors.Is(err, authcore.ErrInvalidCredentials):
							invalid.Add(1)
						case errors.Is(err, authcore.ErrLocked):
							locked.Add(1)
						default:
							t.Errorf("login: %v", err)
						}
					}()
				}
				wg.Wait()
				if checks() > 5 || invalid.Load() != checks() || locked.Load() != 20-invalid.Load() {
					t.Fatalf("%d password checks, %d invalid, %d locked: want at most 5 checks and the rest locked",
						checks(), invalid.Load(), locked.Load())
				}
				// Locked for both nodes, the right password included.
				if _, err := b.Sessions.Login(context.Background(), email, testPassword); !errors.Is(err, authcore.ErrLocked) {
					t.Fatalf("right password on the other node: %v, want ErrLocked", err)
				}
			})
		}
	})
}

func TestLockoutExpires(t *testing.T) {
	gw, clk, _ := newTestServices(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		_, _ = gw.Sessions.Login(ctx, "alice@example.com", "wrong")
	}
	if _, err := gw.Sessions.Login(ctx, "alice@example.com", testPassword); !errors.Is(err, authcore.ErrLocked) {
		t.Fatalf("after 5 failures: %v", err)
	}
	clk.Advance(29 * time.Minute)
	if _, err := gw.Sessions.Login(ctx, "alice@example.com", testPassword); !errors.Is(err, authcore.ErrLocked) {
		t.Fatalf("29 minutes later: %v", err)
	}
	clk.Advance(2 * time.Minute)
	if _, err := gw.Sessions.Login(ctx, "alice@example.com", testPassword); err != nil {
		t.Fatalf("31 minutes later: %v", err)
	}
}

func TestRateLimitHoldsAcrossTwoNodes(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		a, b, _ := twoNodes(t, newStores, clk, map[string]authcore.RateLimit{authcore.LimitCodeVerify: {Limit: 6, Window: time.Minute}})
		ctx := context.Background()
		allowed := 0
		var limited *authcore.RateLimited
		for i := 0; i < 10; i++ {
			gw := a
			if i%2 == 1 {
				gw = b
			}
			err := gw.Limits.Allow(ctx, authcore.LimitCodeVerify, "192.0.2.7")
			switch {
			case err == nil:
				allowed++
			case errors.As(err, &limited):
			default:
				t.Fatal(err)
			}
		}
		if allowed != 6 || limited == nil || limited.Limit != 6 || limited.Reset <= 0 || limited.Reset > time.Minute {
			t.Fatalf("allowed %d, limited %+v", allowed, limited)
		}
		if err := a.Limits.Allow(ctx, authcore.LimitCodeVerify, "192.0.2.8"); err != nil {
			t.Fatalf("another address is limited too: %v", err)
		}
		if err := a.Limits.Allow(ctx, authcore.LimitLogin, "192.0.2.7"); err != nil {
			t.Fatalf("an unconfigured action is limited: %v", err)
		}
	})
}

// The Manage API's limits key on the end user's address (clientIp) and on
// the user name, in buckets apart from the Multi API's.
func TestManageLimitsKeyOnClientIPAndUserNameApartFromMulti(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
		store, _ := newStores()
		gw, err := authcore.New(authcore.Options{Store: store, Users: manageUsers(t), Tokens: authcore.NewTokens("test", key, clk.Now),
			Now: clk.Now, PasswordHash: testHashParams, RateLimits: map[string]authcore.RateLimit{authcore.LimitLogin: {Limit: 2, Window: time.Hour}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		manage := func(user, ip string) error {
			_, err := gw.ManageMFA.ValidatePassword(authcore.WithRequestInfo(ctx, "", ip), authcore.ValidatePasswordRequest{UserName: user, Password: testPassword})
			return err
		}
		multi := func(ip string) error {
			_, err := gw.Sessions.Login(authcore.WithRequestInfo(ctx, "", ip), "bob@example.com", testPassword)
			return err
		}
		var limited *authcore.RateLimited
		for i, step := range []struct {
			name    string
			call    func() error
			limited bool
		}{
			{"multi from A", func() error { return multi("192.0.2.1") }, false},
			{"multi from A", func() error { return multi("192.0.2.1") }, false},
			{"multi from A, over the limit", func() error { return multi("192.0.2.1") }, true},
			{"manage for bob from A: another bucket", func() error { return manage("bob", "192.0.2.1") }, false},
			{"manage for bob from B", func() error { return manage("bob", "198.51.100.2") }, false},
			{"manage for bob from C: bob's limit", func() error { return manage("Bob", "198.51.100.3") }, true},
			{"manage for tom from C", func() error { return manage("tom", "198.51.100.3") }, false},
			{"manage for dave from C: C's limit", func() error { return manage("dave", "198.51.100.3") }, true},
			{"manage for dave from D", func() error { return manage("dave", "198.51.100.4") }, false},
		} {
			err := step.call()
			if got := errors.As(err, &limited); got != step.limited || (!got && err != nil && !errors.Is(err, authcore.ErrMFAMisconfigured)) {
				t.Fatalf("step %d, %s: %v, want limited %v", i+1, step.name, err, step.limited)
			}
		}
	})
}
