// Package multiapi serves the consumer-facing Multi API (Weavr "Multi"
// style) as a plain net/http handler: login, identities, access tokens,
// logout and the JWKS document.
package multiapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
)

// Options configure a Handler.
type Options struct {
	// Sessions, Accounts, Passwords, StepUp and Tokens are the services
	// the routes call (authcore.Services). Required.
	Sessions  *authcore.Sessions
	Accounts  *authcore.Accounts
	Passwords *authcore.Passwords
	StepUp    *authcore.StepUp
	Tokens    *authcore.Tokens
	// Passkeys serves the passkey routes (SPEC §14). Without it they are
	// not served.
	Passkeys *authcore.Passkeys
	// Health answers GET /health (no token, no api-key). Without it the
	// route is not served.
	Health *authcore.Health
	// Outage is told of every request refused because the store did not
	// answer, instead of a log line each. Default: one of its own.
	Outage *authcore.Outage
	// APIKeys, when any is set, are the values the api-key header must carry.
	APIKeys []string
	// ClientIP returns the caller's address for logs and rate limits.
	// Default: the host of r.RemoteAddr.
	ClientIP func(r *http.Request) string
	// RequestRef returns the request's unique id, sent back in the
	// request-ref header and written in the logs. Default: a random id.
	RequestRef func(r *http.Request) string
	// Logger receives audit lines. Default: none.
	Logger *zap.Logger
}

// Handler serves the Multi API routes relative to the path it receives.
type Handler struct {
	sessions   *authcore.Sessions
	accounts   *authcore.Accounts
	passwords  *authcore.Passwords
	stepUp     *authcore.StepUp
	passkeys   *authcore.Passkeys
	tokens     *authcore.Tokens
	health     *authcore.Health
	outage     *authcore.Outage
	apiKeys    [][32]byte
	clientIP   func(*http.Request) string
	requestRef func(*http.Request) string
	log        *zap.Logger
	routes     *httpapi.Routes
}

// New returns a Handler.
func New(opts Options) *Handler {
	h := &Handler{sessions: opts.Sessions, accounts: opts.Accounts, passwords: opts.Passwords, stepUp: opts.StepUp,
		passkeys: opts.Passkeys, tokens: opts.Tokens, health: opts.Health, outage: opts.Outage, clientIP: opts.ClientIP,
		requestRef: opts.RequestRef, log: opts.Logger}
	for _, k := range opts.APIKeys {
		h.apiKeys = append(h.apiKeys, sha256.Sum256([]byte(k)))
	}
	httpapi.Defaults(&h.clientIP, &h.requestRef, &h.log, &h.outage)
	h.routes = httpapi.NewRoutes(
		func(w http.ResponseWriter, _ *http.Request) {
			httpapi.WriteMessage(w, http.StatusNotFound, "no such route")
		},
		func(w http.ResponseWriter, _ *http.Request) {
			httpapi.WriteMessage(w, http.StatusMethodNotAllowed, "method not allowed")
		})
	if h.health != nil {
		h.routes.Handle("GET /health", h.healthCheck)
	}
	h.routes.Handle("POST /login_with_password", h.loginWithPassword)
	h.routes.Handle("GET /identities", h.authenticated(h.identities))
	h.routes.Handle("POST /access_token", h.authenticated(h.accessToken))
	h.routes.Handle("POST /logout", h.authenticated(h.logout))
	h.routes.Handle("GET /.well-known/jwks.json", h.jwks)
	h.routes.Handle("POST /passwords/update", h.passwordsUpdate)
	h.routes.Handle("POST /stepup/challenges/otp/{channel}", h.authenticated(h.codeIssueRoute(h.stepUp.IssueOTP)))
	h.routes.Handle("POST /stepup/challenges/otp/{channel}/verify", h.authenticated(h.codeVerifyRoute(h.stepUp.VerifyOTP)))
	h.routes.Handle("POST /stepup/challenges/push/{channel}", h.authenticated(h.issuePush))
	h.routes.Handle("GET /stepup/challenges/push/{channel}/{id}", h.authenticated(h.pushStatus))
	h.routes.Handle("POST /stepup/challenges/push/{channel}/{id}/resolve", h.resolvePush)
	h.routes.Handle("GET /authentication_factors", h.authenticated(h.factors))
	h.routes.Handle("POST /authentication_factors/otp/{channel}", h.authenticated(h.codeIssueRoute(h.stepUp.EnrolOTP)))
	h.routes.Handle("POST /authentication_factors/otp/{channel}/verify", h.authenticated(h.codeVerifyRoute(h.stepUp.VerifyEnrolOTP)))
	h.routes.Handle("POST /authentication_factors/push/{channel}", h.authenticated(h.pushFactorRoute(h.stepUp.EnrolPush)))
	h.routes.Handle("DELETE /authentication_factors/push/{channel}", h.authenticated(h.pushFactorRoute(h.stepUp.RemovePush)))
	if h.passkeys != nil {
		h.passkeyRoutes()
	}
	for _, outcome := range []string{authcore.SimulateSuccess, authcore.SimulateInvalid, authcore.SimulateExpired} {
		h.routes.Handle("POST /simulate/api/factors/{credentials_id}/challenges/{challenge_id}/"+outcome, h.simulate(outcome))
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ref := h.requestRef(r)
	w.Header().Set("request-ref", ref)
	r = r.WithContext(authcore.WithRequestInfo(r.Context(), ref, h.clientIP(r)))
	// The JWKS document is public by nature, a load balancer's health
	// check carries no key, and the push provider signs its resolve
	// callbacks instead: the api-key rule applies to none of them.
	if len(h.apiKeys) > 0 && !apiKeyExempt(r.URL.Path) && !h.checkAPIKey(w, r) {
		return
	}
	h.routes.ServeHTTP(w, r)
}

func (h *Handler) checkAPIKey(w http.ResponseWriter, r *http.Request) bool {
	key := r.Header.Get("api-key")
	if key == "" {
		writeInvalid(w, "api-key header is required", invalidField{FieldName: "api-key", Error: "REQUIRED"})
		return false
	}
	// Compare digests of every configured key so that neither the match
	// nor its position leaks through timing.
	sum := sha256.Sum256([]byte(key))
	match := 0
	for i := range h.apiKeys {
		match |= subtle.ConstantTimeCompare(sum[:], h.apiKeys[i][:])
	}
	if match != 1 {
		httpapi.WriteMessage(w, http.StatusUnauthorized, "invalid api-key")
		return false
	}
	return true
}

func apiKeyExempt(path string) bool {
	return path == "/.well-known/jwks.json" || path == "/health" ||
		(strings.HasPrefix(path, "/stepup/challenges/push/") && strings.HasSuffix(path, "/resolve"))
}
