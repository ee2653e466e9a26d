package portal

// The portal's passkeys (SPEC §14): the step-up page offers the user's
// passkeys, and the passkeys page lists them and enrols one. A ceremony
// is two POSTs that passkey.js makes from the page: one for the options
// it hands to navigator.credentials, one with the browser's answer. Both
// take the form's CSRF token and answer JSON ({"publicKey"} then
// {"location"}, or {"message"} in words); the ceremonies themselves are
// authcore.Passkeys', so the portal checks exactly what the API checks.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
)

// passkeyRow is one passkey on the passkeys page: its id, and the start
// of it that the page shows.
type passkeyRow struct {
	ID, Short string
}

// ceremonyView is what the passkey-ceremony template shows: a button that
// runs the ceremony (get or create) with the page's CSRF token, through
// the options and finish routes (relative to the portal's root).
type ceremonyView struct {
	Page                             *page
	Ceremony, Options, Finish, Label string
	Words                            map[string]string
}

// ceremony is the template function that builds a ceremonyView.
func ceremony(p *page, kind, options, finish, label string) ceremonyView {
	return ceremonyView{Page: p, Ceremony: kind, Options: options, Finish: finish, Label: label, Words: passkeyWords}
}

// passkeysView is the passkeys page of a session.
func (h *Handler) passkeysView(r *http.Request, sess *authcore.Session, ret string) (*page, error) {
	ctx := r.Context()
	u, err := h.accounts.User(ctx, sess.CredentialsID)
	if err != nil {
		return nil, err
	}
	ids, err := h.passkeys.List(ctx, sess.CredentialsID)
	if err != nil {
		return nil, err
	}
	p := &page{Title: "Your passkeys", CSRF: h.csrf.ForSession(sess), Return: ret, SignedInAs: u.Email,
		Scripts: []string{scriptPasskey}}
	for _, id := range ids {
		p.Passkeys = append(p.Passkeys, passkeyRow{ID: id, Short: id[:min(len(id), 12)]})
	}
	return p, nil
}

// passkeysPage lists the user's passkeys and enrols one. Like the API, it
// needs a session that has stepped up: any other is sent to step up
// first, coming back here.
func (h *Handler) passkeysPage(w http.ResponseWriter, r *http.Request) {
	if h.passkeys == nil {
		h.renderError(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	q := r.URL.Query()
	ret, here := safeReturn(q.Get("return")), safeReturn(h.requestURI(r))
	sess, ok := h.session(w, r, h.sessions.AuthenticateBrowser, here)
	if !ok {
		return
	}
	if !h.passkeys.CanEnrol(sess) {
		seeOther(w, r, withReturn(PageStepUp, here, stepUpNeed{}))
		return
	}
	p, err := h.passkeysView(r, sess, ret)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	switch q.Get("done") {
	case doneAdded:
		p.Notice = msgPasskeyAdded
	case doneRemoved:
		p.Notice = msgPasskeyRemoved
	}
	h.render(w, r, http.StatusOK, "passkeys", p)
}

// What the passkeys page says it has just done (its done parameter).
const (
	doneAdded   = "added"
	doneRemoved = "removed"
)

// passkeysDone is the passkeys page (relative to the portal's root) after
// done, coming back to ret.
func passkeysDone(ret, done string) string {
	return withReturn(PagePasskeys, ret, stepUpNeed{}) + "&done=" + url.QueryEscape(done)
}

// passkeyDelete serves the passkeys page's remove buttons.
func (h *Handler) passkeyDelete(w http.ResponseWriter, r *http.Request) {
	if h.passkeys == nil {
		h.renderError(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	if !h.parseForm(w, r) {
		return
	}
	f := r.PostForm
	ret := safeReturn(f.Get("return"))
	page := withReturn(PagePasskeys, ret, stepUpNeed{})
	sess, ok := h.formSession(w, r, h.sessions.AuthenticateBrowser, ret)
	if !ok {
		return
	}
	switch err := h.passkeys.Delete(r.Context(), sess, f.Get("id")); {
	case err == nil:
		seeOther(w, r, passkeysDone(ret, doneRemoved))
	case errors.Is(err, authcore.ErrStepUpRequired):
		seeOther(w, r, page)
	case errors.Is(err, authcore.ErrNotFound):
		p, err := h.passkeysView(r, sess, ret)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		p.Error = msgUnknownPasskey
		h.render(w, r, http.StatusNotFound, "passkeys", p)
	case errors.As(err, new(*authcore.ChallengeError)):
		// Another ceremony changed the passkeys meanwhile: show them again.
		seeOther(w, r, page)
	default:
		h.fail(w, r, err)
	}
}

// ceremonySession reads the form of a ceremony's POST and its session,
// and checks the CSRF token. On failure it has answered, in JSON.
func (h *Handler) ceremonySession(w http.ResponseWriter, r *http.Request) (*authcore.Session, bool) {
	if h.passkeys == nil {
		httpapi.WriteMessage(w, http.StatusNotFound, msgNotFound)
		return nil, false
	}
	if status, ok := readForm(w, r); !ok {
		httpapi.WriteMessage(w, status, msgBadForm)
		return nil, false
	}
	sess, err := h.sessions.AuthenticateBrowser(r.Context(), h.cookies.SessionValue(r))
	if err != nil {
		h.ceremonyFailed(w, r, "", err)
		return nil, false
	}
	if !h.csrf.Valid(h.csrf.ForSession(sess), r.PostForm.Get("csrf")) {
		httpapi.WriteMessage(w, http.StatusForbidden, msgCSRF)
		return nil, false
	}
	return sess, true
}

// credential is the browser's answer to a ceremony, as passkey.js posts
// it (the PublicKeyCredential as JSON); false, having answered 400, when
// there is none.
func credential(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	c := r.PostForm.Get("credential")
	if c == "" {
		httpapi.WriteMessage(w, http.StatusBadRequest, msgBadForm)
		return nil, false
	}
	return []byte(c), true
}

// writeOptions answers the options of a ceremony as the API does:
// {"publicKey": <options>}.
func writeOptions(w http.ResponseWriter, options json.RawMessage) {
	httpapi.WriteJSON(w, http.StatusOK, struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}{options})
}

// writeLocation answers a finished ceremony: where the browser goes next
// (relative to the request's path, or an absolute path of the site).
func writeLocation(w http.ResponseWriter, location string) {
	httpapi.WriteJSON(w, http.StatusOK, struct {
		Location string `json:"location"`
	}{location})
}

// ceremonyOptions is the handler of a ceremony's first POST: the options
// begin gives for the session, as {"publicKey"}.
func (h *Handler) ceremonyOptions(kind string, begin func(context.Context, *authcore.Session) (json.RawMessage, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, ok := h.ceremonySession(w, r)
		if !ok {
			return
		}
		options, err := begin(r.Context(), sess)
		if err != nil {
			h.ceremonyFailed(w, r, kind, err)
			return
		}
		writeOptions(w, options)
	}
}

// ceremonyFinish is the handler of a ceremony's second POST: finish checks
// the browser's answer for the session, and next says where the browser
// goes then, as {"location"}.
func (h *Handler) ceremonyFinish(kind string, finish func(context.Context, *authcore.Session, []byte) error,
	next func(r *http.Request, ret string) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, ok := h.ceremonySession(w, r)
		if !ok {
			return
		}
		cred, ok := credential(w, r)
		if !ok {
			return
		}
		if err := finish(r.Context(), sess, cred); err != nil {
			h.ceremonyFailed(w, r, kind, err)
			return
		}
		writeLocation(w, next(r, safeReturn(r.PostForm.Get("return"))))
	}
}

// afterStepUp: back where the step-up was asked for.
func afterStepUp(_ *http.Request, ret string) string { return ret }

// afterEnrol: the passkeys page, saying the passkey was added.
func afterEnrol(r *http.Request, ret string) string { return base(r) + passkeysDone(ret, doneAdded) }

// The ceremonies, for their messages.
const (
	ceremonyStepUp = "stepup"
	ceremonyEnrol  = "enrol"
)

// ceremonyFailed answers why a ceremony's POST was refused, in JSON and
// in words.
func (h *Handler) ceremonyFailed(w http.ResponseWriter, r *http.Request, kind string, err error) {
	switch {
	case errors.Is(err, authcore.ErrInvalidToken), errors.Is(err, authcore.ErrPasswordUpdateSession):
		httpapi.WriteMessage(w, http.StatusUnauthorized, msgSessionEnded)
	case errors.Is(err, authcore.ErrStepUpRequired):
		httpapi.WriteMessage(w, http.StatusForbidden, msgStepUpFirst)
	case errors.As(err, new(*authcore.ChallengeError)):
		httpapi.WriteMessage(w, http.StatusConflict, passkeyMessage(kind, err))
	case errors.As(err, new(*authcore.RateLimited)):
		httpapi.WriteMessage(w, http.StatusTooManyRequests, rateLimitedMessage(w, err))
	case errors.Is(err, authcore.ErrUnavailable):
		if !authcore.ClientGone(err) {
			h.outage.Refused()
		}
		w.Header().Set("Retry-After", "1")
		httpapi.WriteMessage(w, http.StatusServiceUnavailable, msgUnavailable)
	default:
		h.log.Error("portal: internal error", zap.String("request_ref", authcore.RequestRef(r.Context())), zap.Error(err))
		httpapi.WriteMessage(w, http.StatusInternalServerError, msgInternal)
	}
}
