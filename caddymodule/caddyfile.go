package caddymodule

import (
	"maps"
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
	httpcaddyfile.RegisterHandlerDirective("authgate_verify", parseVerify)
	httpcaddyfile.RegisterHandlerDirective("authgate_portal", parsePortal)
	// Registered orders mean users never need an `order` line: the guard
	// runs with the other auth handlers, ahead of anything that proxies or
	// responds; the API handlers respond, so they sit with respond.
	httpcaddyfile.RegisterDirectiveOrder("authgate_protect", httpcaddyfile.After, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("authgate_api", httpcaddyfile.Before, "respond")
	httpcaddyfile.RegisterDirectiveOrder("authgate_manage", httpcaddyfile.Before, "respond")
	httpcaddyfile.RegisterDirectiveOrder("authgate_verify", httpcaddyfile.Before, "respond")
	httpcaddyfile.RegisterDirectiveOrder("authgate_portal", httpcaddyfile.Before, "respond")
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
//		api_key <key>                  (repeatable)
//		session_idle <duration>
//		session_max <duration>
//		sandbox
//		otp_sender sandbox | webhook <url> <hmac-secret> | twilio <account> <token> <from>
//		push_sender sandbox | webhook <url> <hmac-secret>
//		email_sender sandbox | smtp <host:port> <from> [<user> <pass>] | webhook <url> <hmac-secret>
//		lockout <attempts> <duration>
//		rate_limit login | code_issue | code_verify <requests> <window>   (once per action)
//		service_client <name> <hash> <scope>...                          (repeatable)
//		cookie_name <name>
//	}
func parseGlobal(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	d.Next() // consume option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	if err := parseBlock(d, "authgate", globalDirectives, app, nil); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "authgate", Value: caddyconfig.JSON(app, nil)}, nil
}

// directive parses one subdirective of a block into the config T. Its
// arguments are the dispenser's remaining arguments on the line.
type directive[T any] struct {
	parse func(d *caddyfile.Dispenser, cfg *T) error
	// repeatable directives may be given on several lines; any other is
	// an error the second time, where a later line would silently win.
	repeatable bool
}

// globalDirectives is the global authgate block: the parser reads it, and
// docs/configuration.md is checked against it (docs_test.go).
var globalDirectives = map[string]directive[App]{
	"store":      {parse: parseStore},
	"key_prefix": {parse: func(d *caddyfile.Dispenser, a *App) error { return oneArg(d, &a.KeyPrefix) }},
	"issuer":     {parse: func(d *caddyfile.Dispenser, a *App) error { return oneArg(d, &a.Issuer) }},
	"signing_key": {parse: func(d *caddyfile.Dispenser, a *App) error {
		return oneArg(d, &a.SigningKey)
	}},
	"signing_key_file": {parse: func(d *caddyfile.Dispenser, a *App) error {
		return oneArg(d, &a.SigningKeyFile)
	}},
	"previous_key": {repeatable: true, parse: func(d *caddyfile.Dispenser, a *App) error {
		return appendArg(d, &a.PreviousKeys)
	}},
	"previous_key_file": {repeatable: true, parse: func(d *caddyfile.Dispenser, a *App) error {
		return appendArg(d, &a.PreviousKeyFiles)
	}},
	"users_file": {parse: func(d *caddyfile.Dispenser, a *App) error { return oneArg(d, &a.UsersFile) }},
	"users":      {parse: parseUsersSource},
	"api_key": {repeatable: true, parse: func(d *caddyfile.Dispenser, a *App) error {
		return appendArg(d, &a.APIKeys)
	}},
	"session_idle": {parse: func(d *caddyfile.Dispenser, a *App) error { return durationArg(d, &a.SessionIdle) }},
	"session_max":  {parse: func(d *caddyfile.Dispenser, a *App) error { return durationArg(d, &a.SessionMax) }},
	"passkeys": {parse: func(d *caddyfile.Dispenser, a *App) error {
		args := d.RemainingArgs()
		if len(args) < 2 {
			return d.Errf("passkeys: want <rp_id> <origin>...")
		}
		a.Passkeys = &PasskeysConfig{RPID: args[0], Origins: args[1:]}
		return nil
	}},
	"sandbox": {parse: func(_ *caddyfile.Dispenser, a *App) error { a.Sandbox = true; return nil }},
	"otp_sender": {parse: func(d *caddyfile.Dispenser, a *App) (err error) {
		a.OTPSender, err = parseSender(d, otpSenders...)
		return err
	}},
	"push_sender": {parse: func(d *caddyfile.Dispenser, a *App) (err error) {
		a.PushSender, err = parseSender(d, pushSenders...)
		return err
	}},
	"email_sender": {parse: func(d *caddyfile.Dispenser, a *App) (err error) {
		a.EmailSender, err = parseSender(d, emailSenders...)
		return err
	}},
	"service_client": {repeatable: true, parse: func(d *caddyfile.Dispenser, a *App) error {
		c, err := parseServiceClient(d)
		if err != nil {
			return err
		}
		for _, other := range a.ServiceClients {
			if other.Name == c.Name {
				return d.Errf("service_client: duplicate name %q", c.Name)
			}
		}
		a.ServiceClients = append(a.ServiceClients, *c)
		return nil
	}},
	"lockout":    {parse: parseLockout},
	"rate_limit": {repeatable: true, parse: parseRateLimit},
	"cookie_name": {parse: func(d *caddyfile.Dispenser, a *App) error {
		if err := oneArg(d, &a.CookieName); err != nil {
			return err
		}
		if !cookieName.MatchString(a.CookieName) {
			return d.Errf("cookie_name: %q: want letters, digits, '-', '_' or '.' only", a.CookieName)
		}
		return nil
	}},
}

// parseBlock reads a block's subdirectives with table. check, when set,
// validates cfg after each line, so that a bad value is reported on its
// own line rather than where the block ends.
func parseBlock[T any](d *caddyfile.Dispenser, block string, table map[string]directive[T], cfg *T, check func(*T) error) error {
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		dir, ok := table[name]
		if !ok {
			return d.Errf("%s: unknown subdirective %q", block, name)
		}
		if seen[name] && !dir.repeatable {
			return d.Errf("%s: %s is given twice: it takes one line, and a second would silently replace the first", block, name)
		}
		seen[name] = true
		if err := dir.parse(d, cfg); err != nil {
			return err
		}
		if d.NextArg() {
			return d.Errf("%s: too many arguments", name)
		}
		if check != nil {
			if err := check(cfg); err != nil {
				return d.Errf("%s: %v", block, err)
			}
		}
	}
	return nil
}

func parseStore(d *caddyfile.Dispenser, app *App) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	app.Store = d.Val()
	switch app.Store {
	case "memory":
	case "redis":
		if !d.NextArg() {
			return d.Errf("store redis: missing URL")
		}
		app.RedisURL = d.Val()
	default:
		return d.Errf("store: unknown store %q: want memory or redis <url>", app.Store)
	}
	return nil
}

func parseUsersSource(d *caddyfile.Dispenser, app *App) error {
	var source string
	if err := oneArg(d, &source); err != nil {
		return err
	}
	if source != "store" {
		return d.Errf("users: unknown source %q: want store (a file is users_file <path>)", source)
	}
	app.UsersStore = true
	return nil
}

func parseLockout(d *caddyfile.Dispenser, app *App) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("lockout: want <attempts> <duration>")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n <= 0 {
		return d.Errf("lockout: bad attempts %q", args[0])
	}
	dur, err := caddy.ParseDuration(args[1])
	if err != nil || dur <= 0 {
		return d.Errf("lockout: bad duration %q", args[1])
	}
	app.Lockout = &LockoutConfig{Attempts: n, Duration: caddy.Duration(dur)}
	return nil
}

func parseRateLimit(d *caddyfile.Dispenser, app *App) error {
	args := d.RemainingArgs()
	if len(args) != 3 {
		return d.Errf("rate_limit: want <action> <requests> <window>")
	}
	if !slices.Contains(rateLimitActions, args[0]) {
		return d.Errf("rate_limit: unknown action %q: want one of %v", args[0], rateLimitActions)
	}
	if _, dup := app.RateLimits[args[0]]; dup {
		return d.Errf("rate_limit %s is given twice: it takes one line per action", args[0])
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n <= 0 {
		return d.Errf("rate_limit %s: bad request count %q", args[0], args[1])
	}
	win, err := caddy.ParseDuration(args[2])
	if err != nil || win <= 0 {
		return d.Errf("rate_limit %s: bad window %q", args[0], args[2])
	}
	if app.RateLimits == nil {
		app.RateLimits = map[string]RateLimitConfig{}
	}
	app.RateLimits[args[0]] = RateLimitConfig{Requests: n, Window: caddy.Duration(win)}
	return nil
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

func appendArg(d *caddyfile.Dispenser, dst *[]string) error {
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	*dst = append(*dst, v)
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

// parsePortal sets up the browser portal; it is configured by the global
// authgate block (cookie_name):
//
//	authgate_portal
func parsePortal(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // consume directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	for h.NextBlock(0) {
		return nil, h.Errf("authgate_portal: unknown subdirective %q (the portal is configured in the global authgate block)", h.Val())
	}
	return new(Portal), nil
}

// parseProtect sets up the guard:
//
//	authgate_protect {
//		token access | auth | any
//		stepup [<max_age>] [otp | push | passkey ...]
//		identity_type CONSUMER | CORPORATE
//		credentials_type ROOT | USER
//		header_prefix <prefix>
//		raw_paths allow | refuse
//		portal <path>
//	}
func parseProtect(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	p := new(Guard)
	h.Next() // consume directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	if err := parseBlock(h.Dispenser, "authgate_protect", protectDirectives, &p.GuardConfig, (*GuardConfig).check); err != nil {
		return nil, err
	}
	return p, nil
}

// parseVerify sets up forward auth for another proxy; its block is
// authgate_protect's:
//
//	authgate_verify {
//		token access | auth | any
//		stepup [<max_age>] [otp | push | passkey ...]
//		identity_type CONSUMER | CORPORATE
//		credentials_type ROOT | USER
//		header_prefix <prefix>
//		raw_paths allow | refuse
//	}
func parseVerify(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	v := new(Verify)
	h.Next() // consume directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	if err := parseBlock(h.Dispenser, "authgate_verify", verifyDirectives, &v.GuardConfig, (*GuardConfig).checkVerify); err != nil {
		return nil, err
	}
	return v, nil
}

// verifyDirectives is authgate_verify's block: authgate_protect's but
// portal, since a forward-auth answer cannot send a browser anywhere.
var verifyDirectives = func() map[string]directive[GuardConfig] {
	m := maps.Clone(protectDirectives)
	delete(m, "portal")
	return m
}()

// protectDirectives is authgate_protect's block: the parser reads it, and
// docs/configuration.md is checked against it (docs_test.go).
var protectDirectives = map[string]directive[GuardConfig]{
	"token": {parse: func(d *caddyfile.Dispenser, p *GuardConfig) error {
		err := oneArg(d, &p.Token)
		p.Token = strings.ToLower(p.Token)
		return err
	}},
	"stepup": {parse: func(d *caddyfile.Dispenser, p *GuardConfig) error {
		p.StepUp = true
		// max_age, when given, comes first; the methods are checked by
		// validate, which the parser runs on the block.
		for first := true; d.NextArg(); first = false {
			if m := strings.ToLower(d.Val()); !first || slices.Contains(stepUpMethods, m) {
				p.StepUpMethods = append(p.StepUpMethods, m)
				continue
			}
			v, err := caddy.ParseDuration(d.Val())
			if err != nil || v <= 0 {
				return d.Errf("stepup: bad max_age %q: want a positive duration such as 10m, or a method (otp, push, passkey)", d.Val())
			}
			p.StepUpMaxAge = caddy.Duration(v)
		}
		return nil
	}},
	"identity_type": {parse: func(d *caddyfile.Dispenser, p *GuardConfig) error {
		return oneArg(d, &p.IdentityType)
	}},
	"credentials_type": {parse: func(d *caddyfile.Dispenser, p *GuardConfig) error {
		return oneArg(d, &p.CredentialsType)
	}},
	"header_prefix": {parse: func(d *caddyfile.Dispenser, p *GuardConfig) error {
		return oneArg(d, &p.HeaderPrefix)
	}},
	"raw_paths": {parse: func(d *caddyfile.Dispenser, p *GuardConfig) error {
		err := oneArg(d, &p.RawPaths)
		p.RawPaths = strings.ToLower(p.RawPaths)
		return err
	}},
	"portal": {parse: func(d *caddyfile.Dispenser, p *GuardConfig) error {
		if err := oneArg(d, &p.Portal); err != nil {
			return err
		}
		if p.Portal = strings.TrimSuffix(p.Portal, "/"); p.Portal == "" {
			return d.Errf("portal: want the path authgate_portal is mounted at, such as /auth")
		}
		return nil
	}},
}
