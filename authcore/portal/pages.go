package portal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
)

// maxFormBytes bounds a form's body; the portal's forms are a few fields.
const maxFormBytes = 16 << 10

// maxFieldLen bounds an email or a code; longer ones are refused unread.
const maxFieldLen = 254

// parseForm reads a POST's form. On failure it has answered (400, or 413
// for an oversized body) and returns false.
func (h *Handler) parseForm(w http.ResponseWriter, r *http.Request) bool {
	status, ok := readForm(w, r)
	if !ok {
		h.renderError(w, r, status, msgBadForm)
	}
	return ok
}

// readForm reads a POST's form; on failure it returns the status to
// answer (400, or 413 for an oversized body) and false.
func readForm(w http.ResponseWriter, r *http.Request) (int, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return http.StatusRequestEntityTooLarge, false
		}
		return http.StatusBadRequest, false
	}
	return 0, true
}

// session returns the request's browser session, checked with auth
// (Sessions.AuthenticateBrowser, or ...PasswordUpdate on the pages that
// also serve an expired password). Without one it has answered: a 303 to
// the sign-in page (or to the password page for the session of an expired
// password) that comes back to ret, or the store's failure.
func (h *Handler) session(w http.ResponseWriter, r *http.Request,
	auth func(context.Context, string) (*authcore.Session, error), ret string) (*authcore.Session, bool) {
	sess, err := auth(r.Context(), h.cookies.SessionValue(r))
	switch {
	case err == nil:
		return sess, true
	case errors.Is(err, authcore.ErrPasswordUpdateSession):
		seeOther(w, r, withReturn(PagePassword, ret, stepUpNeed{}))
	case errors.Is(err, authcore.ErrInvalidToken):
		seeOther(w, r, withReturn(PageLogin, ret, stepUpNeed{}))
	default:
		h.fail(w, r, err)
	}
	return nil, false
}

// formSession is session for a form's POST: it also checks the form's CSRF
// token against the session, answering 403 when it does not match.
func (h *Handler) formSession(w http.ResponseWriter, r *http.Request,
	auth func(context.Context, string) (*authcore.Session, error), ret string) (*authcore.Session, bool) {
	sess, ok := h.session(w, r, auth, ret)
	if !ok {
		return nil, false
	}
	if !h.csrf.Valid(h.csrf.ForSession(sess), r.PostForm.Get("csrf")) {
		h.renderError(w, r, http.StatusForbidden, msgCSRF)
		return nil, false
	}
	return sess, true
}

// audit writes the audit line of a sign-in or sign-out.
func (h *Handler) audit(r *http.Request, msg, result, credentialsID string) {
	h.log.Info(msg, zap.String("request_ref", authcore.RequestRef(r.Context())), zap.String("api", authcore.LoginAPIPortal),
		zap.String("result", result), zap.String("credentials_id", credentialsID), zap.String("client_ip", h.clientIP(r)))
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	pre := cookieValue(r, h.cookies.PreSession)
	if !h.csrf.ValidPreSession(pre) {
		pre = h.csrf.NewPreSession()
	}
	setCookie(w, h.cookies.PreSession, pre)
	p := &page{Title: "Sign in", CSRF: h.csrf.ForPreSession(pre), Return: safeReturn(r.URL.Query().Get("return"))}
	if r.URL.Query().Get("signed_out") == "1" {
		p.Notice = msgSignedOut
	}
	h.render(w, r, http.StatusOK, "login", p)
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	pre := cookieValue(r, h.cookies.PreSession)
	if !h.csrf.ValidPreSession(pre) || !h.csrf.Valid(h.csrf.ForPreSession(pre), r.PostForm.Get("csrf")) {
		h.renderError(w, r, http.StatusForbidden, msgCSRF)
		return
	}
	ret := safeReturn(r.PostForm.Get("return"))
	email, password := strings.TrimSpace(r.PostForm.Get("email")), r.PostForm.Get("password")
	p := &page{Title: "Sign in", CSRF: h.csrf.ForPreSession(pre), Return: ret, Email: email}
	if email == "" || password == "" || len(email) > maxFieldLen {
		p.Error = msgMissingCredentials
		h.render(w, r, http.StatusBadRequest, "login", p)
		return
	}
	res, err := h.sessions.LoginBrowser(authcore.WithUserAgent(r.Context(), r.UserAgent()), email, password)
	switch {
	case err == nil && res.Session.PasswordUpdateOnly:
		h.audit(r, "login", "password_expired", res.Session.CredentialsID)
		setCookie(w, h.cookies.Session, res.Cookie)
		expireCookie(w, h.cookies.PreSession)
		seeOther(w, r, withReturn(PagePassword, ret, stepUpNeed{}))
	case err == nil:
		h.audit(r, "login", "success", res.Session.CredentialsID)
		setCookie(w, h.cookies.Session, res.Cookie)
		expireCookie(w, h.cookies.PreSession)
		seeReturn(w, ret)
	case errors.Is(err, authcore.ErrInvalidCredentials):
		h.audit(r, "login", "invalid_credentials", "")
		p.Error = msgWrongCredentials
		h.render(w, r, http.StatusUnauthorized, "login", p)
	case errors.Is(err, authcore.ErrLocked):
		h.audit(r, "login", "locked", "")
		p.Error = msgLocked
		h.render(w, r, http.StatusLocked, "login", p)
	case errors.As(err, new(*authcore.RateLimited)):
		p.Error = rateLimitedMessage(w, err)
		h.render(w, r, http.StatusTooManyRequests, "login", p)
	default:
		h.fail(w, r, err)
	}
}

// stepUpView is the step-up page of a session: who is signed in and the
// factors on offer, those of the user's that the need counts.
func (h *Handler) stepUpView(ctx context.Context, sess *authcore.Session, ret string, need stepUpNeed) (*page, error) {
	u, err := h.accounts.User(ctx, sess.CredentialsID)
	if err != nil {
		return nil, err
	}
	p := &page{Title: "Confirm it is you", CSRF: h.csrf.ForSession(sess), Return: ret, MaxAge: need.maxAge,
		Methods: need.methods, SignedInAs: u.Email, PasskeysOn: h.passkeys != nil,
		SMS: need.accepts(authcore.StepUpOTP) && slices.Contains(u.Factors.OTP, authcore.ChannelSMS)}
	if need.accepts(authcore.StepUpPush) {
		p.Push = u.Factors.Push
	}
	if h.passkeys != nil && need.accepts(authcore.StepUpPasskey) {
		ids, err := h.passkeys.List(ctx, sess.CredentialsID)
		if err != nil {
			return nil, err
		}
		p.Passkey = len(ids) > 0
		p.Scripts = []string{scriptPasskey}
	}
	switch {
	case need.onlyPasskey() && !p.Passkey:
		p.Error, p.AddPasskey = msgNoPasskey, h.passkeys != nil
	case need.onlyPasskey():
		p.Intro = msgPasskeyOnly
	case !p.SMS && len(p.Push) == 0 && !p.Passkey:
		p.Error = msgNoFactor
	}
	return p, nil
}

func (h *Handler) stepUpPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ret, need := safeReturn(q.Get("return")), needParam(q)
	sess, ok := h.session(w, r, h.sessions.AuthenticateBrowser, ret)
	if !ok {
		return
	}
	p, err := h.stepUpView(r.Context(), sess, ret, need)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "stepup", p)
}

// stepUpAction serves the step-up page's forms: send an SMS code, check
// it, start a push, or continue after one without JavaScript.
func (h *Handler) stepUpAction(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	f := r.PostForm
	ret, need := safeReturn(f.Get("return")), needParam(f)
	sess, ok := h.formSession(w, r, h.sessions.AuthenticateBrowser, ret)
	if !ok {
		return
	}
	p, err := h.stepUpView(r.Context(), sess, ret, need)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, action := r.Context(), f.Get("action")
	switch action {
	case actionSendSMS:
		p.CodeSent = true
		if err := h.stepUp.IssueOTP(ctx, sess, authcore.ChannelSMS); err != nil {
			h.stepUpRefused(w, r, p, action, err)
			return
		}
		p.Notice = msgCodeSent
		h.render(w, r, http.StatusOK, "stepup", p)
	case actionVerifySMS:
		p.CodeSent = true
		code := strings.TrimSpace(f.Get("code"))
		if code == "" || len(code) > maxFieldLen {
			p.Error = msgMissingCode
			h.render(w, r, http.StatusBadRequest, "stepup", p)
			return
		}
		if err := h.stepUp.VerifyOTP(ctx, sess, authcore.ChannelSMS, code); err != nil {
			h.stepUpRefused(w, r, p, action, err)
			return
		}
		seeReturn(w, ret)
	case actionPush:
		id, err := h.stepUp.IssuePush(ctx, sess, f.Get("channel"))
		if err != nil {
			h.stepUpRefused(w, r, p, action, err)
			return
		}
		seeOther(w, r, pushPath(id, ret, need))
	case actionPushContinue:
		h.pushOutcome(w, r, sess, p, f.Get("id"))
	default:
		h.renderError(w, r, http.StatusBadRequest, msgBadForm)
	}
}

// stepUpRefused shows the step-up page again with why the action was
// refused.
func (h *Handler) stepUpRefused(w http.ResponseWriter, r *http.Request, p *page, action string, err error) {
	switch {
	case errors.As(err, new(*authcore.ChallengeError)):
		p.Error = stepUpMessage(action, err)
		h.render(w, r, http.StatusConflict, "stepup", p)
	case errors.As(err, new(*authcore.RateLimited)):
		p.Error = rateLimitedMessage(w, err)
		h.render(w, r, http.StatusTooManyRequests, "stepup", p)
	case errors.Is(err, authcore.ErrInvalidToken):
		// The session ended meanwhile.
		seeOther(w, r, withReturn(PageLogin, p.Return, stepUpNeed{}))
	default:
		h.fail(w, r, err)
	}
}

// pushPath is the waiting page of push id.
func pushPath(id, ret string, need stepUpNeed) string {
	return pagePush + "?id=" + url.QueryEscape(id) + "&" + returnQuery(ret, need)
}

// pushOutcome answers the waiting page's continue button: back to the
// return path once the push is approved, else the waiting page again with
// its status in words.
func (h *Handler) pushOutcome(w http.ResponseWriter, r *http.Request, sess *authcore.Session, p *page, id string) {
	status, err := h.stepUp.PushStatus(r.Context(), sess, "", id)
	switch {
	case errors.Is(err, authcore.ErrNotFound):
		p.Error = msgUnknownPush
		h.render(w, r, http.StatusNotFound, "stepup", p)
		return
	case err != nil:
		h.fail(w, r, err)
		return
	case status == authcore.PushVerified:
		seeReturn(w, p.Return)
		return
	}
	words := pushWords[status]
	if status == authcore.PushPending {
		words = msgPushStillWaits
	}
	h.renderPush(w, r, p, id, status, words)
}

// renderPush shows the waiting page of push id in status, saying words.
func (h *Handler) renderPush(w http.ResponseWriter, r *http.Request, p *page, id, status, words string) {
	p.Title, p.Scripts, p.Error = "Approve on your phone", []string{scriptPush}, ""
	p.ChallengeID, p.PushStatus, p.PushWords, p.Words = id, status, words, pushWords
	h.render(w, r, http.StatusOK, "push", p)
}

func (h *Handler) pushPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ret, need, id := safeReturn(q.Get("return")), needParam(q), q.Get("id")
	sess, ok := h.session(w, r, h.sessions.AuthenticateBrowser, ret)
	if !ok {
		return
	}
	p, err := h.stepUpView(r.Context(), sess, ret, need)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status, err := h.stepUp.PushStatus(r.Context(), sess, "", id)
	switch {
	case errors.Is(err, authcore.ErrNotFound):
		p.Error = msgUnknownPush
		h.render(w, r, http.StatusNotFound, "stepup", p)
	case err != nil:
		h.fail(w, r, err)
	case status == authcore.PushVerified:
		seeReturn(w, ret)
	default:
		h.renderPush(w, r, p, id, status, pushWords[status])
	}
}

// pushStatus is what portal.js polls: {"status"} of a push of the
// request's own session, 404 for any other (or none).
func (h *Handler) pushStatus(w http.ResponseWriter, r *http.Request) {
	sess, err := h.sessions.AuthenticateBrowser(r.Context(), h.cookies.SessionValue(r))
	var status string
	if err == nil {
		status, err = h.stepUp.PushStatus(r.Context(), sess, "", r.URL.Query().Get("id"))
	}
	switch {
	case err == nil:
		httpapi.WriteJSON(w, http.StatusOK, struct {
			Status string `json:"status"`
		}{status})
	case errors.Is(err, authcore.ErrInvalidToken), errors.Is(err, authcore.ErrNotFound):
		httpapi.WriteMessage(w, http.StatusNotFound, "no such challenge")
	default:
		httpapi.WriteFailure(w, r, err, h.outage, h.log)
	}
}

// passwordView is the password page of a session.
func (h *Handler) passwordView(ctx context.Context, sess *authcore.Session, ret string) (*page, error) {
	u, err := h.accounts.User(ctx, sess.CredentialsID)
	if err != nil {
		return nil, err
	}
	p := &page{Title: "Change your password", CSRF: h.csrf.ForSession(sess), Return: ret, SignedInAs: u.Email,
		Expired: sess.PasswordUpdateOnly}
	if p.Expired {
		p.Title, p.Notice = "Choose a new password", msgExpiredPassword
	}
	return p, nil
}

func (h *Handler) passwordPage(w http.ResponseWriter, r *http.Request) {
	ret := safeReturn(r.URL.Query().Get("return"))
	sess, ok := h.session(w, r, h.sessions.AuthenticateBrowserPasswordUpdate, ret)
	if !ok {
		return
	}
	p, err := h.passwordView(r.Context(), sess, ret)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "password", p)
}

func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	f := r.PostForm
	ret := safeReturn(f.Get("return"))
	sess, ok := h.formSession(w, r, h.sessions.AuthenticateBrowserPasswordUpdate, ret)
	if !ok {
		return
	}
	p, err := h.passwordView(r.Context(), sess, ret)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	oldPassword, newPassword := f.Get("old_password"), f.Get("new_password")
	if oldPassword == "" || newPassword == "" {
		p.Error = msgMissingPassword
		h.render(w, r, http.StatusBadRequest, "password", p)
		return
	}
	change, err := h.passwords.Change(r.Context(), sess, oldPassword, newPassword)
	switch {
	case err == nil:
		setCookie(w, h.cookies.Session, change.Cookie)
		seeReturn(w, ret)
	case errors.As(err, new(*authcore.ChallengeError)):
		p.Error = passwordMessage(err)
		h.render(w, r, http.StatusConflict, "password", p)
	case errors.Is(err, authcore.ErrLocked):
		p.Error = msgLocked
		h.render(w, r, http.StatusLocked, "password", p)
	case errors.Is(err, authcore.ErrInvalidToken):
		seeOther(w, r, withReturn(PageLogin, ret, stepUpNeed{}))
	default:
		h.fail(w, r, err)
	}
}

// logout ends the browser session on every node and clears its cookie. A
// request without a live session has nothing to end and only clears it.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	sess, err := h.sessions.AuthenticateBrowserPasswordUpdate(r.Context(), h.cookies.SessionValue(r))
	switch {
	case err == nil:
		if !h.csrf.Valid(h.csrf.ForSession(sess), r.PostForm.Get("csrf")) {
			h.renderError(w, r, http.StatusForbidden, msgCSRF)
			return
		}
		if err := h.sessions.Logout(r.Context(), sess); err != nil {
			h.fail(w, r, err)
			return
		}
		h.audit(r, "logout", "success", sess.CredentialsID)
	case !errors.Is(err, authcore.ErrInvalidToken):
		h.fail(w, r, err)
		return
	}
	expireCookie(w, h.cookies.Session)
	seeOther(w, r, PageLogin+"?signed_out=1")
}
