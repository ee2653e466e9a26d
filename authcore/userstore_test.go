package authcore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/authtest"
	"github.com/authgate/authgate/authcore/store/memory"
	redisstore "github.com/authgate/authgate/authcore/store/redis"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// storeUser is a valid user for StoreUsers tests, with testPassword.
func storeUser(t *testing.T, id, email, userName string) *authcore.User {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return &authcore.User{ID: id, CredentialsType: "USER", Email: email, UserName: userName, Password: string(hash),
		TextNumber: "+35699000009", Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2" + id}}}
}

// storeServices is a gateway node over store whose users are dir.
func storeServices(t *testing.T, store authcore.Store, dir authcore.UserDirectory, clk *clock) *authcore.Services {
	t.Helper()
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	gw, err := authcore.New(authcore.Options{Store: store, Users: dir, Tokens: authcore.NewTokens("test", key, clk.Now),
		Now: clk.Now, SessionIdle: 5 * time.Minute, SessionMax: time.Hour, PasswordHash: testHashParams})
	if err != nil {
		t.Fatal(err)
	}
	return gw
}

func mustAdd(t *testing.T, users *authcore.StoreUsers, u *authcore.User) {
	t.Helper()
	if err := users.Add(context.Background(), u); err != nil {
		t.Fatalf("add %s: %v", u.ID, err)
	}
}

func wantUser(t *testing.T, u *authcore.User, err error, id string) {
	t.Helper()
	if err != nil || u.ID != id {
		t.Fatalf("got %+v, %v; want user %s", u, err, id)
	}
}

func wantNotFound(t *testing.T, u *authcore.User, err error) {
	t.Helper()
	if !errors.Is(err, authcore.ErrUserNotFound) {
		t.Fatalf("got %+v, %v; want ErrUserNotFound", u, err)
	}
}

func TestStoreUsersAddedAreFoundByIDEmailAndNameOnEveryNode(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		ctx := context.Background()
		s1, s2 := newStores()
		node1, node2 := authcore.NewStoreUsers(s1, clk.Now), authcore.NewStoreUsers(s2, clk.Now)
		mustAdd(t, node1, storeUser(t, "1001", "Alice@Example.com", "Alice"))

		u, err := node2.UserByEmail(ctx, "alice@EXAMPLE.com")
		wantUser(t, u, err, "1001")
		if u.Email != "Alice@Example.com" || u.Identities[0].ID != "21001" || u.TextNumber != "+35699000009" {
			t.Fatalf("stored user came back as %+v", u)
		}
		u, err = node2.UserByName(ctx, "ALICE")
		wantUser(t, u, err, "1001")
		u, err = node2.UserByID(ctx, "1001")
		wantUser(t, u, err, "1001")
		u, err = node2.UserByEmail(ctx, "bob@example.com")
		wantNotFound(t, u, err)
		u, err = node2.UserByName(ctx, "")
		wantNotFound(t, u, err)

		// The gateway logs the user in on the other node at once.
		gw := storeServices(t, s2, node2, clk)
		if _, err := gw.Sessions.Login(ctx, "ALICE@example.com", testPassword); err != nil {
			t.Fatalf("login on the other node: %v", err)
		}
	})
}

func TestStoreUsersRefuseATakenIDEmailOrUserName(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		ctx := context.Background()
		s, _ := newStores()
		users := authcore.NewStoreUsers(s, clk.Now)
		mustAdd(t, users, storeUser(t, "1001", "alice@example.com", "alice"))
		for name, u := range map[string]*authcore.User{
			"id":       storeUser(t, "1001", "other@example.com", ""),
			"email":    storeUser(t, "1002", "ALICE@example.com", ""),
			"userName": storeUser(t, "1003", "carol@example.com", "Alice"),
		} {
			if err := users.Add(ctx, u); !errors.Is(err, authcore.ErrUserExists) || !strings.Contains(err.Error(), name) {
				t.Errorf("%s taken: err = %v, want ErrUserExists naming the %s", name, err, name)
			}
		}
		// A refused add leaves nothing behind: not its record, not its claims.
		for _, id := range []string{"1002", "1003"} {
			u, err := users.UserByID(ctx, id)
			wantNotFound(t, u, err)
		}
		u, err := users.UserByEmail(ctx, "carol@example.com")
		wantNotFound(t, u, err)
		mustAdd(t, users, storeUser(t, "1003", "carol@example.com", "carol"))
		list, err := users.List(ctx)
		if err != nil || len(list) != 2 || list[0].ID != "1001" || list[1].ID != "1003" {
			t.Fatalf("list = %+v, %v", list, err)
		}
	})
}

func TestStoreUsersConcurrentAddsOfOneEmailAdmitOne(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		ctx := context.Background()
		s1, s2 := newStores()
		nodes := []*authcore.StoreUsers{authcore.NewStoreUsers(s1, clk.Now), authcore.NewStoreUsers(s2, clk.Now)}
		const n = 8
		errs := make([]error, n)
		users := make([]*authcore.User, n)
		for i := range n {
			users[i] = storeUser(t, fmt.Sprint(1100+i), "same@example.com", fmt.Sprintf("same%d", i))
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = nodes[i%2].Add(ctx, users[i]) })
		}
		wg.Wait()
		winner := ""
		for i, err := range errs {
			switch {
			case err == nil && winner == "":
				winner = users[i].ID
			case err == nil:
				t.Fatalf("both %s and %s were added with one email", winner, users[i].ID)
			case !errors.Is(err, authcore.ErrUserExists):
				t.Fatalf("add %d: %v", i, err)
			}
		}
		if winner == "" {
			t.Fatal("every add was refused")
		}
		u, err := nodes[0].UserByEmail(ctx, "SAME@example.com")
		wantUser(t, u, err, winner)
		list, err := nodes[1].List(ctx)
		if err != nil || len(list) != 1 || list[0].ID != winner {
			t.Fatalf("list = %+v, %v; want only %s", list, err, winner)
		}
	})
}

func TestStoreUsersRenameMovesTheLookupKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		ctx := context.Background()
		s, _ := newStores()
		users := authcore.NewStoreUsers(s, clk.Now)
		mustAdd(t, users, storeUser(t, "1001", "alice@example.com", "alice"))
		mustAdd(t, users, storeUser(t, "1002", "bob@example.com", "bob"))

		got, err := users.Update(ctx, "1001", func(u *authcore.User) error {
			u.Email, u.UserName, u.FirstName = "alice@new.example", "", "Alice"
			return nil
		})
		if err != nil || got.Email != "alice@new.example" || got.FirstName != "Alice" {
			t.Fatalf("update: %+v, %v", got, err)
		}
		u, err := users.UserByEmail(ctx, "Alice@New.Example")
		wantUser(t, u, err, "1001")
		u, err = users.UserByEmail(ctx, "alice@example.com")
		wantNotFound(t, u, err)
		u, err = users.UserByName(ctx, "alice")
		wantNotFound(t, u, err)
		// The old email and name are free again.
		mustAdd(t, users, storeUser(t, "1003", "alice@example.com", "alice"))

		// Renaming onto a taken email or name is refused and changes nothing.
		for _, change := range []func(u *authcore.User){
			func(u *authcore.User) { u.Email, u.FirstName = "BOB@example.com", "Changed" },
			func(u *authcore.User) { u.UserName, u.FirstName = "Bob", "Changed" },
		} {
			_, err := users.Update(ctx, "1001", func(u *authcore.User) error { change(u); return nil })
			if !errors.Is(err, authcore.ErrUserExists) {
				t.Fatalf("rename onto a taken key: %v", err)
			}
		}
		u, err = users.UserByID(ctx, "1001")
		wantUser(t, u, err, "1001")
		if u.Email != "alice@new.example" || u.UserName != "" || u.FirstName != "Alice" {
			t.Fatalf("refused change left %+v", u)
		}
		u, err = users.UserByEmail(ctx, "bob@example.com")
		wantUser(t, u, err, "1002")
		u, err = users.UserByName(ctx, "bob")
		wantUser(t, u, err, "1002")

		// A change of case only keeps the same keys.
		if _, err := users.Update(ctx, "1002", func(u *authcore.User) error { u.Email = "Bob@Example.com"; return nil }); err != nil {
			t.Fatal(err)
		}
		u, err = users.UserByEmail(ctx, "bob@example.com")
		wantUser(t, u, err, "1002")
	})
}

func TestStoreUsersConcurrentRenamesOntoOneEmailAdmitOne(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		ctx := context.Background()
		s1, s2 := newStores()
		nodes := []*authcore.StoreUsers{authcore.NewStoreUsers(s1, clk.Now), authcore.NewStoreUsers(s2, clk.Now)}
		const n = 6
		for i := range n {
			mustAdd(t, nodes[0], storeUser(t, fmt.Sprint(1200+i), fmt.Sprintf("u%d@example.com", i), ""))
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = nodes[i%2].Update(ctx, fmt.Sprint(1200+i), func(u *authcore.User) error {
					u.Email = "target@example.com"
					return nil
				})
			})
		}
		wg.Wait()
		renamed := 0
		for i, err := range errs {
			if err == nil {
				renamed++
			} else if !errors.Is(err, authcore.ErrUserExists) {
				t.Fatalf("rename %d: %v", i, err)
			}
		}
		list, err := nodes[1].List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		holders := 0
		for _, u := range list {
			if u.Email == "target@example.com" {
				holders++
			}
		}
		if renamed != 1 || holders != 1 {
			t.Fatalf("%d renames succeeded, %d users hold the email; want 1 and 1", renamed, holders)
		}
	})
}

func TestStoreUsersAreValidated(t *testing.T) {
	ctx := context.Background()
	users := authcore.NewStoreUsers(memory.New(nil), nil)
	bad := storeUser(t, "x1", "alice@example.com", "")
	if err := users.Add(ctx, bad); err == nil || !strings.Contains(err.Error(), "id must be digits") {
		t.Fatalf("add with a bad id: %v", err)
	}
	plain := storeUser(t, "1001", "alice@example.com", "")
	plain.Password = "hunter2"
	if err := users.Add(ctx, plain); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("add with a plain password: %v", err)
	}
	mustAdd(t, users, storeUser(t, "1001", "alice@example.com", ""))
	_, err := users.Update(ctx, "1001", func(u *authcore.User) error { u.Phone = "99000001"; return nil })
	if err == nil || !strings.Contains(err.Error(), "E.164") {
		t.Fatalf("update to a bad phone: %v", err)
	}
	if _, err := users.Update(ctx, "1001", func(u *authcore.User) error { u.ID = "2002"; return nil }); err != nil {
		t.Fatal(err)
	}
	u, err := users.UserByID(ctx, "1001")
	wantUser(t, u, err, "1001")
	if u.Phone != "" {
		t.Fatalf("refused update changed the phone to %q", u.Phone)
	}
	_, err = users.Update(ctx, "9999", func(*authcore.User) error { return nil })
	if !errors.Is(err, authcore.ErrUserNotFound) {
		t.Fatalf("update of an unknown user: %v", err)
	}
}

func TestStoreUsersNewPasswordEndsSessionsAndOverridesARunTimeChange(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		ctx := context.Background()
		s1, s2 := newStores()
		users := authcore.NewStoreUsers(s1, clk.Now)
		mustAdd(t, users, storeUser(t, "1001", "alice@example.com", ""))
		gw := storeServices(t, s2, authcore.NewStoreUsers(s2, clk.Now), clk)

		res, err := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
		if err != nil {
			t.Fatal(err)
		}
		const runTime, admin = "Run-Time-Pass-1", "Admin-Set-Pass-2"
		changed, err := gw.Passwords.Change(ctx, res.Session, testPassword, runTime)
		if err != nil {
			t.Fatal(err)
		}
		hash, err := authcore.HashPassword(admin)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := users.Update(ctx, "1001", func(u *authcore.User) error { u.Password = hash; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, _, err := gw.Sessions.Authenticate(ctx, changed.Token); !errors.Is(err, authcore.ErrInvalidToken) {
			t.Fatalf("a session outlived the new password: %v", err)
		}
		for _, pw := range []string{testPassword, runTime} {
			if _, err := gw.Sessions.Login(ctx, "alice@example.com", pw); !errors.Is(err, authcore.ErrInvalidCredentials) {
				t.Fatalf("old password %q: %v", pw, err)
			}
		}
		res, err = gw.Sessions.Login(ctx, "alice@example.com", admin)
		if err != nil {
			t.Fatalf("new password: %v", err)
		}
		// The passwords before it are in the history.
		_, err = gw.Passwords.Change(ctx, res.Session, admin, runTime)
		wantCode(t, err, authcore.CodePasswordAlreadyUsed)

		// A forced change goes into the record and is honoured.
		if _, err := users.Update(ctx, "1001", func(u *authcore.User) error { u.ForcePasswordChange = true; return nil }); err != nil {
			t.Fatal(err)
		}
		var expired *authcore.PasswordExpiredError
		if _, err := gw.Sessions.Login(ctx, "alice@example.com", admin); !errors.As(err, &expired) {
			t.Fatalf("forced password change: %v", err)
		}
	})
}

func TestStoreUsersFactorsChangeWhereRunTimeEnrolmentsGo(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		ctx := context.Background()
		s, _ := newStores()
		users := authcore.NewStoreUsers(s, clk.Now)
		u := storeUser(t, "1001", "alice@example.com", "")
		u.Factors.OTP = []string{"SMS"}
		mustAdd(t, users, u)
		gw := storeServices(t, s, users, clk)
		res, err := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := users.Update(ctx, "1001", func(u *authcore.User) error {
			u.Factors.Push = append(u.Factors.Push, "BIOMETRIC")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := users.Update(ctx, "1001", func(u *authcore.User) error { u.Factors.OTP = nil; return nil }); err != nil {
			t.Fatal(err)
		}
		factors, err := gw.StepUp.Factors(ctx, res.Session)
		if err != nil || len(factors) != 1 || factors[0] != (authcore.FactorStatus{Type: "PUSH", Status: "ACTIVE", Channel: "BIOMETRIC"}) {
			t.Fatalf("factors = %+v, %v", factors, err)
		}
		list, err := users.List(ctx)
		if err != nil || len(list) != 1 || len(list[0].Factors.OTP) != 0 || len(list[0].Factors.Push) != 1 {
			t.Fatalf("list = %+v, %v", list, err)
		}
		// A new factor ends no session; disabling the user does.
		if _, _, err := gw.Sessions.Authenticate(ctx, res.Token); err != nil {
			t.Fatalf("enrolment ended the session: %v", err)
		}
		if _, err := users.Update(ctx, "1001", func(u *authcore.User) error { u.Disabled = true; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, _, err := gw.Sessions.Authenticate(ctx, res.Token); !errors.Is(err, authcore.ErrInvalidToken) {
			t.Fatalf("a session outlived disabling the user: %v", err)
		}
		if _, err := gw.Sessions.Login(ctx, "alice@example.com", testPassword); !errors.Is(err, authcore.ErrInvalidCredentials) {
			t.Fatalf("disabled user logged in: %v", err)
		}
	})
}

func TestStoreUsersDeleteEndsSessionsAndFreesTheKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		ctx := context.Background()
		s1, s2 := newStores()
		users := authcore.NewStoreUsers(s1, clk.Now)
		mustAdd(t, users, storeUser(t, "1001", "alice@example.com", "alice"))
		gw := storeServices(t, s2, authcore.NewStoreUsers(s2, clk.Now), clk)
		res, err := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
		if err != nil {
			t.Fatal(err)
		}
		if err := users.Delete(ctx, "1001"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := gw.Sessions.Authenticate(ctx, res.Token); !errors.Is(err, authcore.ErrInvalidToken) {
			t.Fatalf("a session outlived its user: %v", err)
		}
		if _, err := gw.Sessions.Login(ctx, "alice@example.com", testPassword); !errors.Is(err, authcore.ErrInvalidCredentials) {
			t.Fatalf("deleted user logged in: %v", err)
		}
		if err := users.Delete(ctx, "1001"); !errors.Is(err, authcore.ErrUserNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if list, err := users.List(ctx); err != nil || len(list) != 0 {
			t.Fatalf("list after delete = %+v, %v", list, err)
		}
		mustAdd(t, users, storeUser(t, "1002", "alice@example.com", "alice"))
		u, err := users.UserByName(ctx, "alice")
		wantUser(t, u, err, "1002")
	})
}

func TestStoreUsersTakeOverClaimsLeftBehind(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		ctx := context.Background()
		s, _ := newStores()
		users := authcore.NewStoreUsers(s, clk.Now)
		mustAdd(t, users, storeUser(t, "1001", "alice@example.com", ""))
		// An interrupted CLI run left claims: one for a user that was never
		// stored, one for a live user that does not have the email.
		for key, owner := range map[string]string{"ue:{ghost@example.com}": "1999 00", "ue:{stale@example.com}": "1001 00"} {
			if err := s.Set(ctx, key, []byte(owner), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		u, err := users.UserByEmail(ctx, "stale@example.com")
		wantNotFound(t, u, err)
		mustAdd(t, users, storeUser(t, "1002", "ghost@example.com", ""))
		mustAdd(t, users, storeUser(t, "1003", "stale@example.com", ""))
		u, err = users.UserByEmail(ctx, "stale@example.com")
		wantUser(t, u, err, "1003")
		u, err = users.UserByEmail(ctx, "ghost@example.com")
		wantUser(t, u, err, "1002")
	})
}

func TestStoreUsersExpireAfter400DaysUnlessRead(t *testing.T) {
	ctx := context.Background()
	clk := authtest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store := memory.New(clk.Now)
	t.Cleanup(func() { store.Close() })
	users := authcore.NewStoreUsers(store, clk.Now)
	mustAdd(t, users, storeUser(t, "1001", "used@example.com", "used"))
	mustAdd(t, users, storeUser(t, "1002", "idle@example.com", "idle"))

	// Read 31 days on: the record and its keys are written anew.
	clk.Advance(31 * 24 * time.Hour)
	u, err := users.UserByEmail(ctx, "used@example.com")
	wantUser(t, u, err, "1001")
	clk.Advance(authcore.AccountDataTTL - 30*24*time.Hour)
	u, err = users.UserByEmail(ctx, "idle@example.com")
	wantNotFound(t, u, err)
	u, err = users.UserByID(ctx, "1002")
	wantNotFound(t, u, err)
	for _, find := range []func() (*authcore.User, error){
		func() (*authcore.User, error) { return users.UserByEmail(ctx, "used@example.com") },
		func() (*authcore.User, error) { return users.UserByName(ctx, "USED") },
	} {
		u, err := find()
		wantUser(t, u, err, "1001")
	}
	if list, err := users.List(ctx); err != nil || len(list) != 1 || list[0].ID != "1001" {
		t.Fatalf("list = %+v, %v", list, err)
	}
}

func TestCombinedUsersFileWinsAClashAndHidesTheStoredUser(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		ctx := context.Background()
		s, _ := newStores()
		stored := authcore.NewStoreUsers(s, clk.Now)
		file, err := authcore.NewStaticUsers([]authcore.User{*storeUser(t, "1001", "alice@example.com", "alice")})
		if err != nil {
			t.Fatal(err)
		}
		// 1002 shares alice's email: ignored as a whole, even by its id.
		mustAdd(t, stored, storeUser(t, "1002", "ALICE@example.com", "alice2"))
		// 1001 in the store, by another email: ignored by that email too.
		mustAdd(t, stored, storeUser(t, "1001", "imposter@example.com", ""))
		mustAdd(t, stored, storeUser(t, "1003", "carol@example.com", "carol"))
		users := authcore.NewCombinedUsers(file, stored)

		u, err := users.UserByEmail(ctx, "alice@example.com")
		wantUser(t, u, err, "1001")
		if u.UserName != "alice" {
			t.Fatalf("got the stored alice: %+v", u)
		}
		u, err = users.UserByID(ctx, "1001")
		wantUser(t, u, err, "1001")
		if u.Email != "alice@example.com" {
			t.Fatalf("got the stored 1001: %+v", u)
		}
		for _, find := range []func() (*authcore.User, error){
			func() (*authcore.User, error) { return users.UserByID(ctx, "1002") },
			func() (*authcore.User, error) { return users.UserByName(ctx, "alice2") },
			func() (*authcore.User, error) { return users.UserByEmail(ctx, "imposter@example.com") },
			func() (*authcore.User, error) { return users.UserByEmail(ctx, "nobody@example.com") },
		} {
			u, err := find()
			wantNotFound(t, u, err)
		}
		u, err = users.UserByName(ctx, "Carol")
		wantUser(t, u, err, "1003")
		u, err = users.UserByID(ctx, "1003")
		wantUser(t, u, err, "1003")

		if err := file.Clash(storeUser(t, "1009", "x@example.com", "ALICE")); !errors.Is(err, authcore.ErrUserExists) {
			t.Fatalf("clash on userName: %v", err)
		}
		if err := file.Clash(storeUser(t, "1009", "x@example.com", "x")); err != nil {
			t.Fatalf("no clash: %v", err)
		}
	})
}

func TestStoreUsersKeysAllHaveATTLOnRedis(t *testing.T) {
	ctx := context.Background()
	srv := storetest.StartRedis(t)
	opts, err := redisstore.ParseURL("redis://" + srv.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	client := goredis.NewUniversalClient(opts)
	t.Cleanup(func() { client.Close() })
	users := authcore.NewStoreUsers(redisstore.New(client, "ttl:"), nil)
	mustAdd(t, users, storeUser(t, "1001", "Alice@example.com", "Alice"))
	if _, err := users.Update(ctx, "1001", func(u *authcore.User) error {
		u.Email, u.Factors.Push = "alice@new.example", []string{"AUTHY"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	keys := []string{authcore.Keys.User("1001"), authcore.Keys.UserEmail("alice@new.example"), authcore.Keys.UserName("alice"),
		authcore.Keys.UsersIndex(), authcore.Keys.Account("1001"), authcore.Keys.UserEmail("alice@example.com")}
	for _, key := range keys {
		ttl, err := client.PTTL(ctx, "ttl:"+key).Result()
		if err != nil || ttl <= 0 {
			t.Errorf("%s: ttl %v, %v; want a positive TTL", key, ttl, err)
		}
	}
	// Every record (user, lookup keys, index) lives AccountDataTTL.
	for _, key := range keys[:5] {
		if ttl := client.PTTL(ctx, "ttl:"+key).Val(); ttl < authcore.AccountDataTTL-time.Minute {
			t.Errorf("%s: ttl %v, want about %v", key, ttl, authcore.AccountDataTTL)
		}
	}
	if n := client.DBSize(ctx).Val(); n != int64(len(keys)) {
		t.Errorf("Redis holds %d keys, want the %d above", n, len(keys))
	}
}
