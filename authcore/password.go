package authcore

import (
	"context"
	"errors"
	"strconv"
	"time"
	"unicode"

	"go.uber.org/zap"
)

// Password policy of /passwords/update.
const (
	MinPasswordLen     = 8
	MaxPasswordLen     = 30
	PasswordHistoryLen = 5 // the current password and the four before it
)

// Error codes of a refused password change (409).
const (
	CodePasswordIncorrect   = "PASSWORD_INCORRECT"
	CodePasswordTooShort    = "PASSWORD_TOO_SHORT"
	CodePasswordTooLong     = "PASSWORD_TOO_LONG"
	CodePasswordTooSimple   = "PASSWORD_TOO_SIMPLE"
	CodePasswordAlreadyUsed = "PASSWORD_ALREADY_USED"
)

// CheckPasswordPolicy reports whether newPassword meets the policy of a
// password change: nil, or a *ChallengeError whose Code is the rule it
// breaks (CodePasswordTooShort, CodePasswordTooLong, CodePasswordTooSimple).
func CheckPasswordPolicy(newPassword string) error {
	n := len([]rune(newPassword))
	switch {
	case n < MinPasswordLen:
		return challengeErr(CodePasswordTooShort)
	case n > MaxPasswordLen:
		return challengeErr(CodePasswordTooLong)
	}
	var lower, upper, digit, special bool
	for _, r := range newPassword {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r):
			special = true
		}
	}
	if !lower || !upper || !digit || !special {
		return challengeErr(CodePasswordTooSimple)
	}
	return nil
}

// Passwords checks passwords, through the lockout both APIs share
// (Keys.LockoutFailures, Keys.Lockout), at the same hash cost for every
// user and none (PasswordHashes), and changes them under the policy and
// the history.
type Passwords struct {
	deps
	accounts *Accounts
	hashes   *PasswordHashes
	lockout  *Lockout
	sessions *Sessions
}

// Check is the one password check of both APIs' logins: lockout first
// (ErrLocked), then the hash (ErrInvalidCredentials for a wrong password,
// an unknown user (nil) or a disabled account), at the same hash work for
// every user and none. identifier is what the caller logged in with. A
// right password whose hash is not made with the current parameters is
// rehashed, and user gets the new hash.
func (p *Passwords) Check(ctx context.Context, user *User, identifier, password string) error {
	if err := p.check(ctx, user, identifier, password); err != nil {
		return err
	}
	if err := p.rehash(ctx, user, password); err != nil {
		// The login stands: the old hash still works, and the next
		// login tries again.
		p.log.Warn("rehashing a password failed", append(auditFields(ctx), zap.String("credentials_id", user.ID), zap.Error(err))...)
	}
	return nil
}

// check is Check without the rehash.
func (p *Passwords) check(ctx context.Context, user *User, identifier, password string) error {
	account := Keys.LockoutAccount(user, identifier)
	if err := p.lockout.begin(ctx, account); err != nil {
		if errors.Is(err, ErrLocked) {
			p.log.Debug("login refused: account locked", zap.String("credentials_id", credentialsIDOf(user)))
		}
		return err
	}
	hash := ""
	if user != nil {
		hash = user.Password
	}
	if !p.hashes.Check(hash, password) || user == nil || user.Disabled {
		locked, err := p.lockout.failed(ctx, account)
		if err != nil {
			return err
		}
		if locked {
			p.log.Info("lockout", append(auditFields(ctx), zap.String("credentials_id", credentialsIDOf(user)),
				zap.Int("failures", p.lockout.Attempts), zap.Duration("duration", p.lockout.Duration))...)
		}
		return ErrInvalidCredentials
	}
	return p.lockout.succeeded(ctx, account)
}

func credentialsIDOf(u *User) string {
	if u == nil {
		return ""
	}
	return u.ID
}

// errPasswordMoved: the password changed since it was checked.
var errPasswordMoved = errors.New("the password changed meanwhile")

// rehash replaces u's password hash, just checked against password, with
// one made with the current parameters, unless it already has them: so a
// deployment converges on one scheme. It goes into the account data, where
// run-time password changes of file and stored users live, and it is no
// change: the sessions, the expiry, the history and remembered devices
// stay as they are. A password changed meanwhile is left alone.
func (p *Passwords) rehash(ctx context.Context, u *User, password string) error {
	if p.hashes.Current(u.Password) {
		return nil
	}
	hash, err := p.hashes.Hash(password)
	if err != nil {
		return err
	}
	checked := u.Password
	var origin string
	_, err = p.accounts.update(ctx, u.ID, func(now *User, rec *accountRecord) error {
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

// PasswordChange is a completed password change.
type PasswordChange struct {
	// Token is an AUTH token of the fresh session that replaces the old
	// ones, when the change came through an API session.
	Token string
	// Cookie is the portal cookie value of the fresh session, when the
	// change came through a browser session.
	Cookie string
	// Session is the fresh session, of the kind of the one that asked.
	Session *Session
}

// Change replaces the user's password after checking the old one
// (through the lockout, like a login), the policy and the history. Nothing
// changes unless every check passes. Then every session of the user ends,
// on every node, and a fresh session of the same kind is opened for the
// caller.
func (p *Passwords) Change(ctx context.Context, s *Session, oldPassword, newPassword string) (*PasswordChange, error) {
	u, rec, err := p.accounts.userAndAccount(ctx, s.CredentialsID)
	if err != nil {
		return nil, err
	}
	switch err := p.check(ctx, u, u.Email, oldPassword); {
	case errors.Is(err, ErrInvalidCredentials):
		return nil, challengeErr(CodePasswordIncorrect)
	case err != nil:
		return nil, err
	}
	if err := CheckPasswordPolicy(newPassword); err != nil {
		return nil, err
	}
	previous := append([]string{u.Password}, rec.History...)
	if len(previous) > PasswordHistoryLen {
		previous = previous[:PasswordHistoryLen]
	}
	for _, h := range previous {
		if p.hashes.Verify(h, newPassword) {
			return nil, challengeErr(CodePasswordAlreadyUsed)
		}
	}
	hash, err := p.hashes.Hash(newPassword)
	if err != nil {
		return nil, err
	}
	validated := u.Password
	u, err = p.accounts.update(ctx, u.ID, func(now *User, rec *accountRecord) error {
		// A concurrent change got in first: the old password checked above
		// is no longer the current one.
		if now.Password != validated {
			return challengeErr(CodePasswordIncorrect)
		}
		rec.Password, rec.History, rec.Rehash = hash, previous[:min(len(previous), PasswordHistoryLen-1)], nil
		now.Password, now.PasswordExpires, now.ForcePasswordChange = hash, nil, false
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := endAll(ctx, p.store, u.ID); err != nil {
		return nil, err
	}
	kind := KindAPI
	if s.Kind == KindBrowser {
		kind = KindBrowser
	}
	fresh, cookie, err := p.sessions.open(ctx, u, kind)
	if err != nil {
		return nil, err
	}
	change := &PasswordChange{Cookie: cookie, Session: fresh}
	if kind == KindAPI {
		if change.Token, err = p.sessions.IssueToken(fresh, TokenAuth, s.Identity); err != nil {
			return nil, err
		}
	}
	p.log.Info("password changed", append(auditFields(ctx), zap.String("credentials_id", u.ID))...)
	return change, nil
}

// Defaults of the account lockout.
const (
	DefaultLockoutAttempts = 5
	DefaultLockoutDuration = 30 * time.Minute
)

// ErrLocked is returned for an account locked by consecutive password
// failures: every login of it answers this until the lock expires, the
// right password included.
var ErrLocked = errors.New("account locked")

// Lockout counts consecutive password failures per account in the store,
// so the count is one across every node and both APIs. Checks are
// reserved before the password is verified: of any number of concurrent
// attempts, at most Attempts reach the password hash before the lock.
type Lockout struct {
	// Store keeps the counters.
	Store Store
	// Attempts consecutive wrong passwords lock the account.
	Attempts int
	// Duration is how long the lock, and the count of failures, last.
	Duration time.Duration
}

// begin reserves one password check for the account; ErrLocked when the
// account is locked or its checks are used up.
func (l *Lockout) begin(ctx context.Context, key string) error {
	if err := l.checkLock(ctx, key); err != nil {
		return err
	}
	n, err := l.Store.Incr(ctx, Keys.LockoutFailures(key), l.Duration)
	if err != nil {
		return storeError(err)
	}
	if n > int64(l.Attempts) {
		return ErrLocked
	}
	return nil
}

// failed records a wrong password; the last allowed failure locks, and
// it reports whether this call set the lock.
func (l *Lockout) failed(ctx context.Context, key string) (bool, error) {
	data, err := l.Store.Get(ctx, Keys.LockoutFailures(key))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, storeError(err)
	}
	if n, _ := strconv.Atoi(string(data)); n >= l.Attempts {
		locked, err := l.Store.SetNX(ctx, Keys.Lockout(key), []byte{1}, l.Duration)
		if err != nil {
			return false, storeError(err)
		}
		return locked, nil
	}
	return false, nil
}

// succeeded resets the count of consecutive failures.
func (l *Lockout) succeeded(ctx context.Context, key string) error {
	if err := l.Store.Delete(ctx, Keys.LockoutFailures(key)); err != nil {
		return storeError(err)
	}
	return nil
}

// Locked reports whether the account is locked now.
func (l *Lockout) Locked(ctx context.Context, user *User) (bool, error) {
	err := l.checkLock(ctx, Keys.LockoutAccount(user, ""))
	if errors.Is(err, ErrLocked) {
		return true, nil
	}
	return false, err
}

// checkLock answers ErrLocked while the account's lock stands.
func (l *Lockout) checkLock(ctx context.Context, key string) error {
	switch _, err := l.Store.Get(ctx, Keys.Lockout(key)); {
	case err == nil:
		return ErrLocked
	case !errors.Is(err, ErrNotFound):
		return storeError(err)
	}
	return nil
}

// Unlock lifts the user's lockout and clears the count of consecutive
// password failures, on every node.
func (p *Passwords) Unlock(ctx context.Context, user *User) error {
	account := Keys.LockoutAccount(user, "")
	for _, key := range []string{Keys.Lockout(account), Keys.LockoutFailures(account)} {
		if err := p.store.Delete(ctx, key); err != nil {
			return storeError(err)
		}
	}
	p.log.Info("unlock", append(auditFields(ctx), zap.String("credentials_id", user.ID))...)
	return nil
}
