package portal

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"path"

	"go.uber.org/zap"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
)

//go:embed templates assets
var files embed.FS

// pages are the page templates, each with the shared layout.
var pages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "stepup", "push", "password", "passkeys", "error"} {
		out[name] = template.Must(template.New("layout.html").Funcs(template.FuncMap{"ceremony": ceremony}).
			ParseFS(files, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}()

// page is what a page template shows. Fields a page does not use stay
// empty.
type page struct {
	// Title is the page's heading.
	Title string
	// Base leads from the page's path back to the portal's root.
	Base string
	// Scripts are the page's scripts, among the assets (scriptPush,
	// scriptPasskey); every page works without them but the passkey.
	Scripts []string
	// Intro, Notice and Error are the page's message, in plain words.
	Intro, Notice, Error string
	// CSRF is the forms' token; Return, MaxAge and Methods are carried
	// along.
	CSRF, Return, MaxAge, Methods string
	// SignedInAs is the signed-in user's email.
	SignedInAs string
	// PasskeysOn links the passkeys page (the passkeys option is set).
	PasskeysOn bool

	// Email is kept in the sign-in form after a failure.
	Email string

	// SMS offers SMS codes; CodeSent shows the code form.
	SMS, CodeSent bool
	// Push lists the push channels on offer.
	Push []string
	// Passkey offers a step-up with one of the user's passkeys; AddPasskey
	// says where to enrol one when the page needs a passkey and the user
	// has none.
	Passkey, AddPasskey bool

	// Passkeys are the user's passkeys, on the passkeys page.
	Passkeys []passkeyRow

	// ChallengeID and PushStatus are the push being waited for;
	// PushWords says its status in words, and the other words are what
	// portal.js shows when the status changes.
	ChallengeID, PushStatus, PushWords string
	Words                              map[string]string

	// Expired says the password must be changed before anything else.
	Expired bool
}

// The scripts among the assets.
const (
	scriptPush    = "portal.js"
	scriptPasskey = "passkey.js"
)

// render writes a page with status.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	p.Base = base(r)
	var buf bytes.Buffer
	if err := pages[name].Execute(&buf, p); err != nil {
		h.log.Error("portal: rendering a page", zap.String("page", name), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError writes the error page: the message and a way back to the
// sign-in page.
func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, status int, message string) {
	h.render(w, r, status, "error", &page{Title: http.StatusText(status), Error: message})
}

// fail answers the errors every page shares: a store outage (503), a rate
// limit (429), and anything unexpected (500, logged).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, authcore.ErrUnavailable):
		if !authcore.ClientGone(err) {
			h.outage.Refused()
		}
		w.Header().Set("Retry-After", "1")
		h.renderError(w, r, http.StatusServiceUnavailable, msgUnavailable)
	case errors.As(err, new(*authcore.RateLimited)):
		h.renderError(w, r, http.StatusTooManyRequests, rateLimitedMessage(w, err))
	case errors.Is(err, authcore.ErrNoSender), errors.Is(err, authcore.ErrSendFailed):
		h.log.Error("portal: sending failed", zap.String("request_ref", authcore.RequestRef(r.Context())), zap.Error(err))
		w.Header().Set("Retry-After", "15")
		h.renderError(w, r, http.StatusServiceUnavailable, msgSendFailed)
	default:
		h.log.Error("portal: internal error", zap.String("request_ref", authcore.RequestRef(r.Context())), zap.Error(err))
		h.renderError(w, r, http.StatusInternalServerError, msgInternal)
	}
}

// rateLimitedMessage sets the 429 headers of a rate limit and says when to
// try again.
func rateLimitedMessage(w http.ResponseWriter, err error) string {
	var rl *authcore.RateLimited
	errors.As(err, &rl)
	secs := httpapi.SetRateLimitHeaders(w.Header(), rl.Limit, rl.Reset)
	return "Too many attempts from your network. Wait " + secs + " seconds and try again."
}

// asset serves the embedded CSS and JavaScript.
func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	data, err := fs.ReadFile(files, "assets/"+r.PathValue("name"))
	if err != nil {
		h.renderError(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	switch path.Ext(r.PathValue("name")) {
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	}
	_, _ = w.Write(data)
}
