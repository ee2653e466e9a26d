package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authgate/authgate/authcore/httpapi"
	"github.com/authgate/authgate/authcore/multiapi"
)

func init() {
	caddy.RegisterModule(API{})
}

// API serves the Multi API (login, identities, access tokens, logout,
// JWKS) relative to the path it receives; mount it with handle_path. It
// answers every request itself and never calls the next handler.
type API struct {
	handler *multiapi.Handler
}

// CaddyModule returns the Caddy module information.
func (API) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.authgate_api",
		New: func() caddy.Module { return new(API) },
	}
}

// Provision wires the handler to the services of the shared core it
// calls.
func (h *API) Provision(ctx caddy.Context) error {
	app, err := appFrom(ctx)
	if err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	keys := make([]string, len(app.APIKeys))
	for i, k := range app.APIKeys {
		keys[i] = repl.ReplaceKnown(k, "")
	}
	h.handler = multiapi.New(multiapi.Options{
		Sessions:   app.Services().Sessions,
		Accounts:   app.Services().Accounts,
		Passwords:  app.Services().Passwords,
		StepUp:     app.Services().StepUp,
		Passkeys:   app.Services().Passkeys,
		Tokens:     app.Services().Tokens,
		Health:     app.Services().Health,
		Outage:     app.Services().Outage,
		APIKeys:    keys,
		ClientIP:   clientIP,
		RequestRef: requestRef,
		Logger:     ctx.Logger(),
	})
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *API) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.handler.ServeHTTP(w, r)
	return nil
}

// clientIP is Caddy's idea of the client address, which honours the
// server's trusted_proxies; raw X-Forwarded-For is never read.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return httpapi.RemoteHost(r)
}

// requestRef reuses Caddy's per-request UUID, so the request-ref a client
// sees matches Caddy's own logs.
func requestRef(r *http.Request) string {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if v, ok := repl.GetString("http.request.uuid"); ok && v != "" {
			return v
		}
	}
	return httpapi.NewRequestRef()
}

var (
	_ caddy.Provisioner           = (*API)(nil)
	_ caddyhttp.MiddlewareHandler = (*API)(nil)
)
