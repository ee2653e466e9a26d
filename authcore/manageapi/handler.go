// Package manageapi serves the service-to-service Manage API (myKaarma
// "Manage v2" style) as a plain net/http handler: a trusted backend,
// authenticated with HTTP Basic as a service client, validates a user's
// password and learns the MFA requirements, or sends and validates a
// user's one-time code. Every answer is the envelope {errors, warnings,
// apiRequestId} plus its payload.
package manageapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
)

// Scopes a service client may be granted.
const (
	// ScopeUserRead: POST /v2/user/{UserName}/validate/password.
	ScopeUserRead = "manage.user.read"
	// ScopeUserWrite: DELETE /v2/user/{UserName}/rememberedDevices.
	ScopeUserWrite = "manage.user.write"
	// ScopeOTPVerify: POST /v2/user/validate/otp.
	ScopeOTPVerify = "manage.otp.verify"
	// ScopeOTPSend: POST /v2/user/send/otp.
	ScopeOTPSend = "manage.otp.send"
	// ScopeTokenIntrospect: POST /introspect (RFC 7662).
	ScopeTokenIntrospect = "token.introspect"
	// ScopeTokenRevoke: POST /revoke (RFC 7009).
	ScopeTokenRevoke = "token.revoke"
	// ScopeSessionAdmin: a user's sessions (list, end one or all) and
	// POST /v2/user/{UserName}/unlock.
	ScopeSessionAdmin = "manage.session.admin"
)

// Scopes lists every scope, for config validation.
var Scopes = []string{ScopeUserRead, ScopeUserWrite, ScopeOTPVerify, ScopeOTPSend, ScopeTokenIntrospect, ScopeTokenRevoke,
	ScopeSessionAdmin}

// ServiceClient is a backend allowed to call the Manage API.
type ServiceClient struct {
	// Name is the Basic-auth user name.
	Name string
	// Hash is the bcrypt or argon2id hash of its secret (the Basic-auth
	// password).
	Hash string
	// Scopes are the routes it may call.
	Scopes []string
}

// ValidateClients reports a config error in clients: an empty or
// duplicate name, a name with ':', a bad hash or an unknown scope.
func ValidateClients(clients []ServiceClient) error {
	seen := map[string]bool{}
	for _, c := range clients {
		switch {
		case c.Name == "" || strings.ContainsAny(c.Name, ": \t"):
			return fmt.Errorf("client name %q: must be non-empty, without ':' or spaces", c.Name)
		case seen[c.Name]:
			return fmt.Errorf("client %q: duplicate name", c.Name)
		case len(c.Scopes) == 0:
			return fmt.Errorf("client %q: no scopes: want one or more of %v", c.Name, Scopes)
		}
		seen[c.Name] = true
		if err := authcore.CheckHashFormat(c.Hash); err != nil {
			return fmt.Errorf("client %q: %w", c.Name, err)
		}
		for _, s := range c.Scopes {
			if !slices.Contains(Scopes, s) {
				return fmt.Errorf("client %q: unknown scope %q: want one of %v", c.Name, s, Scopes)
			}
		}
	}
	return nil
}

// Options configure a Handler.
type Options struct {
	// ManageMFA is the service the user routes call. Required.
	ManageMFA *authcore.ManageMFA
	// Sessions checks and ends tokens for /introspect and /revoke, and
	// sessions for the session routes; Accounts and Passwords find users
	// and lift lockouts for the session routes. Without all three those
	// routes are not served.
	Sessions  *authcore.Sessions
	Accounts  *authcore.Accounts
	Passwords *authcore.Passwords
	// Clients are the service clients; with none, every call answers 401.
	Clients []ServiceClient
	// ClientIP returns the connection's client address, used when the
	// caller sends no clientIp header. Default: the host of r.RemoteAddr.
	ClientIP func(r *http.Request) string
	// RequestRef returns the request's unique id, answered as
	// apiRequestId (and the request-ref header) and written in the logs.
	// Default: a random id.
	RequestRef func(r *http.Request) string
	// Logger receives audit lines. Default: none.
	Logger *zap.Logger
	// Hasher checks client secrets against their hashes. Default
	// authcore.DefaultHasher.
	Hasher authcore.Hasher
	// Metrics counts the requests by route and result. Default: none.
	Metrics authcore.Metrics
	// Outage is told of every request refused because the store did not
	// answer, instead of a log line each. Default: one of its own.
	Outage *authcore.Outage
}

// Handler serves the Manage API routes relative to the path it receives.
type Handler struct {
	mfa        *authcore.ManageMFA
	sessions   *authcore.Sessions
	accounts   *authcore.Accounts
	passwords  *authcore.Passwords
	clients    []serviceClient
	secrets    *authcore.PasswordHashes
	verified   sync.Map // credentialsDigest -> struct{}: secrets already checked
	clientIP   func(*http.Request) string
	requestRef func(*http.Request) string
	log        *zap.Logger
	count      func(route, result string) // the metrics' ManageRequest
	outage     *authcore.Outage
	routes     *httpapi.Routes
}

type serviceClient struct {
	ServiceClient
	nameSum [32]byte
}

// New checks opts and returns a Handler.
func New(opts Options) (*Handler, error) {
	if opts.ManageMFA == nil {
		return nil, errors.New("manage api needs the ManageMFA service")
	}
	if err := ValidateClients(opts.Clients); err != nil {
		return nil, err
	}
	h := &Handler{mfa: opts.ManageMFA, sessions: opts.Sessions, accounts: opts.Accounts,
		passwords: opts.Passwords, clientIP: opts.ClientIP, requestRef: opts.RequestRef, log: opts.Logger,
		count: func(string, string) {}, outage: opts.Outage}
	if opts.Metrics != nil {
		h.count = opts.Metrics.ManageRequest
	}
	var params []authcore.HashParams
	for _, c := range opts.Clients {
		c.Scopes = slices.Clone(c.Scopes)
		h.clients = append(h.clients, serviceClient{ServiceClient: c, nameSum: sha256.Sum256([]byte(c.Name))})
		p, _ := authcore.ParamsOf(c.Hash) // checked by ValidateClients
		params = append(params, p)
	}
	// Unknown names cost what known ones do, whatever their hashes. No
	// secret is hashed here, so the parameter sets are the clients' alone.
	own := authcore.DefaultHashParams
	if len(params) > 0 {
		own = params[0]
	}
	secrets, err := authcore.NewPasswordHashes(opts.Hasher, own, params...)
	if err != nil {
		return nil, err
	}
	h.secrets = secrets
	httpapi.Defaults(&h.clientIP, &h.requestRef, &h.log, &h.outage)
	h.routes = httpapi.NewRoutes(
		func(w http.ResponseWriter, r *http.Request) { writeFailure(w, r, notFound, "no such route") },
		func(w http.ResponseWriter, r *http.Request) {
			writeFailure(w, r, methodNotAllowed, "method not allowed")
		})
	h.route("validate_password", "POST /v2/user/{UserName}/validate/password", ScopeUserRead, h.validatePassword)
	h.route("remembered_devices", "DELETE /v2/user/{UserName}/rememberedDevices", ScopeUserWrite, h.forgetDevices)
	h.route("validate_otp", "POST /v2/user/validate/otp", ScopeOTPVerify, h.validateOTP)
	h.route("send_otp", "POST /v2/user/send/otp", ScopeOTPSend, h.sendOTP)
	if h.sessions != nil {
		h.route("introspect", "POST /introspect", ScopeTokenIntrospect, h.introspect)
		h.route("revoke", "POST /revoke", ScopeTokenRevoke, h.revoke)
	}
	if h.sessions != nil && h.accounts != nil && h.passwords != nil {
		h.route("list_sessions", "GET /v2/user/{UserName}/sessions", ScopeSessionAdmin, h.listSessions)
		h.route("end_session", "DELETE /v2/user/{UserName}/sessions/{id}", ScopeSessionAdmin, h.endSession)
		h.route("end_all_sessions", "DELETE /v2/user/{UserName}/sessions", ScopeSessionAdmin, h.endAllSessions)
		h.route("unlock", "POST /v2/user/{UserName}/unlock", ScopeSessionAdmin, h.unlock)
	}
	return h, nil
}

// caller is an authenticated, authorised request.
type caller struct {
	client string
	ip     string
}

// route registers a method-specific pattern behind Basic auth and scope;
// name is its label in the metrics.
func (h *Handler) route(name, pattern, scope string, fn func(http.ResponseWriter, *http.Request, *caller)) {
	h.routes.Handle(pattern, func(w http.ResponseWriter, r *http.Request) {
		if o, ok := w.(*outcome); ok {
			o.route = name
		}
		if c, ok := h.authorize(w, r, scope); ok {
			// The core's audit lines carry the address its limits use.
			r = r.WithContext(authcore.WithRequestInfo(r.Context(), authcore.RequestRef(r.Context()), c.ip))
			fn(w, r, c)
		}
	})
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ref := h.requestRef(r)
	w.Header().Set("request-ref", ref)
	r = r.WithContext(authcore.WithRequestInfo(r.Context(), ref, ""))
	o := &outcome{ResponseWriter: w, route: "unknown", result: "success"}
	h.routes.ServeHTTP(o, r)
	h.count(o.route, o.result)
}

// outcome is the ResponseWriter the routes write to: it records the
// request's route and result for the metrics (writeFailure sets the
// result).
type outcome struct {
	http.ResponseWriter
	route, result string
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (o *outcome) Unwrap() http.ResponseWriter { return o.ResponseWriter }

// authorize checks the Basic credentials (401 1002) and the route's scope
// (403 1003), and finds the end user's address: the clientIp header of
// the trusted caller when sent (400 1001 when not an IP), else the
// connection's.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, scope string) (*caller, bool) {
	client := h.authenticate(r)
	if client == nil {
		h.log.Info("manage auth", zap.String("request_ref", authcore.RequestRef(r.Context())), zap.String("result", "invalid_service_credentials"),
			zap.String("client_ip", h.clientIP(r)))
		w.Header().Set("WWW-Authenticate", `Basic realm="authgate manage", charset="UTF-8"`)
		writeFailure(w, r, InvalidServiceCredentials, "missing or invalid service client credentials")
		return nil, false
	}
	if !slices.Contains(client.Scopes, scope) {
		h.log.Info("manage auth", zap.String("request_ref", authcore.RequestRef(r.Context())), zap.String("result", "scope_not_granted"),
			zap.String("service_client", client.Name), zap.String("scope", scope))
		writeFailure(w, r, ScopeNotGranted, "the service client lacks scope "+scope)
		return nil, false
	}
	c := &caller{client: client.Name, ip: h.clientIP(r)}
	if v := r.Header.Get("clientIp"); v != "" {
		ip, err := netip.ParseAddr(v)
		if err != nil {
			writeFailure(w, r, InvalidRequest, "clientIp is not an IP address")
			return nil, false
		}
		c.ip = ip.Unmap().String()
	}
	return c, true
}

// authenticate returns the service client whose Basic credentials r
// carries, or nil. Names are compared as digests in constant time, and
// every check costs the same hash work (authcore.PasswordHashes), so neither
// which names exist, nor how long they are, nor their hash schemes show in
// the timing of a wrong secret. A secret that checked
// out once is remembered (as a digest) for the handler's life, as Caddy's
// basic_auth does, so that a busy backend does not pay a password hash
// per call.
func (h *Handler) authenticate(r *http.Request) *serviceClient {
	name, secret, ok := r.BasicAuth()
	if !ok {
		return nil
	}
	sum := sha256.Sum256([]byte(name))
	var found *serviceClient
	for i := range h.clients {
		if subtle.ConstantTimeCompare(sum[:], h.clients[i].nameSum[:]) == 1 {
			found = &h.clients[i]
		}
	}
	hash := ""
	if found != nil {
		hash = found.Hash
	}
	key := credentialsDigest(name, secret, hash)
	if _, ok := h.verified.Load(key); ok && found != nil {
		return found
	}
	if !h.secrets.Check(hash, secret) || found == nil {
		return nil
	}
	h.verified.Store(key, struct{}{})
	return found
}

func credentialsDigest(name, secret, hash string) [32]byte {
	d := sha256.New()
	for _, s := range []string{name, secret, hash} {
		d.Write([]byte(s))
		d.Write([]byte{0})
	}
	var out [32]byte
	d.Sum(out[:0])
	return out
}
