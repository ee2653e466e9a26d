package authcore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrUserExists is returned when a new or changed user would take an id,
// email or userName that another user holds.
var ErrUserExists = errors.New("user exists")

// StoreUsers is a UserDirectory kept in the Store (`users store`), so that
// a user added with `authgate user add` can log in at once on every node.
//
// Keys (see StoreKeys), all with the TTL AccountDataTTL (the store keeps
// nothing forever): Keys.User holds the JSON of User, plus "w" (written,
// ms); Keys.UserEmail and Keys.UserName hold "<id> <claim nonce>", who
// holds the email or userName; Keys.UsersIndex is the set of the ids, for
// List (no KEYS or SCAN).
//
// Reading a user whose record was written more than 30 days ago rewrites
// it and its lookup keys, so a user in use never expires; a user nobody
// reads or changes for 400 days does. Run-time account data (factors
// enrolled, passwords changed) overlays these records as it overlays the
// users file (see account.go); Update and List take it into account.
//
// Every change is atomic against concurrent CLI runs and gateways: each key
// is only ever replaced with Store.Swap. An email or userName is claimed
// with Swap(old=nil) before a user takes it, so of concurrent claims one
// wins; the loser is refused with ErrUserExists. A claim is honoured while
// the claimant's record names the key (as its email or userName, or in
// "claiming" while a change is under way); a claim left behind by a
// deleted user or an interrupted change is taken over. Lookups check the
// record itself, so a stale claim never leads to the wrong user.
type StoreUsers struct {
	store Store
	now   func() time.Time
}

// NewStoreUsers returns the users kept in store; now is the clock (nil:
// time.Now).
func NewStoreUsers(store Store, now func() time.Time) *StoreUsers {
	if now == nil {
		now = time.Now
	}
	return &StoreUsers{store: store, now: now}
}

// releasedClaimTTL is how long a released claim's empty value lingers; an
// empty claim is free to take.
const releasedClaimTTL = time.Minute

// unknownUserKey is read in place of a user record when a lookup finds no
// user, so that an unknown user costs the round trips a known one does. No
// id (digits) makes it.
var unknownUserKey = Keys.User("-")

// storedUser is the record at u:{id}.
type storedUser struct {
	User
	// Claiming are lookup keys a change under way is claiming for the
	// user: they are honoured as the user's before the record names them.
	Claiming []string `json:"claiming,omitempty"`
	Written  int64    `json:"w"`
}

// lookupKeys are the email and userName keys the record names.
func (r *storedUser) lookupKeys() []string {
	keys := []string{Keys.UserEmail(r.Email)}
	if r.UserName != "" {
		keys = append(keys, Keys.UserName(r.UserName))
	}
	return keys
}

// holds reports whether the record backs a claim on key.
func (r *storedUser) holds(key string) bool {
	return slices.Contains(r.lookupKeys(), key) || slices.Contains(r.Claiming, key)
}

func (s *StoreUsers) encode(u User, claiming []string) []byte {
	data, _ := json.Marshal(storedUser{User: u, Claiming: claiming, Written: s.now().UnixMilli()})
	return data
}

// load reads the record of id; ErrUserNotFound when there is none.
func (s *StoreUsers) load(ctx context.Context, id string) (*storedUser, []byte, error) {
	raw, err := s.store.Get(ctx, Keys.User(id))
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrUserNotFound
	} else if err != nil {
		return nil, nil, err
	}
	rec := &storedUser{}
	if err := json.Unmarshal(raw, rec); err != nil {
		return nil, nil, fmt.Errorf("decoding user %s: %w", id, err)
	}
	return rec, raw, nil
}

// UserByID implements UserDirectory.
func (s *StoreUsers) UserByID(ctx context.Context, id string) (*User, error) {
	rec, raw, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.refresh(ctx, rec, raw); err != nil {
		return nil, err
	}
	return &rec.User, nil
}

// UserByEmail implements UserDirectory.
func (s *StoreUsers) UserByEmail(ctx context.Context, email string) (*User, error) {
	return s.lookup(ctx, Keys.UserEmail(email))
}

// UserByName implements UserDirectory.
func (s *StoreUsers) UserByName(ctx context.Context, userName string) (*User, error) {
	return s.lookup(ctx, Keys.UserName(userName))
}

func (s *StoreUsers) lookup(ctx context.Context, key string) (*User, error) {
	claim, err := s.store.Get(ctx, key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	id := claimOwner(claim)
	if id == "" {
		if _, err := s.store.Get(ctx, unknownUserKey); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, ErrUserNotFound
	}
	rec, raw, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(rec.lookupKeys(), key) {
		// A claim left behind: the user no longer has this email or name.
		return nil, ErrUserNotFound
	}
	if err := s.refresh(ctx, rec, raw); err != nil {
		return nil, err
	}
	return &rec.User, nil
}

// refresh restarts the TTLs of a record read more than refreshAfter after
// it was written, and of its lookup keys and index entry. Losing to a
// concurrent change is fine: that change wrote the record anew.
func (s *StoreUsers) refresh(ctx context.Context, rec *storedUser, raw []byte) error {
	if s.now().Sub(time.UnixMilli(rec.Written)) <= refreshAfter {
		return nil
	}
	ok, err := s.store.Swap(ctx, Keys.User(rec.ID), raw, s.encode(rec.User, rec.Claiming), AccountDataTTL)
	if err != nil || !ok {
		return err
	}
	return s.touch(ctx, rec)
}

// touch restarts the TTLs of the record's lookup keys (those it still
// holds) and of the index.
func (s *StoreUsers) touch(ctx context.Context, rec *storedUser) error {
	if err := s.store.AddMember(ctx, Keys.UsersIndex(), rec.ID, AccountDataTTL); err != nil {
		return err
	}
	for _, key := range rec.lookupKeys() {
		claim, err := s.store.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if claimOwner(claim) == rec.ID {
			if _, err := s.store.Swap(ctx, key, claim, claim, AccountDataTTL); err != nil {
				return err
			}
		}
	}
	return nil
}

// claimOwner returns the id a lookup key's value names; "" for a missing
// or released claim.
func claimOwner(claim []byte) string {
	id, _, _ := strings.Cut(string(claim), " ")
	return id
}

// claim makes key name id. Each claim carries a fresh nonce, so that a
// takeover decided on an older look at the key fails once the key has been
// claimed again.
func (s *StoreUsers) claim(ctx context.Context, key, id string) error {
	for range maxAccountRetries {
		nonce := make([]byte, 8)
		_, _ = rand.Read(nonce)
		mine := []byte(id + " " + hex.EncodeToString(nonce))
		if ok, err := s.store.Swap(ctx, key, nil, mine, AccountDataTTL); err != nil || ok {
			return err
		}
		current, err := s.store.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if owner := claimOwner(current); owner != "" && owner != id {
			rec, _, err := s.load(ctx, owner)
			switch {
			case err == nil && rec.holds(key):
				return fmt.Errorf("%w: %s is taken by user %s", ErrUserExists, describeKey(key), owner)
			case err != nil && !errors.Is(err, ErrUserNotFound):
				return err
			}
		}
		if ok, err := s.store.Swap(ctx, key, current, mine, AccountDataTTL); err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("%w: %s claimed concurrently too often", ErrUnavailable, describeKey(key))
}

// release gives up id's claim on key, if it still holds it.
func (s *StoreUsers) release(ctx context.Context, key, id string) error {
	claim, err := s.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if claimOwner(claim) != id {
		return nil
	}
	_, err = s.store.Swap(ctx, key, claim, []byte{}, releasedClaimTTL)
	return err
}

// describeKey names a lookup key for an error message.
func describeKey(key string) string {
	_, rest, _ := strings.Cut(key, "{")
	value := strings.TrimSuffix(rest, "}")
	if spec, _ := KeySpecOf(key); spec.Name == "user_name" {
		return fmt.Sprintf("userName %q", value)
	}
	return fmt.Sprintf("email %q", value)
}

// Add stores a new user after ValidateUser. It returns ErrUserExists when
// another stored user has the id, email or userName.
func (s *StoreUsers) Add(ctx context.Context, u *User) error {
	if err := ValidateUser(u); err != nil {
		return err
	}
	// Indexed first, so that List never misses a user; List skips ids
	// without a record.
	if err := s.store.AddMember(ctx, Keys.UsersIndex(), u.ID, AccountDataTTL); err != nil {
		return err
	}
	rec := &storedUser{User: *u}
	raw := s.encode(rec.User, nil)
	if ok, err := s.store.Swap(ctx, Keys.User(u.ID), nil, raw, AccountDataTTL); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%w: id %s is taken", ErrUserExists, u.ID)
	}
	// The record names its keys before they are claimed, so a claim of
	// ours is never mistaken for one left behind.
	var claimed []string
	for _, key := range rec.lookupKeys() {
		if err := s.claim(ctx, key, u.ID); err != nil {
			s.undoAdd(ctx, u.ID, raw, claimed)
			return err
		}
		claimed = append(claimed, key)
	}
	return nil
}

// undoAdd removes a user whose keys could not all be claimed; best effort,
// as the add fails anyway and what is left is taken over later.
func (s *StoreUsers) undoAdd(ctx context.Context, id string, raw []byte, claimed []string) {
	for _, key := range claimed {
		_ = s.release(ctx, key, id)
	}
	if now, err := s.store.Get(ctx, Keys.User(id)); err == nil && string(now) == string(raw) {
		_ = s.store.Delete(ctx, Keys.User(id))
	}
}

// Update changes a stored user atomically. change sees the user as the
// gateway does (run-time account data applied) and edits it; an error
// aborts, changing nothing. The result must pass ValidateUser, and its
// email and userName must be free (ErrUserExists). The id cannot change.
//
// Factors go where run-time enrolments go (the account data), so that the
// two never overwrite each other; the record keeps those given to Add. A
// new password, expiry or force-change flag goes into the record and
// clears a password changed (or rehashed) at run time; the old password
// joins the password history. A new password or disabling the user ends every
// session of the user, on every node.
func (s *StoreUsers) Update(ctx context.Context, id string, change func(u *User) error) (*User, error) {
	endSessions := false
	for range maxAccountRetries {
		rec, raw, err := s.load(ctx, id)
		if err != nil {
			return nil, err
		}
		acct, acctRaw, err := s.loadAccount(ctx, id)
		if err != nil {
			return nil, err
		}
		before := withAccountData(rec.User, acct)
		next := cloneUser(before)
		if err := change(&next); err != nil {
			return nil, err
		}
		next.ID = id
		if err := ValidateUser(&next); err != nil {
			return nil, err
		}
		endSessions = endSessions || next.Password != before.Password || (next.Disabled && !before.Disabled)

		stored, acctChanged := placeChange(rec, acct, &before, &next)
		final := &storedUser{User: stored}
		var added []string
		for _, key := range final.lookupKeys() {
			if !slices.Contains(rec.lookupKeys(), key) {
				added = append(added, key)
			}
		}
		if len(added) > 0 {
			if raw, err = s.claimFor(ctx, rec, raw, added); errors.Is(err, errRecordChanged) {
				continue
			} else if err != nil {
				return nil, err
			}
		}
		if ok, err := s.store.Swap(ctx, Keys.User(id), raw, s.encode(stored, nil), AccountDataTTL); err != nil {
			return nil, err
		} else if !ok {
			continue
		}
		for _, key := range append(rec.lookupKeys(), rec.Claiming...) {
			if !final.holds(key) {
				if err := s.release(ctx, key, id); err != nil {
					return nil, err
				}
			}
		}
		if acctChanged {
			acct.Written = s.now().UnixMilli()
			data, _ := json.Marshal(acct)
			if ok, err := s.store.Swap(ctx, Keys.Account(id), acctRaw, data, AccountDataTTL); err != nil {
				return nil, err
			} else if !ok {
				// A run-time change came in: apply this one again on top.
				continue
			}
		}
		if err := s.touch(ctx, final); err != nil {
			return nil, err
		}
		if endSessions {
			if err := endAll(ctx, s.store, id); err != nil {
				return nil, err
			}
		}
		return &next, nil
	}
	return nil, fmt.Errorf("%w: user %s changed concurrently too often", ErrUnavailable, id)
}

// placeChange splits next, the changed user, between the record (the
// stored user it returns) and the run-time account data (acct, changed in
// place; it reports whether it did). before is the user as change saw it.
func placeChange(rec *storedUser, acct *accountRecord, before, next *User) (User, bool) {
	stored := cloneUser(*next)
	stored.Factors = rec.Factors
	acctChanged := false
	if !slices.Equal(next.Factors.OTP, before.Factors.OTP) || !slices.Equal(next.Factors.Push, before.Factors.Push) {
		acct.Factors = &Factors{OTP: slices.Clone(next.Factors.OTP), Push: slices.Clone(next.Factors.Push)}
		acctChanged = true
	}
	if !passwordChanged(before, next) {
		stored.Password, stored.PasswordExpires, stored.ForcePasswordChange = rec.Password, rec.PasswordExpires, rec.ForcePasswordChange
		return stored, acctChanged
	}
	if next.Password == before.Password && acct.Password == "" {
		// Only the expiry or the force flag: the record keeps its hash,
		// and a rehash of it stays where it is, in the account data.
		stored.Password = rec.Password
		return stored, acctChanged
	}
	if next.Password != before.Password {
		// As a run-time change keeps it: the current password and the
		// ones before it, up to PasswordHistoryLen.
		previous := append([]string{before.Password}, acct.History...)
		acct.History = previous[:min(len(previous), PasswordHistoryLen-1)]
		acctChanged = true
	}
	if acct.Rehash != nil {
		acct.Rehash = nil
		acctChanged = true
	}
	if acct.Password != "" {
		acct.Password = ""
		acctChanged = true
	}
	return stored, acctChanged
}

var errRecordChanged = errors.New("user record changed")

// claimFor claims keys for the user of rec: first the record lists them
// in Claiming (so the claims are honoured), then each is claimed. On
// ErrUserExists the keys are released again. It returns the record's new
// raw value, or errRecordChanged when another change came in first.
func (s *StoreUsers) claimFor(ctx context.Context, rec *storedUser, raw []byte, keys []string) ([]byte, error) {
	claiming := s.encode(rec.User, keys)
	if ok, err := s.store.Swap(ctx, Keys.User(rec.ID), raw, claiming, AccountDataTTL); err != nil {
		return nil, err
	} else if !ok {
		return nil, errRecordChanged
	}
	for i, key := range keys {
		if err := s.claim(ctx, key, rec.ID); err != nil {
			for _, k := range keys[:i] {
				_ = s.release(ctx, k, rec.ID)
			}
			_, _ = s.store.Swap(ctx, Keys.User(rec.ID), claiming, s.encode(rec.User, nil), AccountDataTTL)
			return nil, err
		}
	}
	return claiming, nil
}

// passwordChanged reports whether next sets the password, its expiry or
// the force-change flag anew.
func passwordChanged(before, next *User) bool {
	return next.Password != before.Password || next.ForcePasswordChange != before.ForcePasswordChange ||
		(next.PasswordExpires == nil) != (before.PasswordExpires == nil) ||
		(next.PasswordExpires != nil && !next.PasswordExpires.Equal(*before.PasswordExpires))
}

// Delete removes a stored user, its run-time account data and its lookup
// keys, and ends every session of the user on every node.
func (s *StoreUsers) Delete(ctx context.Context, id string) error {
	rec, _, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	if err := s.store.Delete(ctx, Keys.User(id)); err != nil {
		return err
	}
	for _, key := range append(rec.lookupKeys(), rec.Claiming...) {
		if err := s.release(ctx, key, id); err != nil {
			return err
		}
	}
	if err := s.store.Delete(ctx, Keys.Account(id)); err != nil {
		return err
	}
	return endAll(ctx, s.store, id)
}

// List returns every stored user as the gateway sees it (run-time account
// data applied), ordered by id.
func (s *StoreUsers) List(ctx context.Context) ([]User, error) {
	ids, err := s.store.Members(ctx, Keys.UsersIndex())
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ids, compareIDs)
	users := []User{}
	for _, id := range ids {
		rec, _, err := s.load(ctx, id)
		if errors.Is(err, ErrUserNotFound) {
			continue // deleted, or an add that failed
		} else if err != nil {
			return nil, err
		}
		acct, _, err := s.loadAccount(ctx, id)
		if err != nil {
			return nil, err
		}
		users = append(users, withAccountData(rec.User, acct))
	}
	return users, nil
}

// compareIDs orders digit strings by value.
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// loadAccount reads the user's run-time account data; raw is nil when
// there is none.
func (s *StoreUsers) loadAccount(ctx context.Context, id string) (*accountRecord, []byte, error) {
	acct := &accountRecord{}
	raw, err := s.store.Get(ctx, Keys.Account(id))
	if errors.Is(err, ErrNotFound) {
		return acct, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal(raw, acct); err != nil {
		return nil, nil, fmt.Errorf("decoding account data: %w", err)
	}
	return acct, raw, nil
}

// withAccountData applies run-time account data to u as the gateway's
// loadAccount does.
func withAccountData(u User, acct *accountRecord) User {
	u = cloneUser(u)
	acct.applyTo(&u)
	return u
}

func cloneUser(u User) User {
	u.Identities = slices.Clone(u.Identities)
	u.Factors = Factors{OTP: slices.Clone(u.Factors.OTP), Push: slices.Clone(u.Factors.Push)}
	if u.PasswordExpires != nil {
		t := *u.PasswordExpires
		u.PasswordExpires = &t
	}
	return u
}

// CombinedUsers consults the users file and the users in the store
// (`users_file` and `users store` together). The file wins: it is reviewed
// configuration. A stored user that shares its id, email or userName with
// a file user is ignored as a whole, so every id, email and userName
// names one user, whichever way it is looked up.
type CombinedUsers struct {
	file  *StaticUsers
	store UserDirectory
}

// NewCombinedUsers returns the users of file and store, file first.
func NewCombinedUsers(file *StaticUsers, store UserDirectory) *CombinedUsers {
	return &CombinedUsers{file: file, store: store}
}

// UserByEmail implements UserDirectory. The store is asked even when the
// file has the user, so that a login's timing does not tell the sources
// apart.
func (c *CombinedUsers) UserByEmail(ctx context.Context, email string) (*User, error) {
	return c.both(ctx, email, c.file.UserByEmail, c.store.UserByEmail)
}

// UserByName implements UserDirectory, asking both sources as UserByEmail
// does.
func (c *CombinedUsers) UserByName(ctx context.Context, userName string) (*User, error) {
	return c.both(ctx, userName, c.file.UserByName, c.store.UserByName)
}

// HashParams returns those of the users file's hashes. Stored users'
// hashes are authgate's own, with the default parameters; any other a
// stored user brings joins when first checked (see Passwords).
func (c *CombinedUsers) HashParams() []HashParams { return c.file.HashParams() }

// UserByID implements UserDirectory.
func (c *CombinedUsers) UserByID(ctx context.Context, id string) (*User, error) {
	if u, err := c.file.UserByID(ctx, id); err == nil {
		return u, nil
	}
	return c.stored(c.store.UserByID(ctx, id))
}

type findFunc func(context.Context, string) (*User, error)

func (c *CombinedUsers) both(ctx context.Context, key string, inFile, inStore findFunc) (*User, error) {
	stored, err := c.stored(inStore(ctx, key))
	if u, ferr := inFile(ctx, key); ferr == nil {
		return u, nil
	}
	return stored, err
}

// stored drops a stored user that clashes with a file user.
func (c *CombinedUsers) stored(u *User, err error) (*User, error) {
	if err != nil {
		return nil, err
	}
	if c.file.Clash(u) != nil {
		return nil, ErrUserNotFound
	}
	return u, nil
}

// Clash reports (ErrUserExists) whether u shares its id, email or
// userName with a user of s.
func (s *StaticUsers) Clash(u *User) error {
	switch {
	case s.byID[u.ID] != nil:
		return fmt.Errorf("%w: the users file has a user with id %s", ErrUserExists, u.ID)
	case s.byEmail[strings.ToLower(u.Email)] != nil:
		return fmt.Errorf("%w: the users file has a user with email %q", ErrUserExists, u.Email)
	case u.UserName != "" && s.byName[strings.ToLower(u.UserName)] != nil:
		return fmt.Errorf("%w: the users file has a user with userName %q", ErrUserExists, u.UserName)
	}
	return nil
}

var (
	_ UserDirectory = (*StoreUsers)(nil)
	_ UserDirectory = (*CombinedUsers)(nil)
)
