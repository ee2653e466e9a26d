package authcore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Options configure the services (New).
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
	// CSRFKey keys the portal's CSRF tokens; all nodes must share it.
	// Default: random per process (single node only).
	CSRFKey []byte
	// CodeTTL is how long a one-time code or push is good. Default 5m.
	CodeTTL time.Duration
	// ResendInterval is the least time between two codes. Default 15s.
	ResendInterval time.Duration
	// LockoutAttempts consecutive wrong passwords lock an account for
	// LockoutDuration. Default 5.
	LockoutAttempts int
	// LockoutDuration is how long a lock lasts. Default 30m.
	LockoutDuration time.Duration
	// RateLimits per client IP by action (login, code_issue,
	// code_verify). Default DefaultRateLimits; a missing action is
	// unlimited.
	RateLimits map[string]RateLimit
	// Metrics receives counts and store timings. Default: none.
	Metrics Metrics
	// Passkeys is the WebAuthn relying party. Default none: no passkeys.
	Passkeys *PasskeyConfig
}

// Services are the framework-free core: a handful of services, each with
// the few dependencies it needs and owning its rules and its store keys
// (StoreKeys), wired once by New. A handler is given the services it
// calls, not all of them.
type Services struct {
	// Accounts finds users with their run-time changes applied.
	Accounts *Accounts
	// Passwords checks passwords (through the lockout) and changes them.
	Passwords *Passwords
	// Sessions logs in, authenticates tokens and ends sessions.
	Sessions *Sessions
	// StepUp issues and checks step-up codes and pushes, and enrols factors.
	StepUp *StepUp
	// Passkeys enrols passkeys and steps up with them; nil without
	// Options.Passkeys.
	Passkeys *Passkeys
	// ManageMFA is the Manage API's password validation with MFA.
	ManageMFA *ManageMFA
	// Guard decides guarded requests.
	Guard *Guard
	// CSRF makes and checks the portal's CSRF tokens.
	CSRF *CSRF
	// Limits are the per-client rate limits.
	Limits *Limits
	// Tokens issues and verifies the tokens, and publishes the JWKS.
	Tokens *Tokens
	// Logger receives audit lines.
	Logger *zap.Logger
	// Outage logs store outages a few lines at a time; the APIs tell it of
	// the requests they refuse for one.
	Outage *Outage
	// Health checks the store for GET /health.
	Health *Health
}

// deps are what every service reads: the store, the clock, the audit log
// and the metrics.
type deps struct {
	store   Store
	now     func() time.Time
	log     *zap.Logger
	metrics Metrics
}

// New checks opts and wires the services.
func New(opts Options) (*Services, error) {
	if opts.Store == nil || opts.Users == nil || opts.Tokens == nil {
		return nil, errors.New("authcore needs a store, users and tokens")
	}
	idle, maxAge := opts.SessionIdle, opts.SessionMax
	if idle == 0 {
		idle = DefaultSessionIdle
	}
	if maxAge == 0 {
		maxAge = DefaultSessionMax
	}
	if idle < time.Second || maxAge < idle {
		return nil, fmt.Errorf("session_idle (%s) must be at least 1s and at most session_max (%s)", idle, maxAge)
	}
	d := deps{store: opts.Store, now: opts.Now, log: opts.Logger, metrics: opts.Metrics}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = zap.NewNop()
	}
	if d.metrics == nil {
		d.metrics = noMetrics{}
	}
	outage := NewOutage(d.log, d.now)
	d.store = instrumentedStore{store: d.store, m: d.metrics, outage: outage}
	// Every check costs a hash of each parameter set the users' hashes
	// have; a directory that knows its hashes (a users file) tells them.
	var known []HashParams
	if lister, ok := opts.Users.(interface{ HashParams() []HashParams }); ok {
		known = lister.HashParams()
	}
	hashes, err := NewPasswordHashes(opts.Hasher, opts.PasswordHash, known...)
	if err != nil {
		return nil, err
	}
	key, csrfKey := orRandomKey(opts.CodeKey), orRandomKey(opts.CSRFKey)
	codes := &CodeChallenges{Store: d.store, Key: key, TTL: opts.CodeTTL, ResendInterval: opts.ResendInterval, Now: d.now}
	lockout := &Lockout{Store: d.store, Attempts: opts.LockoutAttempts, Duration: opts.LockoutDuration}
	if lockout.Attempts <= 0 {
		lockout.Attempts = DefaultLockoutAttempts
	}
	if lockout.Duration <= 0 {
		lockout.Duration = DefaultLockoutDuration
	}
	limits := &Limits{deps: d, limits: opts.RateLimits}
	if limits.limits == nil {
		limits.limits = DefaultRateLimits
	}
	delivery := &delivery{codes: codes, sandbox: opts.Sandbox}

	accounts := &Accounts{deps: d, users: opts.Users}
	passwords := &Passwords{deps: d, accounts: accounts, hashes: hashes, lockout: lockout}
	sessions := &Sessions{deps: d, tokens: opts.Tokens, idle: idle, max: maxAge,
		accounts: accounts, passwords: passwords, limits: limits}
	passwords.sessions = sessions
	var passkeys *Passkeys
	if opts.Passkeys != nil {
		if passkeys, err = newPasskeys(d, sessions, limits, opts.Passkeys); err != nil {
			return nil, err
		}
	}
	return &Services{Passkeys: passkeys,
		Accounts: accounts, Passwords: passwords, Sessions: sessions, Limits: limits,
		StepUp: &StepUp{deps: d, sessions: sessions, accounts: accounts, limits: limits, delivery: delivery,
			otpSender: opts.OTPSender, pushSender: opts.PushSender, pushSecret: opts.PushSecret},
		ManageMFA: &ManageMFA{deps: d, accounts: accounts, passwords: passwords, limits: limits, delivery: delivery,
			otpSender: opts.OTPSender, emailSender: opts.EmailSender},
		Guard:  &Guard{sessions: sessions, now: d.now, metrics: d.metrics, outage: outage},
		CSRF:   NewCSRF(csrfKey),
		Tokens: opts.Tokens, Logger: d.log, Outage: outage, Health: &Health{store: d.store},
	}, nil
}

// orRandomKey is key, or when it is empty a random one: good for one
// process only.
func orRandomKey(key []byte) []byte {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	return key
}

// Health checks whether the store answers.
type Health struct {
	store Store
}

// Check pings the store: nil when it answers, an error wrapping
// ErrUnavailable when it does not.
func (h *Health) Check(ctx context.Context) error {
	return h.store.Ping(ctx)
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

// clientIP returns the client address recorded by WithRequestInfo, "" when
// none is.
func clientIP(ctx context.Context) string {
	info, _ := ctx.Value(requestInfoKey{}).(requestInfo)
	return info.clientIP
}

// auditFields are the request fields of an audit line.
func auditFields(ctx context.Context) []zap.Field {
	info, _ := ctx.Value(requestInfoKey{}).(requestInfo)
	return []zap.Field{zap.String("request_ref", info.ref), zap.String("client_ip", info.clientIP)}
}
