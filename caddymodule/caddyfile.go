package caddymodule

import (
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/manageapi"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("authgate", parseGlobal)
	httpcaddyfile.RegisterHandlerDirective("authgate_api", parseAPI)
	httpcaddyfile.RegisterHandlerDirective("authgate_manage", parseManage)
	httpcaddyfile.RegisterHandlerDirective("authgate_protect", parseProtect)
	// Registered orders mean users never need an `order` line: the guard
	// runs with the other auth handlers, ahead of anything that proxies or
	// responds; the API handlers respond, so they sit with respond.
	httpcaddyfile.RegisterDirectiveOrder("authgate_protect", httpcaddyfile.After, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("authgate_api", httpcaddyfile.Before, "respond")
	httpcaddyfile.RegisterDirectiveOrder("authgate_manage", httpcaddyfile.Before, "respond")
}

// parseGlobal sets up the authgate app from the global options block:
//
//	authgate {
//		store memory | redis <url>
//		key_prefix <prefix>
//		issuer <iss>
//		signing_key <base64, >= 32 bytes>
//		signing_key_file <pem>
//		previous_key <base64>          (repeatable)
//		previous_key_file <pem>        (repeatable)
//		users_file <path.json>
//		users store
//		api_key <key>
//		session_idle <duration>
//		session_max <duration>
//		sandbox
//		otp_sender sandbox | webhook <url> <hmac-secret> | twilio <account> <token> <from>
//		push_sender sandbox | webhook <url> <hmac-secret>
//		email_sender sandbox | smtp <host:port> <from> [<user> <pass>] | webhook <url> <hmac-secret>
//		lockout <attempts> <duration>
//		rate_limit login | code_issue | code_verify <requests> <window>
//		service_client <name> <hash> <scope>...
//	}
func parseGlobal(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	d.Next() // consume option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(0) {
		dir := d.Val()
		switch dir {
		case "store":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			app.Store = d.Val()
			switch app.Store {
			case "memory":
			case "redis":
				if !d.NextArg() {
					return nil, d.Errf("store redis: missing URL")
				}
				app.RedisURL = d.Val()
			default:
				return nil, d.Errf("store: unknown store %q: want memory or redis <url>", app.Store)
			}
		case "key_prefix":
			if err := oneArg(d, &app.KeyPrefix); err != nil {
				return nil, err
			}
		case "issuer":
			if err := oneArg(d, &app.Issuer); err != nil {
				return nil, err
			}
		case "signing_key":
			if err := oneArg(d, &app.SigningKey); err != nil {
				return nil, err
			}
		case "signing_key_file":
			if err := oneArg(d, &app.SigningKeyFile); err != nil {
				return nil, err
			}
		case "previous_key":
			var key string
			if err := oneArg(d, &key); err != nil {
				return nil, err
			}
			app.PreviousKeys = append(app.PreviousKeys, key)
		case "previous_key_file":
			var path string
			if err := oneArg(d, &path); err != nil {
				return nil, err
			}
			app.PreviousKeyFiles = append(app.PreviousKeyFiles, path)
		case "users_file":
			if err := oneArg(d, &app.UsersFile); err != nil {
				return nil, err
			}
		case "users":
			var source string
			if err := oneArg(d, &source); err != nil {
				return nil, err
			}
			if source != "store" {
				return nil, d.Errf("users: unknown source %q: want store (a file is users_file <path>)", source)
			}
			app.UsersStore = true
		case "api_key":
			var key string
			if err := oneArg(d, &key); err != nil {
				return nil, err
			}
			app.APIKeys = append(app.APIKeys, key)
		case "session_idle":
			if err := durationArg(d, &app.SessionIdle); err != nil {
				return nil, err
			}
		case "session_max":
			if err := durationArg(d, &app.SessionMax); err != nil {
				return nil, err
			}
		case "sandbox":
			app.Sandbox = true
		case "otp_sender":
			c, err := parseSender(d, "sandbox", "webhook", "twilio")
			if err != nil {
				return nil, err
			}
			app.OTPSender = c
		case "push_sender":
			c, err := parseSender(d, "sandbox", "webhook")
			if err != nil {
				return nil, err
			}
			app.PushSender = c
		case "email_sender":
			c, err := parseSender(d, emailSenders...)
			if err != nil {
				return nil, err
			}
			app.EmailSender = c
		case "service_client":
			c, err := parseServiceClient(d)
			if err != nil {
				return nil, err
			}
			for _, other := range app.ServiceClients {
				if other.Name == c.Name {
					return nil, d.Errf("service_client: duplicate name %q", c.Name)
				}
			}
			app.ServiceClients = append(app.ServiceClients, *c)
		case "lockout":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("lockout: want <attempts> <duration>")
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n <= 0 {
				return nil, d.Errf("lockout: bad attempts %q", args[0])
			}
			dur, err := caddy.ParseDuration(args[1])
			if err != nil || dur <= 0 {
				return nil, d.Errf("lockout: bad duration %q", args[1])
			}
			app.Lockout = &LockoutConfig{Attempts: n, Duration: caddy.Duration(dur)}
		case "rate_limit":
			args := d.RemainingArgs()
			if len(args) != 3 {
				return nil, d.Errf("rate_limit: want <action> <requests> <window>")
			}
			if !slices.Contains(rateLimitActions, args[0]) {
				return nil, d.Errf("rate_limit: unknown action %q: want one of %v", args[0], rateLimitActions)
			}
			n, err := strconv.Atoi(args[1])
			if err != nil || n <= 0 {
				return nil, d.Errf("rate_limit %s: bad request count %q", args[0], args[1])
			}
			win, err := caddy.ParseDuration(args[2])
			if err != nil || win <= 0 {
				return nil, d.Errf("rate_limit %s: bad window %q", args[0], args[2])
			}
			if app.RateLimits == nil {
				app.RateLimits = map[string]RateLimitConfig{}
			}
			app.RateLimits[args[0]] = RateLimitConfig{Requests: n, Window: caddy.Duration(win)}
		default:
			return nil, d.Errf("authgate: unknown directive %q", dir)
		}
		if d.NextArg() {
			return nil, d.Errf("%s: too many arguments", dir)
		}
	}
	return httpcaddyfile.App{Name: "authgate", Value: caddyconfig.JSON(app, nil)}, nil
}

// parseServiceClient reads `service_client <name> <hash> <scope>...`. A
// hash with placeholders is checked once they are expanded (Validate).
func parseServiceClient(d *caddyfile.Dispenser) (*ServiceClientConfig, error) {
	args := d.RemainingArgs()
	if len(args) < 3 {
		return nil, d.Errf("service_client: want <name> <hash> <scope>... (scopes: %v)", manageapi.Scopes)
	}
	c := &ServiceClientConfig{Name: args[0], Hash: args[1], Scopes: args[2:]}
	if strings.Contains(c.Name, ":") {
		return nil, d.Errf("service_client: name %q: must not contain ':'", c.Name)
	}
	if err := authcore.CheckHashFormat(c.Hash); err != nil && !hasPlaceholder(c.Hash) {
		return nil, d.Errf("service_client %s: hash: %v (make one with authgate hash-password)", c.Name, err)
	}
	for _, scope := range c.Scopes {
		if !slices.Contains(manageapi.Scopes, scope) {
			return nil, d.Errf("service_client %s: unknown scope %q: want one of %v", c.Name, scope, manageapi.Scopes)
		}
	}
	return c, nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	dir := d.Val()
	if !d.NextArg() || d.Val() == "" {
		return d.Errf("%s: missing value", dir)
	}
	*dst = d.Val()
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	dir := d.Val()
	if !d.NextArg() {
		return d.Errf("%s: missing duration", dir)
	}
	v, err := caddy.ParseDuration(d.Val())
	if err != nil || v <= 0 {
		return d.Errf("%s: bad duration %q", dir, d.Val())
	}
	*dst = caddy.Duration(v)
	return nil
}

// parseAPI sets up the Multi API handler:
//
//	authgate_api
func parseAPI(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // consume directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	for h.NextBlock(0) {
		return nil, h.Errf("authgate_api: unknown subdirective %q (the API is configured in the global authgate block)", h.Val())
	}
	return new(API), nil
}

// parseManage sets up the Manage API handler; its service clients are
// configured in the global authgate block:
//
//	authgate_manage
func parseManage(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // consume directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	for h.NextBlock(0) {
		return nil, h.Errf("authgate_manage: unknown subdirective %q (service clients are configured in the global authgate block)", h.Val())
	}
	return new(Manage), nil
}

// parseProtect sets up the guard:
//
//	authgate_protect {
//		token access | auth | any
//		stepup [<max_age>]
//		identity_type CONSUMER | CORPORATE
//		credentials_type ROOT | USER
//		header_prefix <prefix>
//		raw_paths allow | refuse
//	}
func parseProtect(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	p := new(Guard)
	h.Next() // consume directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	for h.NextBlock(0) {
		dir := h.Val()
		switch dir {
		case "token":
			if err := oneArg(h.Dispenser, &p.Token); err != nil {
				return nil, err
			}
			p.Token = strings.ToLower(p.Token)
		case "stepup":
			p.StepUp = true
			if h.NextArg() {
				v, err := caddy.ParseDuration(h.Val())
				if err != nil || v <= 0 {
					return nil, h.Errf("stepup: bad max_age %q: want a positive duration such as 10m", h.Val())
				}
				p.StepUpMaxAge = caddy.Duration(v)
			}
		case "identity_type":
			if err := oneArg(h.Dispenser, &p.IdentityType); err != nil {
				return nil, err
			}
		case "credentials_type":
			if err := oneArg(h.Dispenser, &p.CredentialsType); err != nil {
				return nil, err
			}
		case "header_prefix":
			if err := oneArg(h.Dispenser, &p.HeaderPrefix); err != nil {
				return nil, err
			}
		case "raw_paths":
			if err := oneArg(h.Dispenser, &p.RawPaths); err != nil {
				return nil, err
			}
			p.RawPaths = strings.ToLower(p.RawPaths)
		default:
			return nil, h.Errf("authgate_protect: unknown subdirective %q", dir)
		}
		if h.NextArg() {
			return nil, h.Errf("%s: too many arguments", dir)
		}
	}
	if err := p.Validate(); err != nil {
		return nil, h.Errf("authgate_protect: %v", err)
	}
	return p, nil
}
