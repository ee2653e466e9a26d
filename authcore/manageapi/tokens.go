package manageapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
)

// maxJWT bounds the token a backend may send for introspection or
// revocation: far above any token authgate issues.
const maxJWT = 8 << 10

// introspection is an RFC 7662 answer: {"active": false} alone for any
// token that is not live, the token's and its session's facts otherwise.
type introspection struct {
	Active          bool                  `json:"active"`
	Issuer          string                `json:"iss,omitempty"`
	Subject         string                `json:"sub,omitempty"`
	SessionID       string                `json:"sid,omitempty"`
	TokenType       string                `json:"token_type,omitempty"`
	IssuedAt        int64                 `json:"iat,omitempty"`
	ExpiresAt       int64                 `json:"exp,omitempty"`
	AMR             []string              `json:"amr,omitempty"`
	AuthTime        int64                 `json:"auth_time,omitempty"`
	SteppedUp       *bool                 `json:"stepped_up,omitempty"`
	Identity        *authcore.IdentityRef `json:"identity,omitempty"`
	CredentialsType string                `json:"credentials_type,omitempty"`
}

// formToken reads the token parameter of a form-encoded body (RFC 7662
// §2.1, RFC 7009 §2.1), answering 400 itself when there is none.
func formToken(w http.ResponseWriter, r *http.Request) (string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		writeFailure(w, r, InvalidRequest, "the body must be a form (application/x-www-form-urlencoded) with a token parameter")
		return "", false
	}
	if err := r.ParseForm(); err != nil {
		writeFailure(w, r, InvalidRequest, "the body is not a readable form")
		return "", false
	}
	token := r.PostForm.Get("token")
	if token == "" || len(token) > maxJWT {
		writeFailure(w, r, InvalidRequest, "token is required")
		return "", false
	}
	return token, true
}

// introspect answers POST /introspect (RFC 7662): whether a token is live,
// as the guard would decide it (and, like a guarded request, it counts as a
// use of the session). Dead, forged, expired, foreign-issuer and
// PASSWORD_UPDATE tokens are all {"active": false}, with no other detail.
func (h *Handler) introspect(w http.ResponseWriter, r *http.Request, _ *caller) {
	token, ok := formToken(w, r)
	if !ok {
		return
	}
	c, sess, err := h.sessions.Authenticate(r.Context(), token)
	switch {
	case errors.Is(err, authcore.ErrInvalidToken), errors.Is(err, authcore.ErrPasswordUpdateToken):
		httpapi.WriteJSON(w, http.StatusOK, introspection{Active: false})
		return
	case err != nil:
		h.writeError(w, r, err)
		return
	}
	amr, authTime := sess.AuthMethods()
	steppedUp := !sess.SteppedUp.IsZero()
	identity := c.Identity
	httpapi.WriteJSON(w, http.StatusOK, introspection{
		Active: true, Issuer: c.Issuer, Subject: c.Subject, SessionID: c.SessionID, TokenType: c.TokenType,
		IssuedAt: c.IssuedAt.Unix(), ExpiresAt: c.ExpiresAt.Unix(), AMR: amr, AuthTime: authTime.Unix(),
		SteppedUp: &steppedUp, Identity: &identity, CredentialsType: c.CredentialsType,
	})
}

// revoke answers POST /revoke (RFC 7009): the token's session ends on
// every node; 200 whether or not the token was live.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, _ *caller) {
	token, ok := formToken(w, r)
	if !ok {
		return
	}
	if err := h.sessions.Revoke(r.Context(), token); err != nil {
		h.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, newEnvelope(r.Context()))
}
