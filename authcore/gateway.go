package authcore

import (
	"context"
	"crypto/rand"
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

// Errors of the gateway's operations; the HTTP layers map them to statuses.
var (
	// ErrInvalidCredentials: unknown user, wrong password or disabled
	// account, deliberately indistinguishable.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrIdentityNotAllowed: the identity is not one of the user's.
	ErrIdentityNotAllowed = errors.New("identity not allowed")
)

// PasswordExpiredError is returned by Login when the password is right but
// expired: Token is a PASSWORD_UPDATE token, good only for changing it.
type PasswordExpiredError struct {
	Token   string
	Session *Session
}

func (e *PasswordExpiredError) Error() string { return "password expired" }

// Options configure a Gateway.
type Options struct {
	// Store keeps sessions. Required.
	Store Store
	// Users finds users. Required.
	Users UserDirectory
	// Tokens issues and verifies JWTs. Required.
	Tokens *Tokens
	// SessionIdle is the sliding inactivity window. Default 5m.
	SessionIdle time.Duration
	// SessionMax is the absolute session lifetime. Default 12h.
	SessionMax time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives audit lines. Default: no logging.
	Logger *zap.Logger
	// Hasher does the password-hash work. Default DefaultHasher.
	Hasher Hasher
	// PasswordHash are the parameters of new password hashes (changed
	// passwords, and rehashes at login of hashes made otherwise). Default
	// DefaultHashParams.
	PasswordHash HashParams

	// Sandbox makes every code 123456, sends nothing and turns the push
	// simulator on.
	Sandbox bool
	// OTPSender sends SMS codes. Required for OTP step-up outside sandbox.
	OTPSender Sender
	// PushSender sends push approvals. Required for push outside sandbox.
	PushSender Sender
	// EmailSender sends EMAIL codes (Manage API MFA).
	EmailSender Sender
	// PushSecret checks the signature of push resolve callbacks.
	PushSecret []byte
	// CodeKey keys the stored hashes of one-time codes; all nodes must
	// share it. Default: random per process (single node only).
	CodeKey []byte
	// CodeTTL is how long a one-time code or push is good. Default 5m.
	CodeTTL time.Duration
	// ResendInterval is the least time between two codes. Default 15s.
	ResendInterval time.Duration
	// LockoutAttempts consecutive wrong passwords lock an account for
	// LockoutDuration. Defaults 5 and 30m.
	LockoutAttempts int
	LockoutDuration time.Duration
	// RateLimits per client IP by action (login, code_issue,
	// code_verify). Default DefaultRateLimits; a missing action is
	// unlimited.
	RateLimits map[string]RateLimit
	// Metrics receives counts and store timings. Default: none.
	Metrics Metrics
}

// Gateway is the framework-free core: logins, sessions, tokens and the
// guard decision, shared by both APIs and the guard.
type Gateway struct {
	store     Store
	users     UserDirectory
	tokens    *Tokens
	idle, max time.Duration
	now       func() time.Time
	log       *zap.Logger
	passwords *Passwords

	sandbox     bool
	otpSender   Sender
	pushSender  Sender
	emailSender Sender
	pushSecret  []byte
	codes       *CodeChallenges
	lockout     *Lockout
	limits      map[string]RateLimit
	metrics     Metrics
}

// NewGateway checks opts and returns a Gateway.
func NewGateway(opts Options) (*Gateway, error) {
	if opts.Store == nil || opts.Users == nil || opts.Tokens == nil {
		return nil, errors.New("gateway needs a store, users and tokens")
	}
	g := &Gateway{
		store: opts.Store, users: opts.Users, tokens: opts.Tokens,
		idle: opts.SessionIdle, max: opts.SessionMax, now: opts.Now, log: opts.Logger,
	}
	if g.idle == 0 {
		g.idle = DefaultSessionIdle
	}
	if g.max == 0 {
		g.max = DefaultSessionMax
	}
	if g.idle < time.Second || g.max < g.idle {
		return nil, fmt.Errorf("session_idle (%s) must be at least 1s and at most session_max (%s)", g.idle, g.max)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = zap.NewNop()
	}
	// Every check costs a hash of each parameter set the users' hashes
	// have; a directory that knows its hashes (a users file) tells them.
	var known []HashParams
	if lister, ok := opts.Users.(interface{ HashParams() []HashParams }); ok {
		known = lister.HashParams()
	}
	passwords, err := NewPasswords(opts.Hasher, opts.PasswordHash, known...)
	if err != nil {
		return nil, err
	}
	g.passwords = passwords
	g.sandbox, g.otpSender, g.pushSender, g.pushSecret = opts.Sandbox, opts.OTPSender, opts.PushSender, opts.PushSecret
	g.emailSender = opts.EmailSender
	key := opts.CodeKey
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	g.codes = &CodeChallenges{Store: g.store, Key: key, TTL: opts.CodeTTL, ResendInterval: opts.ResendInterval, Now: g.now}
	g.lockout = &Lockout{Store: g.store, Attempts: opts.LockoutAttempts, Duration: opts.LockoutDuration}
	if g.lockout.Attempts <= 0 {
		g.lockout.Attempts = DefaultLockoutAttempts
	}
	if g.lockout.Duration <= 0 {
		g.lockout.Duration = DefaultLockoutDuration
	}
	g.limits = opts.RateLimits
	if g.limits == nil {
		g.limits = DefaultRateLimits
	}
	g.metrics = opts.Metrics
	if g.metrics == nil {
		g.metrics = noMetrics{}
	} else {
		// Every component below uses the instrumented store.
		g.store = instrumentedStore{Store: g.store, m: g.metrics}
		g.codes.Store, g.lockout.Store = g.store, g.store
	}
	return g, nil
}

// Now returns the gateway's clock reading.
func (g *Gateway) Now() time.Time { return g.now() }

// Tokens returns the gateway's token issuer.
func (g *Gateway) Tokens() *Tokens { return g.tokens }

// Users returns the gateway's user directory.
func (g *Gateway) Users() UserDirectory { return g.users }

// Store returns the gateway's store.
func (g *Gateway) Store() Store { return g.store }

// Logger returns the gateway's audit logger.
func (g *Gateway) Logger() *zap.Logger { return g.log }

// LoginResult is a successful login.
type LoginResult struct {
	Token   string
	Session *Session
	User    *User
}

// Login checks an email and password and opens a session. Unknown users,
// wrong passwords and disabled accounts all return ErrInvalidCredentials
// after the same password-hash work. An expired password opens a
// password-update-only session and returns *PasswordExpiredError.
func (g *Gateway) Login(ctx context.Context, email, password string) (res *LoginResult, err error) {
	defer func() { g.metrics.Login(loginResult(err)) }()
	return g.login(ctx, email, password)
}

// loginResult is the metrics label of a login's outcome.
func loginResult(err error) string {
	var expired *PasswordExpiredError
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &expired):
		return "password_expired"
	case errors.Is(err, ErrInvalidCredentials):
		return "invalid_credentials"
	case errors.Is(err, ErrLocked):
		return "locked"
	}
	return "error"
}

// CountLogin counts a login made by another path (the Manage API).
func (g *Gateway) CountLogin(err error) { g.metrics.Login(loginResult(err)) }

func (g *Gateway) login(ctx context.Context, email, password string) (*LoginResult, error) {
	user, err := g.UserByEmail(ctx, email)
	if errors.Is(err, ErrUserNotFound) {
		user = nil
	} else if err != nil {
		return nil, err
	}
	if err := g.CheckPassword(ctx, user, email, password); err != nil {
		return nil, err
	}
	s, err := g.openSession(ctx, user)
	if err != nil {
		return nil, err
	}
	tokenType := TokenAuth
	if s.PasswordUpdateOnly {
		tokenType = TokenPasswordUpdate
	}
	token, err := g.IssueToken(s, tokenType, s.Identity)
	if err != nil {
		return nil, err
	}
	if s.PasswordUpdateOnly {
		return nil, &PasswordExpiredError{Token: token, Session: s}
	}
	return &LoginResult{Token: token, Session: s, User: user}, nil
}

// openSession creates a session for user and records it in the user's
// session index, so that a password change can end them all.
func (g *Gateway) openSession(ctx context.Context, user *User) (*Session, error) {
	now := g.now()
	s := &Session{
		ID: newID(), CredentialsID: user.ID, CredentialsType: user.CredentialsType,
		Identity: user.Identities[0].Ref(), Created: now, LastUsed: now, Expires: now.Add(g.max),
		PasswordUpdateOnly: user.PasswordExpired(now),
	}
	if err := g.store.AddMember(ctx, Keys.UserSessions(user.ID), s.ID, g.max); err != nil {
		return nil, storeError(err)
	}
	if err := g.store.CreateSession(ctx, s, g.idle); err != nil {
		return nil, storeError(err)
	}
	return s, nil
}

// endUserSessions ends every session of the user, on every node.
func endUserSessions(ctx context.Context, store Store, credentialsID string) error {
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

// CheckPassword is the one password check of both APIs' logins: lockout
// first (ErrLocked), then the hash (ErrInvalidCredentials for a wrong
// password, an unknown user (nil) or a disabled account), at the same
// hash work for every user and none (see Passwords). identifier is what
// the caller logged in with. A right password whose hash is not made with
// the current parameters is rehashed, and user gets the new hash.
func (g *Gateway) CheckPassword(ctx context.Context, user *User, identifier, password string) error {
	if err := g.checkPassword(ctx, user, identifier, password); err != nil {
		return err
	}
	if err := g.rehash(ctx, user, password); err != nil {
		// The login stands: the old hash still works, and the next
		// login tries again.
		g.log.Warn("rehashing a password failed", append(auditFields(ctx), zap.String("credentials_id", user.ID), zap.Error(err))...)
	}
	return nil
}

// checkPassword is CheckPassword without the rehash.
func (g *Gateway) checkPassword(ctx context.Context, user *User, identifier, password string) error {
	key := Keys.LockoutAccount(user, identifier)
	if err := g.lockout.begin(ctx, key); err != nil {
		if errors.Is(err, ErrLocked) {
			g.log.Debug("login refused: account locked", zap.String("credentials_id", credentialsIDOf(user)))
		}
		return err
	}
	hash := ""
	if user != nil {
		hash = user.Password
	}
	if !g.passwords.Check(hash, password) || user == nil || user.Disabled {
		locked, err := g.lockout.failed(ctx, key)
		if err != nil {
			return err
		}
		if locked {
			g.log.Info("lockout", append(auditFields(ctx), zap.String("credentials_id", credentialsIDOf(user)),
				zap.Int("failures", g.lockout.Attempts), zap.Duration("duration", g.lockout.Duration))...)
		}
		return ErrInvalidCredentials
	}
	return g.lockout.succeeded(ctx, key)
}

func credentialsIDOf(u *User) string {
	if u == nil {
		return ""
	}
	return u.ID
}

// IssueToken signs a token of the session. It expires with the session's
// absolute lifetime; the session in the store is what keeps it alive.
func (g *Gateway) IssueToken(s *Session, tokenType string, identity IdentityRef) (string, error) {
	now := g.now()
	amr := []string{"pwd"}
	authTime := s.Created
	if !s.SteppedUp.IsZero() {
		amr = append(amr, s.StepUpMethod)
		authTime = s.SteppedUp
	}
	c := &Claims{
		SessionID: s.ID, TokenType: tokenType, CredentialsType: s.CredentialsType,
		Identity: identity, AMR: amr, AuthTime: authTime.Unix(),
	}
	c.Subject = s.CredentialsID
	c.IssuedAt = jwtTime(now)
	c.NotBefore = jwtTime(now)
	c.ExpiresAt = jwtTime(s.Expires)
	return g.tokens.Issue(c)
}

// Authenticate verifies a token and loads its session, sliding the
// session's idle window: one store round trip. It returns ErrInvalidToken
// for a bad token or a dead session and ErrUnavailable when the store
// cannot answer.
func (g *Gateway) Authenticate(ctx context.Context, token string) (*Claims, *Session, error) {
	c, err := g.tokens.Verify(token)
	if err != nil {
		return nil, nil, err
	}
	s, err := g.store.TouchSession(ctx, c.SessionID, g.idle)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil, fmt.Errorf("%w: session gone", ErrInvalidToken)
	case err != nil:
		return nil, nil, storeError(err)
	}
	if !g.now().Before(s.Expires) {
		_ = g.store.DeleteSession(ctx, s.ID)
		return nil, nil, fmt.Errorf("%w: session past session_max", ErrInvalidToken)
	}
	if s.CredentialsID != c.Subject {
		return nil, nil, fmt.Errorf("%w: token does not match its session", ErrInvalidToken)
	}
	// A password-update session and its token serve /passwords/update only.
	if s.PasswordUpdateOnly != (c.TokenType == TokenPasswordUpdate) {
		return nil, nil, fmt.Errorf("%w: token kind does not match its session", ErrInvalidToken)
	}
	return c, s, nil
}

// AccessToken issues an ACCESS token of the session for one of the user's
// identities.
func (g *Gateway) AccessToken(ctx context.Context, s *Session, identity IdentityRef) (string, error) {
	user, err := g.users.UserByID(ctx, s.CredentialsID)
	if errors.Is(err, ErrUserNotFound) {
		return "", fmt.Errorf("%w: user gone", ErrInvalidToken)
	} else if err != nil {
		return "", storeError(err)
	}
	if !user.HasIdentity(identity) {
		return "", ErrIdentityNotAllowed
	}
	if locked, err := g.lockout.Locked(ctx, user); err != nil {
		return "", err
	} else if locked {
		return "", ErrLocked
	}
	return g.IssueToken(s, TokenAccess, identity)
}

// Logout ends the session: every token of it stops working on every node.
func (g *Gateway) Logout(ctx context.Context, s *Session) error {
	if err := g.store.DeleteSession(ctx, s.ID); err != nil {
		return storeError(err)
	}
	return nil
}

// storeError keeps a store failure's kind: ErrUnavailable (the store did
// not answer: 503, logged as an outage) stays so; anything else, such as a
// record that does not decode or a bug like a non-positive TTL, is an
// internal error (500, logged as a bug), never an outage.
func storeError(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("store: %w", err)
}

type requestInfoKey struct{}

type requestInfo struct{ ref, clientIP string }

// WithRequestInfo records the request's id and client address in ctx, so
// that the core's audit lines carry them.
func WithRequestInfo(ctx context.Context, requestRef, clientIP string) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, requestInfo{requestRef, clientIP})
}

// RequestRef returns the request id recorded by WithRequestInfo.
func RequestRef(ctx context.Context) string {
	info, _ := ctx.Value(requestInfoKey{}).(requestInfo)
	return info.ref
}

// auditFields are the request fields of an audit line.
func auditFields(ctx context.Context) []zap.Field {
	info, _ := ctx.Value(requestInfoKey{}).(requestInfo)
	return []zap.Field{zap.String("request_ref", info.ref), zap.String("client_ip", info.clientIP)}
}
