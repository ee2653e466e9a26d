package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authgate/authgate/authcore/manageapi"
)

func init() {
	caddy.RegisterModule(Manage{})
}

// Manage serves the Manage API (password validation with MFA, one-time
// codes) to trusted backends relative to the path it receives; mount it
// with handle_path. Its service clients are the app's (service_client in
// the global authgate block). It answers every request itself and never
// calls the next handler.
type Manage struct {
	handler *manageapi.Handler
}

// CaddyModule returns the Caddy module information.
func (Manage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.authgate_manage",
		New: func() caddy.Module { return new(Manage) },
	}
}

// Provision wires the handler to the shared core's ManageMFA service and
// the service clients.
func (m *Manage) Provision(ctx caddy.Context) error {
	app, err := appFrom(ctx)
	if err != nil {
		return err
	}
	m.handler, err = manageapi.New(manageapi.Options{
		ManageMFA:  app.Services().ManageMFA,
		Sessions:   app.Services().Sessions,
		Accounts:   app.Services().Accounts,
		Passwords:  app.Services().Passwords,
		Clients:    app.serviceClients(caddy.NewReplacer()),
		ClientIP:   clientIP,
		RequestRef: requestRef,
		Logger:     ctx.Logger(),
		Metrics:    app.metrics,
		Outage:     app.Services().Outage,
	})
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (m *Manage) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	m.handler.ServeHTTP(w, r)
	return nil
}

var (
	_ caddy.Provisioner           = (*Manage)(nil)
	_ caddyhttp.MiddlewareHandler = (*Manage)(nil)
)
