package multiapi

import (
	"net/http"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
)

type passwordUpdateRequest struct {
	OldPassword *secret `json:"oldPassword"`
	NewPassword *secret `json:"newPassword"`
}

type passwordInfo struct {
	IdentityID authcore.IdentityRef `json:"identityId"`
	// ExpiryDate is in Unix milliseconds; 0: the password does not expire.
	ExpiryDate int64 `json:"expiryDate"`
}

// passwordsUpdate serves both an expired password's PASSWORD_UPDATE token
// and a normal session's token.
func (h *Handler) passwordsUpdate(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authenticate(w, r, h.sessions.AuthenticatePasswordUpdate)
	if !ok {
		return
	}
	var req passwordUpdateRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var bad []invalidField
	for _, f := range []struct {
		name string
		v    *secret
	}{{"oldPassword.value", req.OldPassword}, {"newPassword.value", req.NewPassword}} {
		if f.v == nil || f.v.Value == nil || *f.v.Value == "" {
			bad = append(bad, invalidField{FieldName: f.name, Error: "REQUIRED"})
		}
	}
	if len(bad) > 0 {
		writeInvalid(w, "request body has invalid fields", bad...)
		return
	}
	change, err := h.passwords.Change(r.Context(), c.session, *req.OldPassword.Value, *req.NewPassword.Value)
	if err != nil {
		h.writeChallengeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct {
		PasswordInfo passwordInfo `json:"passwordInfo"`
		Token        string       `json:"token"`
	}{passwordInfo{IdentityID: c.claims.Identity}, change.Token})
}
