package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
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
	guard
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
	return p.guard.provision(ctx, p.GuardConfig)
}

// Validate implements caddy.Validator.
func (p *Provider) Validate() error { return p.GuardConfig.validate() }

// Authenticate implements caddyauth.Authenticator.
func (p *Provider) Authenticate(w http.ResponseWriter, r *http.Request) (caddyauth.User, bool, error) {
	adm, rej := p.admit(r)
	if rej != nil {
		if rej.Challenge != "" {
			w.Header().Set("WWW-Authenticate", rej.Challenge)
		}
		return caddyauth.User{}, false, nil
	}
	return caddyauth.User{ID: adm.Claims.Subject, Metadata: userMetadata(adm)}, true, nil
}

var (
	_ caddy.Provisioner       = (*Provider)(nil)
	_ caddy.Validator         = (*Provider)(nil)
	_ caddyauth.Authenticator = (*Provider)(nil)
)
