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
	// Token is the token kind accepted: "access" (default), "auth" or "any".
	Token string `json:"token,omitempty"`
	// StepUp requires a stepped-up session.
	StepUp bool `json:"stepup,omitempty"`
	// StepUpMaxAge, with StepUp, bounds the age of the step-up.
	StepUpMaxAge caddy.Duration `json:"stepup_max_age,omitempty"`
	// IdentityType, when set (CONSUMER or CORPORATE), must be the token's.
	IdentityType string `json:"identity_type,omitempty"`
	// CredentialsType, when set (ROOT or USER), must be the token's.
	CredentialsType string `json:"credentials_type,omitempty"`
	// HeaderPrefix prefixes the identity headers. Default "X-Authgate-".
	HeaderPrefix string `json:"header_prefix,omitempty"`

	guard
}

// CaddyModule returns the Caddy module information.
func (Provider) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.authentication.providers.authgate",
		New: func() caddy.Module { return new(Provider) },
	}
}

func (p *Provider) policyConfig() policyConfig {
	return policyConfig{p.Token, p.StepUp, p.StepUpMaxAge, p.IdentityType, p.CredentialsType, p.HeaderPrefix}
}

// Provision implements caddy.Provisioner.
func (p *Provider) Provision(ctx caddy.Context) error {
	return p.guard.provision(ctx, p.policyConfig())
}

// Validate implements caddy.Validator.
func (p *Provider) Validate() error { return p.policyConfig().validate() }

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
