package authcore

import (
	"context"
	"time"
)

// RateLimit is a fixed-window limit per bucket: a client address, or on
// the Manage API an end-user address or a user name.
type RateLimit struct {
	// Limit is the number of requests allowed per Window.
	Limit int
	// Window is the length of the fixed window.
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
	// Limit is the number of requests the window allows.
	Limit int
	// Reset is how long until the window ends.
	Reset time.Duration
}

// Error implements error.
func (e *RateLimited) Error() string { return "rate limited" }

// Limits are the fixed-window rate limits of both APIs, counted in the
// store (Keys.RateLimit, Keys.ManageRateLimitIP, Keys.ManageRateLimitUser)
// so that a limit holds across every node. The services apply them where
// their operations begin, for both APIs alike; the client address is the
// one the handler recorded in the context (WithRequestInfo). A call
// without one (a direct library call) is not limited per address.
type Limits struct {
	deps
	limits map[string]RateLimit
}

// Allow counts a Multi API request of action from clientIP against its
// limit. It returns *RateLimited when the limit is used up.
func (l *Limits) Allow(ctx context.Context, action, clientIP string) error {
	return l.allow(ctx, action, func(window int64) string { return Keys.RateLimit(action, clientIP, window) })
}

// allowClient is Allow for the client address in ctx.
func (l *Limits) allowClient(ctx context.Context, action string) error {
	ip := clientIP(ctx)
	if ip == "" {
		return nil
	}
	return l.Allow(ctx, action, ip)
}

// allowManage counts a Manage API request of action against two limits
// of the action's size, in buckets of their own: one per end-user address
// (the clientIp the service client reports, else the connection's, in
// ctx), so a backend serving many users is not limited as one client, and
// one per user name, so no spread of addresses gets more tries at one
// account.
func (l *Limits) allowManage(ctx context.Context, action, userName string) error {
	if ip := clientIP(ctx); ip != "" {
		if err := l.allow(ctx, action, func(window int64) string { return Keys.ManageRateLimitIP(action, ip, window) }); err != nil {
			return err
		}
	}
	return l.allow(ctx, action, func(window int64) string { return Keys.ManageRateLimitUser(action, userName, window) })
}

// allow counts a request in the fixed window whose key bucket names.
func (l *Limits) allow(ctx context.Context, action string, bucket func(window int64) string) error {
	rl, ok := l.limits[action]
	if !ok || rl.Limit <= 0 {
		return nil
	}
	now := l.now()
	window := now.UnixMilli() / rl.Window.Milliseconds()
	reset := time.UnixMilli((window + 1) * rl.Window.Milliseconds()).Sub(now)
	n, err := l.store.Incr(ctx, bucket(window), rl.Window)
	if err != nil {
		return storeError(err)
	}
	if n > int64(rl.Limit) {
		return &RateLimited{Limit: rl.Limit, Reset: reset}
	}
	return nil
}
