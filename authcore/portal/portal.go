// Package portal serves the browser portal (SPEC §12) as a plain net/http
// handler: the sign-in, step-up, password and sign-out pages of people
// who reach a guarded back office from a browser. A browser session is a
// store session like any other (authcore.Sessions.LoginBrowser), held by
// an opaque cookie; every form carries a CSRF token bound to the session,
// or before sign-in to a pre-session cookie.
//
// Pages are rendered with html/template from embedded files, and every
// link, form action and redirect between them is relative, so the portal
// works wherever it is mounted (handle_path /auth/* in the demo).
package portal

import (
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
)

// Options configure a Handler.
type Options struct {
	// Sessions, Accounts, Passwords, StepUp and CSRF are the services the
	// pages call (authcore.Services). Required.
	Sessions  *authcore.Sessions
	Accounts  *authcore.Accounts
	Passwords *authcore.Passwords
	StepUp    *authcore.StepUp
	CSRF      *authcore.CSRF
	// Passkeys, when set (the passkeys option), adds the passkey to the
	// step-up page and the passkeys page, where a stepped-up user enrols
	// one. Nil: no passkey anywhere.
	Passkeys *authcore.Passkeys
	// Cookies names the portal's cookies. Default NewCookies("").
	Cookies Cookies
	// Outage is told of every request refused because the store did not
	// answer. Default: one of its own.
	Outage *authcore.Outage
	// ClientIP returns the caller's address for logs and rate limits.
	// Default: the host of r.RemoteAddr.
	ClientIP func(r *http.Request) string
	// RequestRef returns the request's unique id, sent back in the
	// request-ref header and written in the logs. Default: a random id.
	RequestRef func(r *http.Request) string
	// RequestURI returns the path and query the browser asked for, before
	// any mount prefix was stripped: a page that sends the browser
	// elsewhere and back names itself with it. Default: r.URL.RequestURI().
	RequestURI func(r *http.Request) string
	// Logger receives audit lines. Default: none.
	Logger *zap.Logger
}

// Handler serves the portal's pages relative to the path it receives.
type Handler struct {
	sessions   *authcore.Sessions
	accounts   *authcore.Accounts
	passwords  *authcore.Passwords
	stepUp     *authcore.StepUp
	csrf       *authcore.CSRF
	passkeys   *authcore.Passkeys
	cookies    Cookies
	outage     *authcore.Outage
	clientIP   func(*http.Request) string
	requestRef func(*http.Request) string
	requestURI func(*http.Request) string
	log        *zap.Logger
	routes     *httpapi.Routes
}

// New returns a Handler.
func New(opts Options) *Handler {
	h := &Handler{sessions: opts.Sessions, accounts: opts.Accounts, passwords: opts.Passwords, stepUp: opts.StepUp,
		csrf: opts.CSRF, passkeys: opts.Passkeys, cookies: opts.Cookies, outage: opts.Outage, clientIP: opts.ClientIP,
		requestRef: opts.RequestRef, requestURI: opts.RequestURI, log: opts.Logger}
	if h.cookies.Session == "" {
		h.cookies = NewCookies("")
	}
	if h.requestURI == nil {
		h.requestURI = func(r *http.Request) string { return r.URL.RequestURI() }
	}
	httpapi.Defaults(&h.clientIP, &h.requestRef, &h.log, &h.outage)
	h.routes = httpapi.NewRoutes(
		func(w http.ResponseWriter, r *http.Request) {
			h.renderError(w, r, http.StatusNotFound, msgNotFound)
		},
		func(w http.ResponseWriter, r *http.Request) {
			h.renderError(w, r, http.StatusMethodNotAllowed, msgMethodNotAllowed)
		})
	h.routes.Handle("GET /{$}", h.index)
	h.routes.Handle("GET /login", h.loginPage)
	h.routes.Handle("POST /login", h.login)
	h.routes.Handle("GET /stepup", h.stepUpPage)
	h.routes.Handle("POST /stepup", h.stepUpAction)
	h.routes.Handle("POST /stepup/passkey/options", h.ceremonyOptions(ceremonyStepUp, h.passkeys.BeginStepUp))
	h.routes.Handle("POST /stepup/passkey", h.ceremonyFinish(ceremonyStepUp, h.passkeys.FinishStepUp, afterStepUp))
	h.routes.Handle("GET /stepup/push", h.pushPage)
	h.routes.Handle("GET /stepup/push/status", h.pushStatus)
	h.routes.Handle("GET /passkeys", h.passkeysPage)
	h.routes.Handle("POST /passkeys/options", h.ceremonyOptions(ceremonyEnrol, h.passkeys.BeginEnrol))
	h.routes.Handle("POST /passkeys", h.ceremonyFinish(ceremonyEnrol, h.passkeys.FinishEnrol, afterEnrol))
	h.routes.Handle("POST /passkeys/delete", h.passkeyDelete)
	h.routes.Handle("GET /password", h.passwordPage)
	h.routes.Handle("POST /password", h.changePassword)
	h.routes.Handle("POST /logout", h.logout)
	h.routes.Handle("GET /assets/{name}", h.asset)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ref := h.requestRef(r)
	setSecurityHeaders(w.Header())
	w.Header().Set("request-ref", ref)
	r = r.WithContext(authcore.WithRequestInfo(r.Context(), ref, h.clientIP(r)))
	if r.Method != http.MethodGet && r.Method != http.MethodHead && crossSite(r) {
		h.renderError(w, r, http.StatusForbidden, msgCrossSite)
		return
	}
	h.routes.ServeHTTP(w, r)
}

// setSecurityHeaders sets what every portal response carries: never
// cached, never framed, only its own assets, no sniffing, and no path or
// query leaked to other sites in Referer.
func setSecurityHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}

// crossSite reports whether an unsafe request comes from another site: a
// Sec-Fetch-Site of cross-site, or an Origin (when sent) whose host is not
// the one the request is addressed to. The scheme is not compared: behind
// a proxy that ends TLS the request arrives as plain HTTP.
func crossSite(r *http.Request) bool {
	if strings.EqualFold(r.Header.Get("Sec-Fetch-Site"), "cross-site") {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host)
}

// index sends a browser that opens the portal's root to the sign-in page.
func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	seeOther(w, r, PageLogin)
}

// seeOther answers 303 to target: a path of the portal (relative to its
// root, "login?..."), made relative to the request's own path so that the
// portal works wherever it is mounted.
func seeOther(w http.ResponseWriter, r *http.Request, target string) {
	w.Header().Set("Location", base(r)+target)
	w.WriteHeader(http.StatusSeeOther)
}

// seeReturn answers 303 to a sanitised return path (an absolute path of
// the site).
func seeReturn(w http.ResponseWriter, ret string) {
	w.Header().Set("Location", ret)
	w.WriteHeader(http.StatusSeeOther)
}

// base is the way from the request's path back to the portal's root, for
// relative links: "" for /login, "../" for /stepup/push.
func base(r *http.Request) string {
	return strings.Repeat("../", max(strings.Count(r.URL.Path, "/")-1, 0))
}

// The pages other handlers send browsers to (PageURL).
const (
	PageLogin    = "login"
	PageStepUp   = "stepup"
	PagePassword = "password"
	PagePasskeys = "passkeys"
	pagePush     = "stepup/push"
)

// PageURL is the address of a page of the portal mounted at mount (such
// as "/auth"), coming back to ret: where the guard sends a browser.
func PageURL(mount, page, ret string) string {
	return mount + "/" + withReturn(page, ret, stepUpNeed{})
}

// StepUpURL is the address of the step-up page of the portal mounted at
// mount, coming back to ret, for a route that counts a step-up no older
// than maxAge seconds (when not empty) by one of methods (any, when
// empty).
func StepUpURL(mount, ret, maxAge string, methods []string) string {
	return mount + "/" + withReturn(PageStepUp, ret, stepUpNeed{maxAge: maxAge, methods: strings.Join(methods, ",")})
}

// stepUpNeed is what the route that sent a browser to step up counts:
// max_age (seconds) and methods (a comma-separated list), each "" for
// any. The step-up pages carry both along.
type stepUpNeed struct {
	maxAge, methods string
}

// withReturn is a portal page (relative to the portal's root) with the
// return path, and the step-up need when set, as its query.
func withReturn(page, ret string, need stepUpNeed) string {
	return page + "?" + returnQuery(ret, need)
}

// returnQuery carries the return path and the step-up need from page to
// page, in the order the pages' addresses are written: return first.
func returnQuery(ret string, need stepUpNeed) string {
	q := "return=" + url.QueryEscape(ret)
	if need.maxAge != "" {
		q += "&max_age=" + url.QueryEscape(need.maxAge)
	}
	if need.methods != "" {
		q += "&methods=" + url.QueryEscape(need.methods)
	}
	return q
}
