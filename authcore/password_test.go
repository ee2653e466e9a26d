package authcore_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/authcore"
)

// costOf names the scheme and cost of a hash, read independently of the
// code under test: what checking a password against it costs.
func costOf(hash string) string {
	if c, err := bcrypt.Cost([]byte(hash)); err == nil {
		return fmt.Sprintf("bcrypt cost=%d", c)
	}
	if parts := strings.Split(hash, "$"); len(parts) == 6 && parts[1] == "argon2id" {
		key, _ := base64.RawStdEncoding.DecodeString(parts[5])
		return fmt.Sprintf("argon2id %s len=%d", parts[3], len(key))
	}
	return "not a hash"
}

// argonHash makes an argon2id PHC string with the given parameters.
func argonHash(t testing.TB, password string, memory, time uint32) string {
	t.Helper()
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, time, memory, 1, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=1$%s$%s", memory, time, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// recordingHasher does the real hash work and records, for every password
// verification, the hash it was against.
type recordingHasher struct {
	mu     sync.Mutex
	hashes []string
}

func (r *recordingHasher) Hash(password string, p authcore.HashParams) (string, error) {
	return authcore.DefaultHasher.Hash(password, p)
}

func (r *recordingHasher) Verify(hash, password string) bool {
	r.mu.Lock()
	r.hashes = append(r.hashes, hash)
	r.mu.Unlock()
	return authcore.VerifyPassword(hash, password)
}

// take returns the sorted costs of the verifications since the last take,
// and the hashes they were against.
func (r *recordingHasher) take() (costs, hashes []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	hashes, r.hashes = r.hashes, nil
	for _, h := range hashes {
		costs = append(costs, costOf(h))
	}
	slices.Sort(costs)
	return costs, hashes
}

// mixedUsers is a users file that mixes schemes and costs: bcrypt, argon2id
// with small parameters, and argon2id with the parameters of new hashes.
func mixedUsers(t *testing.T, defaultHash string) *authcore.StaticUsers {
	t.Helper()
	b, _ := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost+1)
	id := []authcore.Identity{{Type: "CONSUMER", ID: "2001"}}
	users, err := authcore.NewStaticUsers([]authcore.User{
		{ID: "1001", CredentialsType: "ROOT", Email: "bcrypt@example.com", UserName: "bcrypt", Password: string(b), Identities: id},
		{ID: "1002", CredentialsType: "ROOT", Email: "argon@example.com", UserName: "argon", Password: argonHash(t, testPassword, 128, 1), Identities: id},
		{ID: "1003", CredentialsType: "ROOT", Email: "new@example.com", UserName: "new", Password: defaultHash, Identities: id},
		{ID: "1004", CredentialsType: "ROOT", Email: "off@example.com", UserName: "off", Password: string(b), Identities: id, Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return users
}

func mixedServices(t *testing.T, store authcore.Store, clk *clock, rh *recordingHasher) *authcore.Services {
	t.Helper()
	hash, err := authcore.DefaultHasher.Hash(testPassword, testHashParams)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	gw, err := authcore.New(authcore.Options{Store: store, Users: mixedUsers(t, hash),
		Tokens: authcore.NewTokens("test", key, clk.Now), Now: clk.Now, Hasher: rh, PasswordHash: testHashParams,
		RateLimits: map[string]authcore.RateLimit{}})
	if err != nil {
		t.Fatal(err)
	}
	return gw
}

// Every login, failed or not and whoever it names, verifies the same
// multiset of hash schemes and costs.
func TestLoginsDoTheSameHashWorkWhateverTheUsersHash(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		store, _ := newStores()
		rh := &recordingHasher{}
		gw := mixedServices(t, store, clk, rh)
		ctx := context.Background()
		var want []string
		for _, tc := range []struct {
			name, email, password string
			ok                    bool
		}{
			{"unknown email", "nobody@example.com", testPassword, false},
			{"wrong password, bcrypt user", "bcrypt@example.com", "Wrong-Horse-1", false},
			{"wrong password, small argon2id user", "argon@example.com", "Wrong-Horse-1", false},
			{"wrong password, default argon2id user", "new@example.com", "Wrong-Horse-1", false},
			{"disabled user", "off@example.com", testPassword, false},
			{"right password, default argon2id user", "new@example.com", testPassword, true},
			{"unknown email again", "nobody2@example.com", testPassword, false},
		} {
			_, err := gw.Sessions.Login(ctx, tc.email, tc.password)
			if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, authcore.ErrInvalidCredentials)) {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got, _ := rh.take()
			if want == nil {
				want = got
				// One hash of each parameter set: the file's three, the default among them.
				if len(want) != 3 {
					t.Fatalf("hash work of an unknown email: %v, want one of each of the file's schemes and costs", want)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: hash work %v, want %v (as for an unknown email)", tc.name, got, want)
			}
		}
	})
}

// The Manage API's validate/password follows the same rule.
func TestManageValidatePasswordDoesTheSameHashWorkWhateverTheUsersHash(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		store, _ := newStores()
		rh := &recordingHasher{}
		gw := mixedServices(t, store, clk, rh)
		ctx := context.Background()
		var want []string
		for _, name := range []string{"nobody", "bcrypt", "argon", "new", "off"} {
			_, err := gw.ManageMFA.ValidatePassword(authcore.WithRequestInfo(ctx, "", "192.0.2.1"), authcore.ValidatePasswordRequest{UserName: name, Password: "Wrong-Horse-1"})
			if !errors.Is(err, authcore.ErrInvalidCredentials) {
				t.Fatalf("%s: %v", name, err)
			}
			got, _ := rh.take()
			if want == nil {
				want = got
			}
			if !slices.Equal(got, want) {
				t.Errorf("user %s: hash work %v, want %v (as for an unknown user)", name, got, want)
			}
		}
	})
}

// accountPassword reads the password hash kept for the user in the store's
// account data, "" when there is none.
func accountPassword(t *testing.T, store authcore.Store, id string) string {
	t.Helper()
	raw, err := store.Get(context.Background(), authcore.Keys.Account(id))
	if errors.Is(err, authcore.ErrNotFound) {
		return ""
	} else if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(raw), "$argon2id$")
	if i < 0 {
		return string(raw)
	}
	return strings.SplitN(string(raw[i:]), `"`, 2)[0]
}

// A login with a hash that is not the current default stores a fresh
// argon2id hash; the user logs in with it afterwards, keeps the sessions
// and the password history, and the old hash is not checked again.
func TestLoginRehashesToTheCurrentDefault(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, clk *clock) {
		for _, kind := range []string{"users file", "users store"} {
			t.Run(kind, func(t *testing.T) {
				store, _ := newStores()
				old, _ := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
				u := authcore.User{ID: "1001", CredentialsType: "ROOT", Email: "old@example.com", Password: string(old),
					Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2001"}}}
				var dir authcore.UserDirectory
				if kind == "users file" {
					dir, _ = authcore.NewStaticUsers([]authcore.User{u})
				} else {
					su := authcore.NewStoreUsers(store, clk.Now)
					u.ID = fmt.Sprint(time.Now().UnixNano() % 1e9)
					mustAdd(t, su, &u)
					dir = su
				}
				rh := &recordingHasher{}
				key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
				gw, err := authcore.New(authcore.Options{Store: store, Users: dir, Tokens: authcore.NewTokens("test", key, clk.Now),
					Now: clk.Now, Hasher: rh, RateLimits: map[string]authcore.RateLimit{}})
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				first, err := gw.Sessions.Login(ctx, "old@example.com", testPassword)
				if err != nil {
					t.Fatal(err)
				}
				stored := accountPassword(t, store, u.ID)
				if !strings.HasPrefix(stored, "$argon2id$v=19$m=19456,t=2,p=1$") || !authcore.VerifyPassword(stored, testPassword) {
					t.Fatalf("stored after the login: %q, want an argon2id hash of the password", stored)
				}
				rh.take()
				if _, err := gw.Sessions.Login(ctx, "old@example.com", testPassword); err != nil {
					t.Fatalf("login after the rehash: %v", err)
				}
				if _, hashes := rh.take(); slices.Contains(hashes, string(old)) || !slices.Contains(hashes, stored) {
					t.Fatalf("the second login checked %d hashes, the old bcrypt one among them: %v", len(hashes), slices.Contains(hashes, string(old)))
				}
				if _, _, err := gw.Sessions.Authenticate(ctx, first.Token); err != nil {
					t.Fatalf("the rehash ended the first session: %v", err)
				}
				raw, _ := store.Get(ctx, authcore.Keys.Account(u.ID))
				var rec map[string]any
				if err := json.Unmarshal(raw, &rec); err != nil || rec["h"] != nil || rec["p"] != nil {
					t.Fatalf("the rehash counts as a password change (a changed password or history): %v", rec)
				}
				// Not a change: the password may still be changed to a new one, and
				// not back to itself.
				if _, err := gw.Passwords.Change(ctx, first.Session, testPassword, testPassword); !isCode(err, authcore.CodePasswordAlreadyUsed) {
					t.Fatalf("change to the same password: %v", err)
				}
			})
		}
	})
}

func isCode(err error, code string) bool {
	var ce *authcore.ChallengeError
	return errors.As(err, &ce) && ce.Code == code
}
