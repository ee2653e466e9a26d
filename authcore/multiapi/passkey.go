package multiapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
)

// passkeyRoutes serves the WebAuthn extensions of SPEC §14.
func (h *Handler) passkeyRoutes() {
	h.routes.Handle("POST /authentication_factors/passkeys", h.authenticated(h.passkeyOptions(h.passkeys.BeginEnrol)))
	// One path pattern for verify and {id}: ServeMux refuses a literal
	// .../verify beside DELETE .../{id} once the table adds its 405 route.
	verify := h.passkeyVerify(h.passkeys.FinishEnrol)
	h.routes.Handle("POST /authentication_factors/passkeys/{id}", h.authenticated(func(w http.ResponseWriter, r *http.Request, c *caller) {
		if r.PathValue("id") != "verify" {
			httpapi.WriteMessage(w, http.StatusNotFound, "no such route")
			return
		}
		verify(w, r, c)
	}))
	h.routes.Handle("DELETE /authentication_factors/passkeys/{id}", h.authenticated(h.passkeyDelete))
	h.routes.Handle("POST /stepup/challenges/passkey", h.authenticated(h.passkeyOptions(h.passkeys.BeginStepUp)))
	h.routes.Handle("POST /stepup/challenges/passkey/verify", h.authenticated(h.passkeyVerify(h.passkeys.FinishStepUp)))
}

// passkeyOptions answers 200 {"publicKey": <options>} for a ceremony.
func (h *Handler) passkeyOptions(begin func(context.Context, *authcore.Session) (json.RawMessage, error)) func(http.ResponseWriter, *http.Request, *caller) {
	return func(w http.ResponseWriter, r *http.Request, c *caller) {
		options, err := begin(r.Context(), c.session)
		if err != nil {
			h.writeChallengeError(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, struct {
			PublicKey json.RawMessage `json:"publicKey"`
		}{options})
	}
}

// passkeyVerify checks the client's PublicKeyCredential JSON: 204.
func (h *Handler) passkeyVerify(finish func(context.Context, *authcore.Session, []byte) error) func(http.ResponseWriter, *http.Request, *caller) {
	return func(w http.ResponseWriter, r *http.Request, c *caller) {
		var body json.RawMessage
		if !decodeBody(w, r, &body) {
			return
		}
		h.answer(w, r, finish(r.Context(), c.session, body))
	}
}

func (h *Handler) passkeyDelete(w http.ResponseWriter, r *http.Request, c *caller) {
	err := h.passkeys.Delete(r.Context(), c.session, r.PathValue("id"))
	if errors.Is(err, authcore.ErrNotFound) {
		httpapi.WriteMessage(w, http.StatusNotFound, "no such passkey")
		return
	}
	h.answer(w, r, err)
}
