package authcore

import (
	"context"
	"errors"
	"strconv"
	"time"
)

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
	Store    Store
	Attempts int
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

// RateLimit is a fixed-window limit per bucket: a client address, or on
// the Manage API an end-user address or a user name.
type RateLimit struct {
	// Limit is the number of requests allowed per Window.
	Limit  int
	Window time.Duration
}

// Rate-limited actions.
const (
	LimitLogin      = "login"
	LimitCodeIssue  = "code_issue"
	LimitCodeVerify = "code_verify"
)

// DefaultRateLimits are the limits when none are configured: per client
// IP on the Multi API; per end-user address and per user name on the
// Manage API.
var DefaultRateLimits = map[string]RateLimit{
	LimitLogin:      {Limit: 10, Window: time.Minute},
	LimitCodeIssue:  {Limit: 10, Window: time.Minute},
	LimitCodeVerify: {Limit: 30, Window: time.Minute},
}

// RateLimited is a refused request: retry after Reset.
type RateLimited struct {
	Limit int
	Reset time.Duration
}

func (e *RateLimited) Error() string { return "rate limited" }

// Allow counts a Multi API request of action from clientIP against its
// limit, in the store so the limit holds across nodes. It returns
// *RateLimited when the limit is used up.
func (g *Gateway) Allow(ctx context.Context, action, clientIP string) error {
	return g.allow(ctx, action, func(window int64) string { return Keys.RateLimit(action, clientIP, window) })
}

// allowManage counts a Manage API request of action against two limits
// of the action's size, in buckets of their own: one per end-user address
// (the clientIp the service client reports, else the connection's), so a
// backend serving many users is not limited as one client, and one per
// user name, so no spread of addresses gets more tries at one account.
func (g *Gateway) allowManage(ctx context.Context, action, clientIP, userName string) error {
	if err := g.allow(ctx, action, func(window int64) string { return Keys.ManageRateLimitIP(action, clientIP, window) }); err != nil {
		return err
	}
	return g.allow(ctx, action, func(window int64) string { return Keys.ManageRateLimitUser(action, userName, window) })
}

// allow counts a request in the fixed window whose key bucket names.
func (g *Gateway) allow(ctx context.Context, action string, bucket func(window int64) string) error {
	rl, ok := g.limits[action]
	if !ok || rl.Limit <= 0 {
		return nil
	}
	now := g.now()
	window := now.UnixMilli() / rl.Window.Milliseconds()
	reset := time.UnixMilli((window + 1) * rl.Window.Milliseconds()).Sub(now)
	n, err := g.store.Incr(ctx, bucket(window), rl.Window)
	if err != nil {
		return storeError(err)
	}
	if n > int64(rl.Limit) {
		return &RateLimited{Limit: rl.Limit, Reset: reset}
	}
	return nil
}
