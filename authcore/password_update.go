package authcore

import (
	"context"
	"errors"
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

// PasswordPolicyError returns the policy code newPassword breaks, or "".
func PasswordPolicyError(newPassword string) string {
	n := len([]rune(newPassword))
	switch {
	case n < MinPasswordLen:
		return CodePasswordTooShort
	case n > MaxPasswordLen:
		return CodePasswordTooLong
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
		return CodePasswordTooSimple
	}
	return ""
}

// PasswordChange is a completed password change.
type PasswordChange struct {
	// Token is an AUTH token of the fresh session that replaces the old ones.
	Token   string
	Session *Session
}

// ChangePassword replaces the user's password after checking the old one
// (through the lockout, like a login), the policy and the history. Nothing
// changes unless every check passes. Then every session of the user ends,
// on every node, and a fresh session is opened for the caller.
func (g *Gateway) ChangePassword(ctx context.Context, s *Session, oldPassword, newPassword string) (*PasswordChange, error) {
	u, rec, err := g.userAndAccount(ctx, s.CredentialsID)
	if err != nil {
		return nil, err
	}
	switch err := g.checkPassword(ctx, u, u.Email, oldPassword); {
	case errors.Is(err, ErrInvalidCredentials):
		return nil, challengeErr(CodePasswordIncorrect)
	case err != nil:
		return nil, err
	}
	if code := PasswordPolicyError(newPassword); code != "" {
		return nil, challengeErr(code)
	}
	previous := append([]string{u.Password}, rec.History...)
	if len(previous) > PasswordHistoryLen {
		previous = previous[:PasswordHistoryLen]
	}
	for _, h := range previous {
		if g.passwords.Verify(h, newPassword) {
			return nil, challengeErr(CodePasswordAlreadyUsed)
		}
	}
	hash, err := g.passwords.Hash(newPassword)
	if err != nil {
		return nil, err
	}
	validated := u.Password
	u, err = g.updateAccount(ctx, u.ID, func(now *User, rec *accountRecord) error {
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
	if err := endUserSessions(ctx, g.store, u.ID); err != nil {
		return nil, err
	}
	fresh, err := g.openSession(ctx, u)
	if err != nil {
		return nil, err
	}
	token, err := g.IssueToken(fresh, TokenAuth, s.Identity)
	if err != nil {
		return nil, err
	}
	g.log.Info("password changed", append(auditFields(ctx), zap.String("credentials_id", u.ID))...)
	return &PasswordChange{Token: token, Session: fresh}, nil
}
