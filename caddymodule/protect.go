package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/http/httpguts"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
	"github.com/authgate/authgate/authcore/portal"
)

func init() {
	caddy.RegisterModule(Guard{})
}

// GuardConfig is what a guarded route demands. The guard handler
// (authgate_protect) and the authentication provider share it.
type GuardConfig struct {
	// Token is the token kind accepted: "access" (default), "auth" or "any".
	Token string `json:"token,omitempty"`
	// StepUp requires a stepped-up session.
	StepUp bool `json:"stepup,omitempty"`
	// StepUpMaxAge, with StepUp, requires the step-up to be at most this
	// old. Default 0: any step-up of the session counts.
	StepUpMaxAge caddy.Duration `json:"stepup_max_age,omitempty"`
	// StepUpMethods, with StepUp, are the step-up methods that count:
	// "otp", "push", "passkey". Default none: any. A route that counts
	// only "passkey" asks for it in its challenge (acr_values="phr").
	StepUpMethods []string `json:"stepup_methods,omitempty"`
	// IdentityType, when set (CONSUMER or CORPORATE), must be the token's.
	IdentityType string `json:"identity_type,omitempty"`
	// CredentialsType, when set (ROOT or USER), must be the token's.
	CredentialsType string `json:"credentials_type,omitempty"`
	// HeaderPrefix prefixes the identity headers set for the backend;
	// client-sent headers with this prefix are removed. Default
	// "X-Authgate-".
	HeaderPrefix string `json:"header_prefix,omitempty"`
	// RawPaths is "refuse" (default) or "allow". Refused with 400, before
	// any token work, are request paths that a backend could read as
	// another route than the one Caddy matched on the cleaned path: in the
	// raw path an encoded "/", "\" or "." (%2f, %5c, %2e), a "\", a ";",
	// a NUL, a "#", or a segment that is "." or ".." or ends in ".". Set
	// "allow" for a backend that needs such paths.
	RawPaths string `json:"raw_paths,omitempty"`
	// Portal is the path authgate_portal is mounted at (such as "/auth").
	// When set, the route also accepts the portal's session cookie (a
	// bearer token, when sent, is checked instead), and a browser
	// navigation (GET or HEAD accepting text/html) that cannot pass is
	// redirected (302) to the portal's sign-in, step-up or password page
	// rather than refused. Default none: bearer tokens only. Not for the
	// authentication provider, which cannot redirect.
	Portal string `json:"portal,omitempty"`
}

// Guard is the authgate_protect handler: it guards the routes after it.
// Only requests with a live token of the right kind, from a session that
// meets the route's step-up demand, pass on, carrying the caller's
// identity in headers clients cannot forge.
type Guard struct {
	GuardConfig
	routeGuard
}

// routeGuard is what the guard handler and the authentication provider
// share: the route's policy and the core's decision on each request.
type routeGuard struct {
	policy        authcore.GuardPolicy
	headers       *authcore.IdentityHeaders
	allowRawPaths bool
	portal        string
	cookies       portal.Cookies
	app           *App
	logger        *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Guard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.authgate_protect",
		New: func() caddy.Module { return new(Guard) },
	}
}

// Provision implements caddy.Provisioner.
func (p *Guard) Provision(ctx caddy.Context) error {
	return p.routeGuard.provision(ctx, p.GuardConfig)
}

// Validate implements caddy.Validator.
func (p *Guard) Validate() error { return p.GuardConfig.validate() }

// check is validate for the Caddyfile parser, which holds a pointer.
func (c *GuardConfig) check() error { return c.validate() }

// checkVerify is validate for authgate_verify, which has no portal to send
// a browser to.
func (c *GuardConfig) checkVerify() error {
	if c.Portal != "" {
		return fmt.Errorf("portal: authgate_verify answers another proxy and cannot redirect; configure the redirect in that proxy")
	}
	return c.validate()
}

func (c GuardConfig) validate() error {
	switch c.Token {
	case "", authcore.GuardAccess, authcore.GuardAuth, authcore.GuardAny:
	default:
		return fmt.Errorf("token: unknown kind %q: want access, auth or any", c.Token)
	}
	switch c.IdentityType {
	case "", authcore.IdentityConsumer, authcore.IdentityCorporate:
	default:
		return fmt.Errorf("identity_type: %q: want CONSUMER or CORPORATE", c.IdentityType)
	}
	switch c.CredentialsType {
	case "", authcore.CredentialsRoot, authcore.CredentialsUser:
	default:
		return fmt.Errorf("credentials_type: %q: want ROOT or USER", c.CredentialsType)
	}
	if c.HeaderPrefix != "" && !httpguts.ValidHeaderFieldName(c.HeaderPrefix+"X") {
		return fmt.Errorf("header_prefix: %q is not a valid header name prefix", c.HeaderPrefix)
	}
	// The guard strips every client header under the prefix, so a prefix
	// that starts a standard header name would strip that header too.
	for _, std := range standardHeaders {
		if len(c.HeaderPrefix) <= len(std) && strings.EqualFold(std[:len(c.HeaderPrefix)], c.HeaderPrefix) && c.HeaderPrefix != "" {
			return fmt.Errorf("header_prefix: %q would also strip the standard header %s", c.HeaderPrefix, std)
		}
	}
	switch c.RawPaths {
	case "", rawPathsRefuse, rawPathsAllow:
	default:
		return fmt.Errorf("raw_paths: %q: want allow or refuse", c.RawPaths)
	}
	if c.StepUpMaxAge < 0 {
		return fmt.Errorf("stepup: max_age must be positive")
	}
	if c.StepUpMaxAge > 0 && !c.StepUp {
		return fmt.Errorf("stepup_max_age is set but stepup is not")
	}
	if len(c.StepUpMethods) > 0 && !c.StepUp {
		return fmt.Errorf("stepup_methods is set but stepup is not")
	}
	for i, m := range c.StepUpMethods {
		if !slices.Contains(stepUpMethods, m) {
			return fmt.Errorf("stepup: unknown method %q: want otp, push or passkey", m)
		}
		if slices.Contains(c.StepUpMethods[:i], m) {
			return fmt.Errorf("stepup: method %q named twice", m)
		}
	}
	if c.Portal != "" && (!strings.HasPrefix(c.Portal, "/") || strings.HasSuffix(c.Portal, "/") ||
		strings.ContainsAny(c.Portal, "?#\\ \t\r\n")) {
		return fmt.Errorf("portal: %q: want the path authgate_portal is mounted at, such as /auth", c.Portal)
	}
	return nil
}

// stepUpMethods are the step-up methods a route may count.
var stepUpMethods = []string{authcore.StepUpOTP, authcore.StepUpPush, authcore.StepUpPasskey}

// Values of raw_paths.
const (
	rawPathsRefuse = "refuse"
	rawPathsAllow  = "allow"
)

// standardHeaders are request headers a header_prefix must not cover.
var standardHeaders = []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
	"Connection", "Content-Length", "Content-Type", "Cookie", "Expect", "Forwarded", "Host", "If-Match",
	"If-Modified-Since", "If-None-Match", "Origin", "Proxy-Authorization", "Range", "Referer", "TE", "Trailer",
	"Transfer-Encoding", "Upgrade", "User-Agent", "Via", "X-Forwarded-For", "X-Forwarded-Host",
	"X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id"}

func (g *routeGuard) provision(ctx caddy.Context, c GuardConfig) error {
	if err := c.validate(); err != nil {
		return err
	}
	app, err := appFrom(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(c.StepUpMethods, authcore.StepUpPasskey) && app.Passkeys == nil {
		return errors.New("stepup: method passkey needs the passkeys global option (passkeys <rp_id> <origin>...)")
	}
	g.app, g.logger = app, ctx.Logger()
	g.policy = authcore.GuardPolicy{
		Token: c.Token, StepUp: c.StepUp, MaxAge: time.Duration(c.StepUpMaxAge), StepUpMethods: c.StepUpMethods,
		IdentityType: c.IdentityType, CredentialsType: c.CredentialsType,
	}
	if g.policy.Token == "" {
		g.policy.Token = authcore.GuardAccess
	}
	prefix := c.HeaderPrefix
	if prefix == "" {
		prefix = authcore.DefaultHeaderPrefix
	}
	g.headers = authcore.NewIdentityHeaders(prefix)
	g.allowRawPaths = c.RawPaths == rawPathsAllow
	g.portal, g.cookies = c.Portal, portal.NewCookies(app.CookieName)
	return nil
}

// decide decides the request. ambiguous, when not "", is why its raw
// path was refused before any token work (see checkPath). browser says
// that the decision was made from the portal's cookie, which the guard
// reads only on a route that names a portal and only when no bearer token
// was sent. On admission it has replaced the identity headers (and the
// trailers and Connection names that could undo them), removed the
// portal's cookies, and set the {http.auth.user.*} placeholders.
func (g *routeGuard) decide(r *http.Request) (d authcore.Decision, browser bool, ambiguous string) {
	if ambiguous = g.checkPath(r); ambiguous != "" {
		return d, false, ambiguous
	}
	if d, browser = g.decideCaller(r, g.portal != ""); !d.Admitted() {
		return d, browser, ""
	}
	g.headers.Prepare(r, &d)
	g.cookies.Strip(r.Header)
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		// Resolved only if a later handler asks: most routes never do, and
		// eager writes cost a map and six replacer entries per request.
		claims, session := d.Claims, d.Session
		repl.Map(func(key string) (any, bool) {
			name, ok := strings.CutPrefix(key, "http.auth.user.")
			if !ok {
				return nil, false
			}
			if name == "id" {
				return claims.Subject, true
			}
			return userPlaceholder(&authcore.Decision{Claims: claims, Session: session}, name)
		})
	}
	return d, browser, ""
}

// decideCaller asks the core about the request's bearer token or, when
// cookie is set and no bearer token was sent, about the portal's session
// cookie (browser), and logs a refusal as its kind deserves: nothing above
// DEBUG but a bug.
func (g *routeGuard) decideCaller(r *http.Request, cookie bool) (d authcore.Decision, browser bool) {
	token, _ := httpapi.BearerToken(r.Header.Get("Authorization"))
	if token == "" && cookie {
		browser = true
		d = g.app.Services().Guard.DecideBrowser(r.Context(), g.cookies.SessionValue(r), &g.policy)
	} else {
		d = g.app.Services().Guard.Decide(r.Context(), token, &g.policy)
	}
	switch d.Refusal {
	case authcore.NotRefused:
	case authcore.RefusedUnavailable:
		// The core's outage log speaks for all of them, a few lines in all.
		if c := g.logger.Check(zapcore.DebugLevel, "guard: store unavailable"); c != nil {
			c.Write(zap.Error(d.Cause))
		}
	case authcore.RefusedInternal:
		if c := g.logger.Check(zapcore.ErrorLevel, "guard: internal error"); c != nil {
			c.Write(zap.Error(d.Cause))
		}
	default:
		if c := g.logger.Check(zapcore.DebugLevel, "guard: rejected"); c != nil {
			c.Write(zap.Int("status", httpapi.GuardStatus(d.Refusal)), zap.Stringer("reason", d.Refusal))
		}
	}
	return d, browser
}

// checkPath refuses a raw path that a backend could read as another route
// than the one matched (authcore.AmbiguousPath), unless raw_paths allow,
// and says why. RequestURI is the target as the client sent it; a request
// made inside the server has none, and its URL is checked instead.
func (g *routeGuard) checkPath(r *http.Request) string {
	target := r.RequestURI
	if target == "" {
		target = r.URL.EscapedPath()
	}
	return g.checkTarget(target)
}

// checkTarget is checkPath for a request target given as text.
func (g *routeGuard) checkTarget(target string) string {
	if g.allowRawPaths {
		return ""
	}
	reason := authcore.AmbiguousPath(target)
	if reason == "" {
		return ""
	}
	if c := g.logger.Check(zapcore.DebugLevel, "guard: ambiguous path refused"); c != nil {
		c.Write(zap.String("reason", reason))
	}
	return reason
}

// userPlaceholder resolves {http.auth.user.<name>} for an admission.
func userPlaceholder(d *authcore.Decision, name string) (any, bool) {
	switch name {
	case "credentials_type":
		return d.Claims.CredentialsType, true
	case "identity_id":
		return d.Claims.Identity.ID, true
	case "identity_type":
		return d.Claims.Identity.Type, true
	case "stepped_up":
		return strconv.FormatBool(d.SteppedUp()), true
	case "auth_time":
		return strconv.FormatInt(d.AuthTime().Unix(), 10), true
	}
	return nil, false
}

// userMetadata is the caller as caddyauth.User metadata (the provider).
func userMetadata(d *authcore.Decision) map[string]string {
	m := make(map[string]string, len(userPlaceholderNames))
	for _, name := range userPlaceholderNames {
		v, _ := userPlaceholder(d, name)
		m[name] = v.(string)
	}
	return m
}

var userPlaceholderNames = []string{"credentials_type", "identity_id", "identity_type", "stepped_up", "auth_time"}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (p *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	d, browser, ambiguous := p.decide(r)
	switch {
	case ambiguous != "":
		httpapi.WriteMessage(w, http.StatusBadRequest, "ambiguous request path: it has "+ambiguous)
		return nil
	case !d.Admitted():
		if page := p.portalPage(r, &d, browser); page != "" {
			w.Header().Set("Location", page)
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusFound)
			return nil
		}
		httpapi.WriteGuardRefusal(w, &d)
		return nil
	}
	return next.ServeHTTP(w, r)
}

// portalPage is where a browser goes instead of a refusal on a route that
// names a portal: the sign-in page without a live session, the step-up
// page (with the route's max_age and step-up methods) for a session that has not stepped up
// recently enough, and the password page for the session of an expired
// password; each comes back to the request's path and query. It is ""
// for every other refusal, for a request decided by a bearer token, and
// for any request that is not a navigation, which get the answers of an
// API client.
func (p *Guard) portalPage(r *http.Request, d *authcore.Decision, browser bool) string {
	if !browser || !isNavigation(r) {
		return ""
	}
	ret := originalURI(r)
	switch d.Refusal {
	case authcore.RefusedNoToken, authcore.RefusedInvalidToken:
		return portal.PageURL(p.portal, portal.PageLogin, ret)
	case authcore.RefusedPasswordUpdateToken:
		return portal.PageURL(p.portal, portal.PagePassword, ret)
	case authcore.RefusedStepUpRequired:
		maxAge := ""
		if d.MaxAge > 0 {
			maxAge = strconv.FormatInt(int64(d.MaxAge/time.Second), 10)
		}
		return portal.StepUpURL(p.portal, ret, maxAge, d.Methods)
	}
	return ""
}

// isNavigation reports whether a browser is loading a page: a GET or HEAD
// whose Accept names text/html. Scripts (Accept: application/json) and
// form posts get the API answers.
func isNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		strings.Contains(strings.ToLower(r.Header.Get("Accept")), "text/html")
}

// originalURI is the path and query the client asked for, before any
// handle_path or rewrite changed them.
func originalURI(r *http.Request) string {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		return orig.URL.RequestURI()
	}
	return r.URL.RequestURI()
}

var (
	_ caddy.Provisioner           = (*Guard)(nil)
	_ caddy.Validator             = (*Guard)(nil)
	_ caddyhttp.MiddlewareHandler = (*Guard)(nil)
)
