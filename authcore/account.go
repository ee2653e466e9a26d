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
// enrolled, passwords changed or rehashed) are kept after they were last
// written, and how long the users kept in the store live. Every store key
// has a TTL, so these do too; an account in use refreshes it (see
// refreshAfter).
const AccountDataTTL = 400 * 24 * time.Hour

// refreshAfter is the age after which reading account data rewrites it to
// restart its TTL.
const refreshAfter = 30 * 24 * time.Hour

// accountRecord is what authgate changed about a user at run time. The
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

// Accounts finds users in the user directory and applies the run-time
// changes kept in the store (Keys.Account): the one place a user is read,
// so that no caller sees a user without them.
type Accounts struct {
	deps
	users UserDirectory
}

// User returns the user of a session with run-time changes applied; a
// user that is gone is ErrInvalidToken, as the session's token is.
func (a *Accounts) User(ctx context.Context, credentialsID string) (*User, error) {
	u, _, err := a.userAndAccount(ctx, credentialsID)
	return u, err
}

func (a *Accounts) userAndAccount(ctx context.Context, credentialsID string) (*User, *accountRecord, error) {
	u, err := a.users.UserByID(ctx, credentialsID)
	if errors.Is(err, ErrUserNotFound) {
		return nil, nil, fmt.Errorf("%w: user gone", ErrInvalidToken)
	} else if err != nil {
		return nil, nil, storeError(err)
	}
	return a.withAccount(ctx, u)
}

// UserByEmail finds a user by email (case-insensitive) with run-time
// changes applied; ErrUserNotFound when there is none.
func (a *Accounts) UserByEmail(ctx context.Context, email string) (*User, error) {
	return a.findUser(ctx, a.users.UserByEmail, email)
}

// UserByName finds a user by userName (case-insensitive) with run-time
// changes applied; ErrUserNotFound when there is none.
func (a *Accounts) UserByName(ctx context.Context, userName string) (*User, error) {
	return a.findUser(ctx, a.users.UserByName, userName)
}

func (a *Accounts) findUser(ctx context.Context, find func(context.Context, string) (*User, error), key string) (*User, error) {
	u, err := find(ctx, key)
	if errors.Is(err, ErrUserNotFound) {
		// Read an account record all the same, so that an unknown user
		// costs the store round trip a known one does.
		if _, err := a.store.Get(ctx, Keys.Account("0")); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, storeError(err)
		}
		return nil, ErrUserNotFound
	} else if err != nil {
		return nil, storeError(err)
	}
	u, _, err = a.withAccount(ctx, u)
	return u, err
}

// withAccount applies the user's run-time changes kept in the store.
func (a *Accounts) withAccount(ctx context.Context, u *User) (*User, *accountRecord, error) {
	u, rec, raw, err := a.loadAccount(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	if raw != nil && a.now().Sub(time.UnixMilli(rec.Written)) > refreshAfter {
		// Restart the record's TTL; losing to a concurrent change is fine,
		// since that change wrote it anew.
		if _, err := a.swapAccount(ctx, u.ID, raw, rec); err != nil {
			return nil, nil, err
		}
	}
	return u, rec, nil
}

// loadAccount reads the user's account record and applies it to u; raw is
// the stored bytes (nil when there is no record), for a later Swap.
func (a *Accounts) loadAccount(ctx context.Context, u *User) (*User, *accountRecord, []byte, error) {
	rec := &accountRecord{}
	raw, err := a.store.Get(ctx, Keys.Account(u.ID))
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

func (a *Accounts) swapAccount(ctx context.Context, credentialsID string, old []byte, rec *accountRecord) (bool, error) {
	rec.Written = a.now().UnixMilli()
	data, _ := json.Marshal(rec)
	ok, err := a.store.Swap(ctx, Keys.Account(credentialsID), old, data, AccountDataTTL)
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
func (a *Accounts) update(ctx context.Context, credentialsID string, change func(u *User, rec *accountRecord) error) (*User, error) {
	for range maxAccountRetries {
		u, err := a.users.UserByID(ctx, credentialsID)
		if errors.Is(err, ErrUserNotFound) {
			return nil, fmt.Errorf("%w: user gone", ErrInvalidToken)
		} else if err != nil {
			return nil, storeError(err)
		}
		u, rec, raw, err := a.loadAccount(ctx, u)
		if err != nil {
			return nil, err
		}
		if err := change(u, rec); err != nil {
			return nil, err
		}
		if ok, err := a.swapAccount(ctx, u.ID, raw, rec); err != nil || ok {
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
	FactorPasskey             = "PASSKEY"
	FactorActive              = "ACTIVE"
	FactorPendingVerification = "PENDING_VERIFICATION"
)

// FactorStatus is one enrolled (or pending) step-up channel.
type FactorStatus struct {
	// Type is FactorOTP, FactorPush or FactorPasskey.
	Type string `json:"type"`
	// Status is FactorActive or FactorPendingVerification.
	Status string `json:"status"`
	// Channel is the step-up channel (SMS, AUTHY, BIOMETRIC), or a
	// passkey's credential id.
	Channel string `json:"channel"`
}
