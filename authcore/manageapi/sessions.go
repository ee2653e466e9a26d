package manageapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
)

// sessionView is one of a user's sessions as the Manage API lists it
// (SPEC §13). id is the sid claim of the session's tokens; times are RFC
// 3339, UTC.
type sessionView struct {
	ID        string `json:"id"`
	Created   string `json:"created"`
	LastUsed  string `json:"lastUsed"`
	SteppedUp bool   `json:"steppedUp"`
	Method    string `json:"method"`
	ClientIP  string `json:"clientIp"`
	UserAgent string `json:"userAgent"`
	Kind      string `json:"kind"`
}

type sessionsAnswer struct {
	envelope
	Sessions []sessionView `json:"sessions"`
}

func viewOf(s *authcore.Session) sessionView {
	kind := s.Kind
	if kind == "" {
		kind = authcore.KindAPI
	}
	return sessionView{ID: s.ID, Created: s.Created.UTC().Format(time.RFC3339), LastUsed: s.LastUsed.UTC().Format(time.RFC3339),
		SteppedUp: !s.SteppedUp.IsZero(), Method: s.StepUpMethod, ClientIP: s.ClientIP, UserAgent: s.UserAgent, Kind: kind}
}

// adminUser finds the path's user, answering 404 itself when there is
// none.
func (h *Handler) adminUser(w http.ResponseWriter, r *http.Request) (*authcore.User, bool) {
	name := r.PathValue("UserName")
	if len(name) > maxUserName {
		writeFailure(w, r, InvalidRequest, "UserName is too long")
		return nil, false
	}
	user, err := h.accounts.UserByName(r.Context(), name)
	switch {
	case errors.Is(err, authcore.ErrUserNotFound):
		writeFailure(w, r, notFound, "no user "+name)
		return nil, false
	case err != nil:
		h.writeError(w, r, err)
		return nil, false
	}
	return user, true
}

// listSessions answers GET /v2/user/{UserName}/sessions.
func (h *Handler) listSessions(w http.ResponseWriter, r *http.Request, _ *caller) {
	user, ok := h.adminUser(w, r)
	if !ok {
		return
	}
	sessions, err := h.sessions.ListSessions(r.Context(), user)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	answer := sessionsAnswer{envelope: newEnvelope(r.Context()), Sessions: make([]sessionView, 0, len(sessions))}
	for _, s := range sessions {
		answer.Sessions = append(answer.Sessions, viewOf(s))
	}
	httpapi.WriteJSON(w, http.StatusOK, answer)
}

// endSession answers DELETE /v2/user/{UserName}/sessions/{id}: 200
// whether or not the session was live.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request, _ *caller) {
	user, ok := h.adminUser(w, r)
	if !ok {
		return
	}
	h.answer(w, r, h.sessions.EndSession(r.Context(), user, r.PathValue("id")))
}

// endAllSessions answers DELETE /v2/user/{UserName}/sessions.
func (h *Handler) endAllSessions(w http.ResponseWriter, r *http.Request, _ *caller) {
	user, ok := h.adminUser(w, r)
	if !ok {
		return
	}
	h.answer(w, r, h.sessions.EndAllSessions(r.Context(), user))
}

// unlock answers POST /v2/user/{UserName}/unlock.
func (h *Handler) unlock(w http.ResponseWriter, r *http.Request, _ *caller) {
	user, ok := h.adminUser(w, r)
	if !ok {
		return
	}
	h.answer(w, r, h.passwords.Unlock(r.Context(), user))
}

// answer sends the empty envelope for a done change, or err.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, newEnvelope(r.Context()))
}
