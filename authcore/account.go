package authcore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// AccountDataTTL is how long run-time changes to an account (factors
// enrolled, later: password changes) are kept after they were last
// written or read. Every store key has a TTL, so these do too; an account
// in use refreshes it.
const AccountDataTTL = 400 * 24 * time.Hour

// refreshAfter is the age after which reading account data rewrites it to
// restart its TTL.
const refreshAfter = 30 * 24 * time.Hour

// accountRecord is what the gateway changed about a user at run time. The
// users file is never rewritten; these records overlay it.
type accountRecord struct {
	// Factors, when set, replaces the user's configured factors.
	Factors *Factors `json:"f,omitempty"`
	// PendingOTP are OTP channels whose enrolment awaits its code.
	PendingOTP []string `json:"po,omitempty"`
	// Password, when set, is the hash of a password changed at run time;
	// it replaces the configured one and clears its expiry.
	Password string `json:"p,omitempty"`
	// History holds the hashes of earlier passwords, newest first.
	History []string `json:"h,omitempty"`
	// Rehash is the password rehashed with the current parameters at a
	// login. It is no password change: it leaves the expiry, the history
	// and the sessions alone, and applies only while the hash it replaces
	// is still the user's.
	Rehash  *rehashRecord `json:"r,omitempty"`
	Written int64         `json:"w"`
}

// User returns the user with run-time changes applied.
func (g *Gateway) User(ctx context.Context, credentialsID string) (*User, error) {
	u, _, err := g.userAndAccount(ctx, credentialsID)
	return u, err
}

func (g *Gateway) userAndAccount(ctx context.Context, credentialsID string) (*User, *accountRecord, error) {
	u, err := g.users.UserByID(ctx, credentialsID)
	if errors.Is(err, ErrUserNotFound) {
		return nil, nil, fmt.Errorf("%w: user gone", ErrInvalidToken)
	} else if err != nil {
		return nil, nil, storeError(err)
	}
	return g.withAccount(ctx, u)
}

// UserByEmail finds a user by email (case-insensitive) with run-time
// changes applied; ErrUserNotFound when there is none.
func (g *Gateway) UserByEmail(ctx context.Context, email string) (*User, error) {
	return g.findUser(ctx, g.users.UserByEmail, email)
}

// UserByName finds a user by userName (case-insensitive) with run-time
// changes applied; ErrUserNotFound when there is none.
func (g *Gateway) UserByName(ctx context.Context, userName string) (*User, error) {
	return g.findUser(ctx, g.users.UserByName, userName)
}

func (g *Gateway) findUser(ctx context.Context, find func(context.Context, string) (*User, error), key string) (*User, error) {
	u, err := find(ctx, key)
	if errors.Is(err, ErrUserNotFound) {
		// Read an account record all the same, so that an unknown user
		// costs the store round trip a known one does.
		if _, err := g.store.Get(ctx, Keys.Account("0")); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, storeError(err)
		}
		return nil, ErrUserNotFound
	} else if err != nil {
		return nil, storeError(err)
	}
	u, _, err = g.withAccount(ctx, u)
	return u, err
}

// withAccount applies the user's run-time changes kept in the store.
func (g *Gateway) withAccount(ctx context.Context, u *User) (*User, *accountRecord, error) {
	u, rec, raw, err := g.loadAccount(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	if raw != nil && g.now().Sub(time.UnixMilli(rec.Written)) > refreshAfter {
		// Restart the record's TTL; losing to a concurrent change is fine,
		// since that change wrote it anew.
		if _, err := g.swapAccount(ctx, u.ID, raw, rec); err != nil {
			return nil, nil, err
		}
	}
	return u, rec, nil
}

// loadAccount reads the user's account record and applies it to u; raw is
// the stored bytes (nil when there is no record), for a later Swap.
func (g *Gateway) loadAccount(ctx context.Context, u *User) (*User, *accountRecord, []byte, error) {
	rec := &accountRecord{}
	raw, err := g.store.Get(ctx, Keys.Account(u.ID))
	switch {
	case errors.Is(err, ErrNotFound):
		return u, rec, nil, nil
	case err != nil:
		return nil, nil, nil, storeError(err)
	}
	if err := json.Unmarshal(raw, rec); err != nil {
		return nil, nil, nil, fmt.Errorf("decoding account data: %w", err)
	}
	rec.applyTo(u)
	return u, rec, raw, nil
}

// rehashRecord is a rehash of the password whose hash has digest Of.
type rehashRecord struct {
	Of   string `json:"of"`
	Hash string `json:"h"`
}

// applyTo puts the run-time changes on u: enrolled factors, a changed
// password (which clears the configured expiry) and a rehash of the
// password (which does not).
func (rec *accountRecord) applyTo(u *User) {
	if rec.Factors != nil {
		u.Factors = Factors{OTP: slices.Clone(rec.Factors.OTP), Push: slices.Clone(rec.Factors.Push)}
	}
	if rec.Password != "" {
		u.Password, u.PasswordExpires, u.ForcePasswordChange = rec.Password, nil, false
	}
	if rec.Rehash != nil && rec.Rehash.Of == hashDigest(u.Password) {
		u.passwordOrigin, u.Password = u.Password, rec.Rehash.Hash
	}
}

// errPasswordMoved: the password changed since it was checked.
var errPasswordMoved = errors.New("the password changed meanwhile")

// rehash replaces u's password hash, just checked against password, with
// one made with the current parameters, unless it already has them: so a
// deployment converges on one scheme. It goes into the account data, where
// run-time password changes of file and stored users live, and it is no
// change: the sessions, the expiry, the history and remembered devices
// stay as they are. A password changed meanwhile is left alone.
func (g *Gateway) rehash(ctx context.Context, u *User, password string) error {
	if g.passwords.Current(u.Password) {
		return nil
	}
	hash, err := g.passwords.Hash(password)
	if err != nil {
		return err
	}
	checked := u.Password
	var origin string
	_, err = g.updateAccount(ctx, u.ID, func(now *User, rec *accountRecord) error {
		if now.Password != checked {
			return errPasswordMoved
		}
		origin = now.Password
		if now.passwordOrigin != "" {
			origin = now.passwordOrigin
		}
		rec.Rehash = &rehashRecord{Of: hashDigest(origin), Hash: hash}
		return nil
	})
	switch {
	case errors.Is(err, errPasswordMoved):
		return nil
	case err != nil:
		return err
	}
	u.Password, u.passwordOrigin = hash, origin
	return nil
}

func (g *Gateway) swapAccount(ctx context.Context, credentialsID string, old []byte, rec *accountRecord) (bool, error) {
	rec.Written = g.now().UnixMilli()
	data, _ := json.Marshal(rec)
	ok, err := g.store.Swap(ctx, Keys.Account(credentialsID), old, data, AccountDataTTL)
	if err != nil {
		return false, storeError(err)
	}
	return ok, nil
}

// maxAccountRetries bounds the retries of a contended account change.
const maxAccountRetries = 16

// updateAccount changes the user's account record atomically: change sees
// the user and record as they are now, checks its preconditions (an error
// aborts, changing nothing) and modifies the record, which is written back
// only if no other change came in between; otherwise it all starts over.
// Concurrent changes on any nodes therefore never lose one another.
func (g *Gateway) updateAccount(ctx context.Context, credentialsID string, change func(u *User, rec *accountRecord) error) (*User, error) {
	for range maxAccountRetries {
		u, err := g.users.UserByID(ctx, credentialsID)
		if errors.Is(err, ErrUserNotFound) {
			return nil, fmt.Errorf("%w: user gone", ErrInvalidToken)
		} else if err != nil {
			return nil, storeError(err)
		}
		u, rec, raw, err := g.loadAccount(ctx, u)
		if err != nil {
			return nil, err
		}
		if err := change(u, rec); err != nil {
			return nil, err
		}
		if ok, err := g.swapAccount(ctx, u.ID, raw, rec); err != nil || ok {
			return u, err
		}
	}
	return nil, fmt.Errorf("%w: account %s changed concurrently too often", ErrUnavailable, credentialsID)
}

// setFactors records the user's factors (and pending enrolments) in rec.
func setFactors(u *User, rec *accountRecord, f Factors) {
	u.Factors = f
	rec.Factors = &Factors{OTP: slices.Clone(f.OTP), Push: slices.Clone(f.Push)}
}

// Factor types and statuses as the Multi API reports them.
const (
	FactorOTP                 = "OTP"
	FactorPush                = "PUSH"
	FactorActive              = "ACTIVE"
	FactorPendingVerification = "PENDING_VERIFICATION"
)

// FactorStatus is one enrolled (or pending) step-up channel.
type FactorStatus struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Channel string `json:"channel"`
}

// Factors lists the user's step-up channels.
func (g *Gateway) Factors(ctx context.Context, s *Session) ([]FactorStatus, error) {
	u, rec, err := g.userAndAccount(ctx, s.CredentialsID)
	if err != nil {
		return nil, err
	}
	out := []FactorStatus{}
	for _, ch := range u.Factors.OTP {
		out = append(out, FactorStatus{FactorOTP, FactorActive, ch})
	}
	for _, ch := range rec.PendingOTP {
		if !slices.Contains(u.Factors.OTP, ch) {
			out = append(out, FactorStatus{FactorOTP, FactorPendingVerification, ch})
		}
	}
	for _, ch := range u.Factors.Push {
		out = append(out, FactorStatus{FactorPush, FactorActive, ch})
	}
	return out, nil
}
