package caddymodule

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"

	"github.com/authgate/authgate/authcore/httpapi"
)

func init() {
	caddy.RegisterModule(Provider{})
}

// Provider is the guard as a provider of Caddy's standard authentication
// handler (http.handlers.authentication). It admits exactly the requests
// authgate_protect admits and sets the same headers and placeholders.
// Every refusal becomes that handler's 401 (with authgate's
// WWW-Authenticate challenge); use authgate_protect for the distinct
// 403 and 503 answers.
type Provider struct {
	GuardConfig
	routeGuard
}

// CaddyModule returns the Caddy module information.
func (Provider) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.authentication.providers.authgate",
		New: func() caddy.Module { return new(Provider) },
	}
}

// Provision implements caddy.Provisioner.
func (p *Provider) Provision(ctx caddy.Context) error {
	return p.routeGuard.provision(ctx, p.GuardConfig)
}

// Validate implements caddy.Validator.
func (p *Provider) Validate() error {
	if p.Portal != "" {
		return errors.New("portal: the authentication provider cannot send browsers to a portal; use authgate_protect")
	}
	return p.GuardConfig.validate()
}

// Authenticate implements caddyauth.Authenticator.
func (p *Provider) Authenticate(w http.ResponseWriter, r *http.Request) (caddyauth.User, bool, error) {
	d, _, ambiguous := p.decide(r)
	if ambiguous != "" || !d.Admitted() {
		if ch := httpapi.GuardChallenge(&d); ambiguous == "" && ch != "" {
			w.Header().Set("WWW-Authenticate", ch)
		}
		return caddyauth.User{}, false, nil
	}
	return caddyauth.User{ID: d.Claims.Subject, Metadata: userMetadata(&d)}, true, nil
}

var (
	_ caddy.Provisioner       = (*Provider)(nil)
	_ caddy.Validator         = (*Provider)(nil)
	_ caddyauth.Authenticator = (*Provider)(nil)
)
