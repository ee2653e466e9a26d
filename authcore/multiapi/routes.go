package multiapi

import (
	"context"
	"errors"
	"net/http"
	"regexp"

	"go.uber.org/zap"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
)

type caller struct {
	claims  *authcore.Claims
	session *authcore.Session
}

// authenticated wraps a route that needs a live AUTH or ACCESS token.
func (h *Handler) authenticated(fn func(http.ResponseWriter, *http.Request, *caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := h.authenticate(w, r, h.sessions.Authenticate)
		if ok {
			fn(w, r, c)
		}
	}
}

// authenticate checks the bearer token and its session with check:
// Sessions.Authenticate, or Sessions.AuthenticatePasswordUpdate on the one
// route a PASSWORD_UPDATE token serves.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request,
	check func(context.Context, string) (*authcore.Claims, *authcore.Session, error)) (*caller, bool) {
	token, ok := httpapi.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		httpapi.WriteMessage(w, http.StatusUnauthorized, "authentication required")
		return nil, false
	}
	claims, session, err := check(r.Context(), token)
	if err != nil {
		h.writeError(w, r, err)
		return nil, false
	}
	return &caller{claims: claims, session: session}, true
}

// writeRateLimited answers 429 with the limit and when it resets.
func writeRateLimited(w http.ResponseWriter, err error) {
	var rl *authcore.RateLimited
	errors.As(err, &rl)
	secs := httpapi.SetRateLimitHeaders(w.Header(), rl.Limit, rl.Reset)
	httpapi.WriteMessage(w, http.StatusTooManyRequests, "too many requests; retry after "+secs+" seconds")
}

// writeError answers the errors every route shares.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, authcore.ErrInvalidToken):
		httpapi.WriteMessage(w, http.StatusUnauthorized, "invalid or expired token")
	case errors.Is(err, authcore.ErrLocked):
		httpapi.WriteMessage(w, http.StatusLocked, "the account is temporarily locked after repeated failed logins")
	case errors.As(err, new(*authcore.RateLimited)):
		writeRateLimited(w, err)
	default:
		httpapi.WriteFailure(w, r, err, h.outage, h.log)
	}
}

type credentialsRef struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

func credentialsOf(s *authcore.Session) credentialsRef {
	return credentialsRef{Type: s.CredentialsType, ID: s.CredentialsID}
}

type secret struct {
	Value *string `json:"value"`
}

type loginRequest struct {
	Email    *string `json:"email"`
	Password *secret `json:"password"`
}

type loginResponse struct {
	Token       string               `json:"token"`
	TokenType   string               `json:"tokenType"`
	Identity    authcore.IdentityRef `json:"identity"`
	Credentials credentialsRef       `json:"credentials"`
}

const maxEmailLen = 254

func (h *Handler) loginWithPassword(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var bad []invalidField
	switch {
	case req.Email == nil || *req.Email == "":
		bad = append(bad, invalidField{FieldName: "email", Error: "REQUIRED"})
	case len(*req.Email) > maxEmailLen:
		bad = append(bad, invalidField{FieldName: "email", Error: "SIZE", Params: []string{"1", "254"}})
	}
	if req.Password == nil || req.Password.Value == nil || *req.Password.Value == "" {
		bad = append(bad, invalidField{FieldName: "password.value", Error: "REQUIRED"})
	}
	if len(bad) > 0 {
		writeInvalid(w, "request body has invalid fields", bad...)
		return
	}
	ref, ip := authcore.RequestRef(r.Context()), h.clientIP(r)
	ctx := authcore.WithUserAgent(r.Context(), r.UserAgent())
	res, err := h.sessions.Login(ctx, *req.Email, *req.Password.Value)
	var expired *authcore.PasswordExpiredError
	switch {
	case err == nil:
		h.log.Info("login", zap.String("request_ref", ref), zap.String("result", "success"),
			zap.String("credentials_id", res.Session.CredentialsID), zap.String("client_ip", ip))
		httpapi.WriteJSON(w, http.StatusOK, loginResponse{
			Token: res.Token, TokenType: authcore.TokenAuth,
			Identity: res.Session.Identity, Credentials: credentialsOf(res.Session),
		})
	case errors.As(err, &expired):
		h.log.Info("login", zap.String("request_ref", ref), zap.String("result", "password_expired"),
			zap.String("credentials_id", expired.Session.CredentialsID), zap.String("client_ip", ip))
		httpapi.WriteJSON(w, http.StatusConflict, struct {
			Token string `json:"token"`
		}{expired.Token})
	case errors.Is(err, authcore.ErrInvalidCredentials):
		h.log.Info("login", zap.String("request_ref", ref), zap.String("result", "invalid_credentials"),
			zap.String("client_ip", ip))
		httpapi.WriteMessage(w, http.StatusForbidden, "the email or password is incorrect")
	case errors.Is(err, authcore.ErrLocked):
		h.log.Info("login", zap.String("request_ref", ref), zap.String("result", "locked"),
			zap.String("client_ip", ip))
		h.writeError(w, r, err)
	default:
		h.writeError(w, r, err)
	}
}

type userIdentity struct {
	ID   authcore.IdentityRef `json:"id"`
	Name string               `json:"name"`
}

func (h *Handler) identities(w http.ResponseWriter, r *http.Request, c *caller) {
	user, err := h.accounts.User(r.Context(), c.session.CredentialsID)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := make([]userIdentity, 0, len(user.Identities))
	for _, id := range user.Identities {
		out = append(out, userIdentity{ID: id.Ref(), Name: id.Name})
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

type accessTokenRequest struct {
	Identity *struct {
		Type *string `json:"type"`
		ID   *string `json:"id"`
	} `json:"identity"`
}

type accessTokenResponse struct {
	Token       string               `json:"token"`
	Identity    authcore.IdentityRef `json:"identity"`
	Credentials credentialsRef       `json:"credentials"`
	Status      string               `json:"status"`
}

var digitsOnly = regexp.MustCompile(`^[0-9]{1,19}$`)

func (h *Handler) accessToken(w http.ResponseWriter, r *http.Request, c *caller) {
	var req accessTokenRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var bad []invalidField
	if req.Identity == nil {
		bad = append(bad, invalidField{FieldName: "identity", Error: "REQUIRED"})
	} else {
		switch {
		case req.Identity.Type == nil || *req.Identity.Type == "":
			bad = append(bad, invalidField{FieldName: "identity.type", Error: "REQUIRED"})
		case *req.Identity.Type != authcore.IdentityConsumer && *req.Identity.Type != authcore.IdentityCorporate:
			bad = append(bad, invalidField{FieldName: "identity.type", Error: "IN",
				Params: []string{authcore.IdentityConsumer, authcore.IdentityCorporate}})
		}
		switch {
		case req.Identity.ID == nil || *req.Identity.ID == "":
			bad = append(bad, invalidField{FieldName: "identity.id", Error: "REQUIRED"})
		case !digitsOnly.MatchString(*req.Identity.ID):
			bad = append(bad, invalidField{FieldName: "identity.id", Error: "REGEX", Params: []string{"^[0-9]+$"}})
		}
	}
	if len(bad) > 0 {
		writeInvalid(w, "request body has invalid fields", bad...)
		return
	}
	identity := authcore.IdentityRef{Type: *req.Identity.Type, ID: *req.Identity.ID}
	token, err := h.sessions.AccessToken(r.Context(), c.session, identity)
	if errors.Is(err, authcore.ErrIdentityNotAllowed) {
		httpapi.WriteMessage(w, http.StatusForbidden, "the identity is not available to this user")
		return
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	status := "STANDARD"
	if h.sessions.SteppedUp(c.session) {
		status = "STEPPED_UP"
	}
	httpapi.WriteJSON(w, http.StatusOK, accessTokenResponse{
		Token: token, Identity: identity, Credentials: credentialsOf(c.session), Status: status,
	})
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, c *caller) {
	if err := h.sessions.Logout(r.Context(), c.session); err != nil {
		h.writeError(w, r, err)
		return
	}
	h.log.Info("logout", zap.String("request_ref", authcore.RequestRef(r.Context())),
		zap.String("credentials_id", c.session.CredentialsID), zap.String("client_ip", h.clientIP(r)))
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) jwks(w http.ResponseWriter, _ *http.Request) {
	doc, ok := h.tokens.JWKS()
	if !ok {
		httpapi.WriteMessage(w, http.StatusNotFound, "no public keys: tokens are signed with a shared secret (HS256)")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(doc)
}

// healthCheck answers GET /health: 200 while the store answers, 503 while
// it does not (SPEC §10), for load balancers and probes.
func (h *Handler) healthCheck(w http.ResponseWriter, r *http.Request) {
	type health struct {
		Status string `json:"status"`
		Store  string `json:"store"`
	}
	if err := h.health.Check(r.Context()); err != nil {
		if errors.Is(err, authcore.ErrUnavailable) && !authcore.ClientGone(err) {
			h.outage.Refused()
		}
		w.Header().Set("Retry-After", "1")
		httpapi.WriteJSON(w, http.StatusServiceUnavailable, health{"unavailable", "unavailable"})
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, health{"ok", "ok"})
}
