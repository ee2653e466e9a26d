package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authgate/authgate/authcore/httpapi"
)

func init() {
	caddy.RegisterModule(Verify{})
}

// Verify is the authgate_verify handler: forward auth for another proxy
// (nginx auth_request, Traefik forwardAuth, Envoy ext_authz over HTTP,
// Caddy's own forward_auth). It decides the subrequest as authgate_protect
// decides a request, and answers it: 200 with the caller's identity
// headers in the response, for the proxy to copy to its backend, or the
// guard's refusal (401, 403, 503, or 400 for an ambiguous path) with its
// body and WWW-Authenticate. It never calls the next handler and never
// echoes a header the client sent.
//
// The original request's URI is read from X-Forwarded-Uri, else
// X-Original-URI, only when the subrequest comes from a trusted proxy
// (the server's trusted_proxies); otherwise the subrequest's own URI is
// checked. One policy per endpoint: mount one authgate_verify per policy
// (handle /verify/pay { authgate_verify { stepup 5m } }).
type Verify struct {
	GuardConfig
	routeGuard
}

// CaddyModule returns the Caddy module information.
func (Verify) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.authgate_verify",
		New: func() caddy.Module { return new(Verify) },
	}
}

// Provision implements caddy.Provisioner.
func (v *Verify) Provision(ctx caddy.Context) error {
	return v.routeGuard.provision(ctx, v.GuardConfig)
}

// Validate implements caddy.Validator.
func (v *Verify) Validate() error { return v.GuardConfig.checkVerify() }

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (v *Verify) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if reason := v.checkTarget(forwardedURI(r)); reason != "" {
		httpapi.WriteMessage(w, http.StatusBadRequest, "ambiguous request path: it has "+reason)
		return nil
	}
	// A browser's portal cookie counts too, when no bearer token is sent
	// (SPEC §13); there is no page to send it to here, so it gets the
	// guard's answer like any client.
	d, _ := v.decideCaller(r, true)
	if !d.Admitted() {
		httpapi.WriteGuardRefusal(w, &d)
		return nil
	}
	w.Header().Set("Cache-Control", "no-store")
	v.headers.Set(w.Header(), &d)
	w.WriteHeader(http.StatusOK)
	return nil
}

// forwardedURI is the target of the request the proxy asks about: its
// X-Forwarded-Uri or X-Original-URI when the subrequest comes from a
// trusted proxy, else the subrequest's own.
func forwardedURI(r *http.Request) string {
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		for _, name := range []string{"X-Forwarded-Uri", "X-Original-URI"} {
			if u := r.Header.Get(name); u != "" {
				return u
			}
		}
	}
	if r.RequestURI != "" {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

var (
	_ caddy.Provisioner           = (*Verify)(nil)
	_ caddy.Validator             = (*Verify)(nil)
	_ caddyhttp.MiddlewareHandler = (*Verify)(nil)
)
