package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authgate/authgate/authcore/portal"
)

func init() {
	caddy.RegisterModule(Portal{})
}

// Portal serves the browser portal (sign-in, step-up, password and
// sign-out pages) relative to the path it receives; mount it with
// handle_path, and name that path in authgate_protect's portal
// subdirective. It answers every request itself and never calls the next
// handler.
type Portal struct {
	handler *portal.Handler
}

// CaddyModule returns the Caddy module information.
func (Portal) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.authgate_portal",
		New: func() caddy.Module { return new(Portal) },
	}
}

// Provision wires the handler to the services of the shared core it
// calls.
func (h *Portal) Provision(ctx caddy.Context) error {
	app, err := appFrom(ctx)
	if err != nil {
		return err
	}
	s := app.Services()
	h.handler = portal.New(portal.Options{
		Sessions:   s.Sessions,
		Accounts:   s.Accounts,
		Passwords:  s.Passwords,
		StepUp:     s.StepUp,
		CSRF:       s.CSRF,
		Passkeys:   s.Passkeys,
		Cookies:    portal.NewCookies(app.CookieName),
		Outage:     s.Outage,
		ClientIP:   clientIP,
		RequestRef: requestRef,
		RequestURI: originalURI,
		Logger:     ctx.Logger(),
	})
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.handler.ServeHTTP(w, r)
	return nil
}

var (
	_ caddy.Provisioner           = (*Portal)(nil)
	_ caddyhttp.MiddlewareHandler = (*Portal)(nil)
)
