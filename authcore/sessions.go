package authcore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Defaults of the session windows.
const (
	DefaultSessionIdle = 5 * time.Minute
	DefaultSessionMax  = 12 * time.Hour
)

// Errors of logins and tokens; the HTTP layers map them to statuses.
var (
	// ErrInvalidCredentials: unknown user, wrong password or disabled
	// account, deliberately indistinguishable.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrIdentityNotAllowed: the identity is not one of the user's.
	ErrIdentityNotAllowed = errors.New("identity not allowed")
	// ErrPasswordUpdateToken wraps ErrInvalidToken: a PASSWORD_UPDATE
	// token is good only for changing the password.
	ErrPasswordUpdateToken = fmt.Errorf("%w: a PASSWORD_UPDATE token serves /passwords/update only", ErrInvalidToken)
)

// PasswordExpiredError is returned by Login when the password is right but
// expired: Token is a PASSWORD_UPDATE token, good only for changing it.
type PasswordExpiredError struct {
	// Token is the PASSWORD_UPDATE token.
	Token string
	// Session is its password-update-only session.
	Session *Session
}

// Error implements error.
func (e *PasswordExpiredError) Error() string { return "password expired" }

// Sessions logs users in, authenticates the tokens of their sessions and
// ends sessions. A session lives in the store (Keys.Session) and in its
// user's index (Keys.UserSessions), so that a password change ends them
// all on every node.
type Sessions struct {
	deps
	tokens    *Tokens
	idle, max time.Duration
	accounts  *Accounts
	passwords *Passwords
	limits    *Limits
}

// LoginResult is a successful login.
type LoginResult struct {
	// Token is the AUTH token of the new session.
	Token string
	// Session is the new session.
	Session *Session
	// User is who logged in, run-time changes applied.
	User *User
}

// Login checks an email and password and opens an API session. It counts
// against the login rate limit of the client address in ctx
// (WithRequestInfo; *RateLimited). Unknown users, wrong passwords and
// disabled accounts all return ErrInvalidCredentials after the same
// password-hash work. An expired password opens a password-update-only
// session and returns *PasswordExpiredError.
func (s *Sessions) Login(ctx context.Context, email, password string) (res *LoginResult, err error) {
	defer func() { s.metrics.Login(LoginAPIMulti, loginResult(err)) }()
	user, err := s.checkLogin(ctx, email, password)
	if err != nil {
		return nil, err
	}
	sess, _, err := s.open(ctx, user, KindAPI)
	if err != nil {
		return nil, err
	}
	tokenType := TokenAuth
	if sess.PasswordUpdateOnly {
		tokenType = TokenPasswordUpdate
	}
	token, err := s.IssueToken(sess, tokenType, sess.Identity)
	if err != nil {
		return nil, err
	}
	if sess.PasswordUpdateOnly {
		return nil, &PasswordExpiredError{Token: token, Session: sess}
	}
	return &LoginResult{Token: token, Session: sess, User: user}, nil
}

// checkLogin is what every login that opens a session checks: the login
// rate limit of the client address, then the password through the
// lockout, at the same hash work for every user and none.
func (s *Sessions) checkLogin(ctx context.Context, email, password string) (*User, error) {
	if err := s.limits.allowClient(ctx, LimitLogin); err != nil {
		return nil, err
	}
	user, err := s.accounts.UserByEmail(ctx, email)
	if errors.Is(err, ErrUserNotFound) {
		user = nil
	} else if err != nil {
		return nil, err
	}
	if err := s.passwords.Check(ctx, user, email, password); err != nil {
		return nil, err
	}
	return user, nil
}

// Results of a login in the metrics that are not errors.
const (
	loginSuccess         = "success"
	loginPasswordExpired = "password_expired"
)

// loginResult is the metrics label of a login's outcome, on any API.
func loginResult(err error) string {
	var expired *PasswordExpiredError
	switch {
	case err == nil:
		return loginSuccess
	case errors.As(err, &expired):
		return loginPasswordExpired
	case errors.Is(err, ErrInvalidCredentials):
		return "invalid_credentials"
	case errors.Is(err, ErrLocked):
		return "locked"
	case errors.As(err, new(*RateLimited)):
		return "rate_limited"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

// open creates a session of kind for user and records it in the user's
// session index, so that a password change can end them all. A browser
// session also gets the value of its cookie, returned here and never
// stored: the session keeps only a digest of its secret part.
func (s *Sessions) open(ctx context.Context, user *User, kind string) (*Session, string, error) {
	now := s.now()
	sess := &Session{
		ID: newID(), CredentialsID: user.ID, CredentialsType: user.CredentialsType,
		Identity: user.Identities[0].Ref(), Created: now, LastUsed: now, Expires: now.Add(s.max),
		PasswordUpdateOnly: user.PasswordExpired(now), Kind: kind,
		ClientIP: loginAddress(ctx), UserAgent: loginUserAgent(ctx),
	}
	cookie := ""
	if kind == KindBrowser {
		secret := newID()
		sess.SecretHash = secretDigest(secret)
		cookie = sess.ID + cookieSeparator + secret
	}
	if err := s.store.AddMember(ctx, Keys.UserSessions(user.ID), sess.ID, s.max); err != nil {
		return nil, "", storeError(err)
	}
	if err := s.store.CreateSession(ctx, sess, s.idle); err != nil {
		return nil, "", storeError(err)
	}
	return sess, cookie, nil
}

// endAll ends every session of the user, on every node.
func endAll(ctx context.Context, store Store, credentialsID string) error {
	ids, err := store.Members(ctx, Keys.UserSessions(credentialsID))
	if err != nil {
		return storeError(err)
	}
	for _, id := range ids {
		if err := store.DeleteSession(ctx, id); err != nil {
			return storeError(err)
		}
	}
	return nil
}

// IssueToken signs a token of the session. It expires with the session's
// absolute lifetime; the session in the store is what keeps it alive.
func (s *Sessions) IssueToken(sess *Session, tokenType string, identity IdentityRef) (string, error) {
	now := s.now()
	amr, authTime := sess.AuthMethods()
	c := &Claims{
		SessionID: sess.ID, TokenType: tokenType, CredentialsType: sess.CredentialsType,
		Identity: identity, AMR: amr, AuthTime: authTime.Unix(),
	}
	c.Subject = sess.CredentialsID
	c.IssuedAt = jwtTime(now)
	c.NotBefore = jwtTime(now)
	c.ExpiresAt = jwtTime(sess.Expires)
	return s.tokens.Issue(c)
}

// Authenticate verifies an AUTH or ACCESS token and loads its session,
// sliding the session's idle window: one store round trip. It returns
// ErrInvalidToken for a bad token or a dead session (ErrPasswordUpdateToken
// for a PASSWORD_UPDATE token) and ErrUnavailable when the store cannot
// answer.
func (s *Sessions) Authenticate(ctx context.Context, token string) (*Claims, *Session, error) {
	c, sess, err := s.AuthenticatePasswordUpdate(ctx, token)
	if err == nil && c.TokenType == TokenPasswordUpdate {
		return nil, nil, ErrPasswordUpdateToken
	}
	return c, sess, err
}

// AuthenticatePasswordUpdate is Authenticate for the one route that also
// takes a PASSWORD_UPDATE token: the password change.
func (s *Sessions) AuthenticatePasswordUpdate(ctx context.Context, token string) (*Claims, *Session, error) {
	c, err := s.tokens.Verify(token)
	if err != nil {
		return nil, nil, err
	}
	sess, err := s.live(ctx, c.SessionID)
	if err != nil {
		return nil, nil, err
	}
	// A browser session has no tokens: one naming it is not authgate's.
	if sess.CredentialsID != c.Subject || sess.Kind == KindBrowser {
		return nil, nil, fmt.Errorf("%w: token does not match its session", ErrInvalidToken)
	}
	// A password-update session and its token serve /passwords/update only.
	if sess.PasswordUpdateOnly != (c.TokenType == TokenPasswordUpdate) {
		return nil, nil, fmt.Errorf("%w: token kind does not match its session", ErrInvalidToken)
	}
	return c, sess, nil
}

// live loads a session by id and slides its idle window, in one store
// round trip: ErrInvalidToken when it has ended (expired, logged out, or
// past session_max), ErrUnavailable when the store cannot answer.
func (s *Sessions) live(ctx context.Context, id string) (*Session, error) {
	sess, err := s.store.TouchSession(ctx, id, s.idle)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%w: session gone", ErrInvalidToken)
	case err != nil:
		return nil, storeError(err)
	}
	if !s.now().Before(sess.Expires) {
		_ = s.store.DeleteSession(ctx, sess.ID)
		return nil, fmt.Errorf("%w: session past session_max", ErrInvalidToken)
	}
	return sess, nil
}

// AccessToken issues an ACCESS token of the session for one of the user's
// identities.
func (s *Sessions) AccessToken(ctx context.Context, sess *Session, identity IdentityRef) (string, error) {
	user, err := s.accounts.User(ctx, sess.CredentialsID)
	if err != nil {
		return "", err
	}
	if !user.HasIdentity(identity) {
		return "", ErrIdentityNotAllowed
	}
	if locked, err := s.passwords.lockout.Locked(ctx, user); err != nil {
		return "", err
	} else if locked {
		return "", ErrLocked
	}
	return s.IssueToken(sess, TokenAccess, identity)
}

// SteppedUp reports whether the session has stepped up, at any time.
func (s *Sessions) SteppedUp(sess *Session) bool { return sess.IsSteppedUp(s.now(), 0) }

// Revoke ends the session of token, whatever its kind, for a backend that
// asks (RFC 7009): every token of the session stops working on every node.
// A token that does not verify, or whose session is already gone, is no
// error: there is nothing to end.
func (s *Sessions) Revoke(ctx context.Context, token string) error {
	c, err := s.tokens.Verify(token)
	if err != nil {
		return nil
	}
	if err := s.store.DeleteSession(ctx, c.SessionID); err != nil {
		return storeError(err)
	}
	s.log.Info("revoke", append(auditFields(ctx), zap.String("credentials_id", c.Subject))...)
	return nil
}

// Logout ends the session: every token of it stops working on every node.
func (s *Sessions) Logout(ctx context.Context, sess *Session) error {
	if err := s.store.DeleteSession(ctx, sess.ID); err != nil {
		return storeError(err)
	}
	return nil
}

// stepUp records a successful step-up on the session: every token of the
// session counts as stepped up from now on, on every node.
func (s *Sessions) stepUp(ctx context.Context, sess *Session, method string) error {
	now := s.now()
	sess.SteppedUp, sess.StepUpMethod, sess.LastUsed = now, method, now
	err := s.store.SaveSession(ctx, sess, s.idle)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: session gone", ErrInvalidToken)
	} else if err != nil {
		return storeError(err)
	}
	return nil
}

// touch loads a session by id and slides its idle window; ErrNotFound
// when it has ended.
func (s *Sessions) touch(ctx context.Context, id string) (*Session, error) {
	sess, err := s.store.TouchSession(ctx, id, s.idle)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, storeError(err)
	}
	return sess, err
}

// keep is how long a session's step-up bookkeeping must last.
func (s *Sessions) keep(sess *Session) time.Duration {
	return max(sess.Expires.Sub(s.now()), time.Second)
}
