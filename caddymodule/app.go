// Package caddymodule is authgate's thin Caddy layer: the authgate app
// (shared state) and the HTTP handler and authentication-provider modules
// that use it. It translates configuration into authcore and nothing more.
package caddymodule

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/manageapi"
	"github.com/authgate/authgate/authcore/store/memory"
	redisstore "github.com/authgate/authgate/authcore/store/redis"
)

func init() {
	caddy.RegisterModule(App{})
	goredis.SetLogger(&redisLogger{now: time.Now})
}

// redisLogger sends go-redis's own messages (failed dials during an
// outage, one or two a request) to Caddy's logger instead of stderr, at
// most one every authcore.OutageLogEvery with the count of those it held
// back: an outage is the core's to report (authcore.Outage), and never a
// line per request (SPEC §10).
type redisLogger struct {
	now     func() time.Time
	mu      sync.Mutex
	last    time.Time
	dropped int
}

func (l *redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.mu.Lock()
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < authcore.OutageLogEvery {
		l.dropped++
		l.mu.Unlock()
		return
	}
	dropped := l.dropped
	l.last, l.dropped = now, 0
	l.mu.Unlock()
	caddy.Log().Named("authgate.redis").Warn(fmt.Sprintf(format, v...), zap.Int("similar_held_back", dropped))
}

// App is the authgate app: the store client, signing keys and users that
// every authgate handler of the config shares. Handlers hold a reference
// to it, never a copy. The store connection (and, for the memory store,
// its sessions) outlives config reloads that leave the store config
// unchanged.
type App struct {
	// Store is "memory" (default: embedded, single node) or "redis".
	Store string `json:"store,omitempty"`
	// RedisURL locates Redis when Store is "redis":
	// redis://[:pass@]host:port/db, rediss:// for TLS,
	// redis-sentinel://[:pass@]h1:p1,h2:p2/db?master=NAME or
	// redis-cluster://[:pass@]h1:p1,h2:p2. Placeholders such as
	// {env.REDIS_URL} are expanded.
	RedisURL string `json:"redis_url,omitempty"`
	// KeyPrefix prefixes every store key. Default "authgate:".
	KeyPrefix string `json:"key_prefix,omitempty"`
	// Issuer is the iss claim of issued tokens, checked on verify.
	// Default "authgate".
	Issuer string `json:"issuer,omitempty"`
	// SigningKey is a base64 HS256 key of at least 32 bytes. Placeholders
	// such as {env.AUTHGATE_KEY} are expanded.
	SigningKey string `json:"signing_key,omitempty"`
	// SigningKeyFile is a PEM Ed25519 (EdDSA) or P-256 (ES256) private
	// key; its public key is published at /.well-known/jwks.json. With
	// neither key set, an ephemeral Ed25519 key is made at start (tokens
	// then die with the process and do not work across nodes).
	SigningKeyFile string `json:"signing_key_file,omitempty"`
	// PreviousKeys (base64 HS256) and PreviousKeyFiles (PEM) are keys
	// that signed tokens before a rotation: tokens they signed are still
	// accepted, new ones are signed with the current key. Drop them once
	// session_max has passed since the rotation.
	PreviousKeys     []string `json:"previous_keys,omitempty"`
	PreviousKeyFiles []string `json:"previous_key_files,omitempty"`
	// UsersFile is a JSON file {"users": [...]} of the accounts.
	UsersFile string `json:"users_file,omitempty"`
	// UsersStore keeps accounts in the store too, managed with
	// `authgate user add|set|passwd|list|del|enrol --redis URL`: a user
	// added there logs in at once on every node, with no reload. It needs
	// store redis. With UsersFile set as well both are consulted and the
	// file wins: a stored user that shares an id, email or userName with
	// a file user is ignored. Default false.
	UsersStore bool `json:"users_store,omitempty"`
	// APIKeys, when any is set, are the values the Multi API's api-key
	// header must carry. Placeholders are expanded.
	APIKeys []string `json:"api_keys,omitempty"`
	// SessionIdle is the sliding inactivity window of a session.
	// Default 5m.
	SessionIdle caddy.Duration `json:"session_idle,omitempty"`
	// SessionMax is the absolute lifetime of a session. Default 12h.
	SessionMax caddy.Duration `json:"session_max,omitempty"`
	// Sandbox makes every code 123456, sends nothing and turns on the
	// push simulator routes. For demos and integration tests only.
	Sandbox bool `json:"sandbox,omitempty"`
	// OTPSender delivers SMS codes: sandbox, webhook or twilio.
	OTPSender *SenderConfig `json:"otp_sender,omitempty"`
	// PushSender delivers push approvals (webhook); its secret also checks
	// the provider's signed resolve callbacks.
	PushSender *SenderConfig `json:"push_sender,omitempty"`
	// EmailSender delivers the Manage API's EMAIL codes: sandbox, smtp or
	// webhook. Default none: EMAIL MFA answers 503 outside sandbox mode.
	EmailSender *SenderConfig `json:"email_sender,omitempty"`
	// ServiceClients may call the Manage API (authgate_manage) with HTTP
	// Basic auth. Default none: every Manage call answers 401.
	ServiceClients []ServiceClientConfig `json:"service_clients,omitempty"`
	// Lockout locks an account after Attempts consecutive wrong passwords
	// for Duration. Default 5 and 30m.
	Lockout *LockoutConfig `json:"lockout,omitempty"`
	// RateLimits per client IP, by action: login (default 10 per 1m),
	// code_issue (10 per 1m), code_verify (30 per 1m).
	RateLimits map[string]RateLimitConfig `json:"rate_limits,omitempty"`
	// CookieName is the part after "__Host-" of the browser portal's
	// session cookie (authgate_portal); its pre-session cookie adds
	// "-pre". Letters, digits, "-", "_" and "." only. Default "authgate".
	CookieName string `json:"cookie_name,omitempty"`
	// Passkeys enables WebAuthn passkeys as a step-up factor (the passkey
	// routes of authgate_api). Default none.
	Passkeys *PasskeysConfig `json:"passkeys,omitempty"`

	services *authcore.Services
	metrics  authcore.Metrics
	storeKey string
	logger   *zap.Logger
	ctx      caddy.Context
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "authgate",
		New: func() caddy.Module { return new(App) },
	}
}

// stores holds the store clients across config reloads, keyed by their
// configuration, so that an unchanged store keeps its connection (and the
// memory store its sessions) when the config is reloaded.
var stores = caddy.NewUsagePool()

type pooledStore struct{ authcore.Store }

func (p pooledStore) Destruct() error { return p.Close() }

// ephemeralKey is made once per process so that reloads do not log
// everybody out when no key is configured.
var ephemeralKey = sync.OnceValue(authcore.NewEphemeralKey)

// LockoutConfig configures the account lockout.
type LockoutConfig struct {
	// Attempts is the number of consecutive failures that lock. Default 5.
	Attempts int `json:"attempts,omitempty"`
	// Duration is how long the lock lasts. Default 30m.
	Duration caddy.Duration `json:"duration,omitempty"`
}

// ServiceClientConfig is a Manage API client.
type ServiceClientConfig struct {
	// Name is the client's Basic-auth user name.
	Name string `json:"name"`
	// Hash is the bcrypt or argon2id hash of the client's secret (its
	// Basic-auth password), as `authgate hash-password` prints it.
	// Placeholders such as {env.MANAGE_CLIENT_HASH} are expanded.
	Hash string `json:"hash"`
	// Scopes are the routes the client may call: manage.user.read,
	// manage.user.write, manage.otp.verify, manage.otp.send, token.introspect,
	// token.revoke, manage.session.admin.
	Scopes []string `json:"scopes"`
}

// serviceClients returns the clients with placeholders expanded.
func (a *App) serviceClients(repl *caddy.Replacer) []manageapi.ServiceClient {
	out := make([]manageapi.ServiceClient, 0, len(a.ServiceClients))
	for _, c := range a.ServiceClients {
		out = append(out, manageapi.ServiceClient{Name: c.Name, Hash: repl.ReplaceKnown(c.Hash, ""), Scopes: c.Scopes})
	}
	return out
}

// RateLimitConfig is a limit of Requests per Window per client IP.
type RateLimitConfig struct {
	Requests int            `json:"requests"`
	Window   caddy.Duration `json:"window"`
}

// The senders otp_sender, push_sender and email_sender accept.
var (
	otpSenders   = []string{"sandbox", "webhook", "twilio"}
	pushSenders  = []string{"sandbox", "webhook"}
	emailSenders = []string{"sandbox", "smtp", "webhook"}
)

// rateLimitActions are the actions rate_limit accepts.
var rateLimitActions = []string{authcore.LimitLogin, authcore.LimitCodeIssue, authcore.LimitCodeVerify}

// Provision builds the shared core services.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger, a.ctx = ctx.Logger(), ctx
	repl := caddy.NewReplacer()
	if a.Store == "" {
		a.Store = "memory"
	}
	if a.KeyPrefix == "" {
		a.KeyPrefix = "authgate:"
	}
	if a.Issuer == "" {
		a.Issuer = "authgate"
	}
	if err := a.Validate(); err != nil {
		return err
	}

	key, err := a.signingKey(repl)
	if err != nil {
		return err
	}
	previous, err := a.previousKeys(repl)
	if err != nil {
		return err
	}
	tokens := authcore.NewTokens(a.Issuer, key, time.Now, previous...)

	var static *authcore.StaticUsers
	if a.UsersFile != "" {
		if static, err = authcore.LoadUsersFile(a.UsersFile); err != nil {
			return fmt.Errorf("users_file: %w%s", err, relativeHint(a.UsersFile, err))
		}
	}

	for _, k := range a.APIKeys {
		if _, err := expandRequired(repl, "api_key", k); err != nil {
			return err
		}
	}
	store, err := a.loadStore(repl)
	if err != nil {
		return err
	}
	if a.UsersStore && a.Store != "redis" {
		a.logger.Warn("users store on the memory store: it starts empty and `authgate user` cannot reach it " +
			"(it lives inside this process); use store redis to manage users with the CLI")
	}
	opts := authcore.Options{
		Store: store, Users: userDirectory(static, a.UsersStore, store), Tokens: tokens,
		SessionIdle: time.Duration(a.SessionIdle), SessionMax: time.Duration(a.SessionMax),
		Logger: a.logger, Sandbox: a.Sandbox,
		CodeKey: key.Derive("one-time code hashes"),
		CSRFKey: key.Derive("portal csrf tokens"),
	}
	if a.Passkeys != nil {
		opts.Passkeys = &authcore.PasskeyConfig{RPID: a.Passkeys.RPID, Origins: a.Passkeys.Origins}
	}
	if a.Lockout != nil {
		opts.LockoutAttempts, opts.LockoutDuration = a.Lockout.Attempts, time.Duration(a.Lockout.Duration)
	}
	opts.RateLimits = maps.Clone(authcore.DefaultRateLimits)
	for action, rl := range a.RateLimits {
		opts.RateLimits[action] = authcore.RateLimit{Limit: rl.Requests, Window: time.Duration(rl.Window)}
	}
	if a.OTPSender != nil {
		if opts.OTPSender, _, err = a.OTPSender.build("otp_sender", repl); err != nil {
			return err
		}
	}
	if a.PushSender != nil {
		if opts.PushSender, opts.PushSecret, err = a.PushSender.build("push_sender", repl); err != nil {
			return err
		}
	}
	if a.EmailSender != nil {
		if opts.EmailSender, _, err = a.EmailSender.build("email_sender", repl); err != nil {
			return err
		}
	}
	if a.metrics, err = registerMetrics(ctx); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if a.Sandbox {
		a.logger.Warn("sandbox mode: every code is 123456, nothing is sent and the push simulator is on; never use it in production")
	} else if a.OTPSender == nil {
		a.logger.Info("no otp_sender: SMS step-up and enrolment answer 503 until one is configured")
	}
	opts.Metrics = a.metrics
	a.services, err = authcore.New(opts)
	return err
}

// relativeHint explains a relative path that was not found: it is read
// from the directory Caddy runs in, not the Caddyfile's (the demo's
// users_file works from the repository root only).
func relativeHint(path string, err error) string {
	if filepath.IsAbs(path) || !errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	wd, _ := os.Getwd()
	return fmt.Sprintf(" (a relative path is read from the directory Caddy runs in, %s)", wd)
}

// userDirectory combines the users file (static, nil when not set) and the
// users in the store. The file tells the core its hashes' parameters,
// which every password check then pays for (authcore.PasswordHashes).
func userDirectory(static *authcore.StaticUsers, inStore bool, store authcore.Store) authcore.UserDirectory {
	switch {
	case static != nil && inStore:
		return authcore.NewCombinedUsers(static, authcore.NewStoreUsers(store, nil))
	case inStore:
		return authcore.NewStoreUsers(store, nil)
	case static != nil:
		return static
	}
	return emptyUsers
}

func (a *App) signingKey(repl *caddy.Replacer) (*authcore.Key, error) {
	switch {
	case a.SigningKey != "":
		return hmacKey("signing_key", a.SigningKey, repl)
	case a.SigningKeyFile != "":
		return pemKey("signing_key_file", a.SigningKeyFile)
	}
	a.logger.Warn("no signing_key or signing_key_file: using an ephemeral Ed25519 key; " +
		"tokens die with this process and are not accepted by other nodes (single node only)")
	return ephemeralKey(), nil
}

func (a *App) previousKeys(repl *caddy.Replacer) ([]*authcore.Key, error) {
	var keys []*authcore.Key
	for _, k := range a.PreviousKeys {
		key, err := hmacKey("previous_key", k, repl)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	for _, f := range a.PreviousKeyFiles {
		key, err := pemKey("previous_key_file", f)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	return keys, nil
}

func hmacKey(directive, b64 string, repl *caddy.Replacer) (*authcore.Key, error) {
	b64, err := expandRequired(repl, directive, b64)
	if err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, fmt.Errorf("%s: not valid base64", directive)
	}
	key, err := authcore.NewHMACKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", directive, err)
	}
	return key, nil
}

func pemKey(directive, path string) (*authcore.Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", directive, err)
	}
	key, err := authcore.ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", directive, path, err)
	}
	return key, nil
}

func (a *App) loadStore(repl *caddy.Replacer) (authcore.Store, error) {
	url := ""
	if a.Store == "redis" {
		var err error
		if url, err = expandRequired(repl, "store redis", a.RedisURL); err != nil {
			return nil, err
		}
	}
	a.storeKey = a.Store + "|" + a.KeyPrefix + "|" + url
	val, _, err := stores.LoadOrNew(a.storeKey, func() (caddy.Destructor, error) {
		if a.Store == "memory" {
			return pooledStore{memory.New(nil)}, nil
		}
		opts, err := redisstore.Parse(url)
		if err != nil {
			return nil, fmt.Errorf("store redis: %w", err)
		}
		return pooledStore{redisstore.Open(opts, a.KeyPrefix)}, nil
	})
	if err != nil {
		return nil, err
	}
	return val.(pooledStore).Store, nil
}

// expandRequired replaces the placeholders of a value the config needs.
// When it comes out empty, the error names the environment variables it
// read, so `signing_key {env.AG_KEY}` with AG_KEY unset says that rather
// than failing later on a key of 0 bytes. The value itself (a secret, as
// often as not) is never in the message, only its placeholders.
func expandRequired(repl *caddy.Replacer, directive, v string) (string, error) {
	out := repl.ReplaceKnown(v, "")
	if strings.TrimSpace(out) != "" {
		return out, nil
	}
	var unset []string
	for _, m := range envPlaceholder.FindAllStringSubmatch(v, -1) {
		if value, ok := os.LookupEnv(m[1]); !ok {
			unset = append(unset, "environment variable "+m[1]+" is not set")
		} else if strings.TrimSpace(value) == "" {
			unset = append(unset, "environment variable "+m[1]+" is empty")
		}
	}
	if len(unset) == 0 {
		return "", fmt.Errorf("%s: the value is empty", directive)
	}
	return "", fmt.Errorf("%s: the value is empty: %s", directive, strings.Join(unset, ", "))
}

// cookieName is what cookie_name may be: a cookie name that needs no
// quoting anywhere.
var cookieName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// envPlaceholder matches {env.NAME}, Caddy's run-time environment
// placeholder.
var envPlaceholder = regexp.MustCompile(`\{env\.([^{}]+)\}`)

// PasskeysConfig is the WebAuthn relying party.
type PasskeysConfig struct {
	// RPID is the relying party id: the domain the passkeys belong to
	// (such as bank.example).
	RPID string `json:"rp_id"`
	// Origins are the origins of the pages that run the ceremonies (such
	// as https://bank.example): on the RP ID's domain or under it.
	Origins []string `json:"origins"`
}

// validate checks what a browser would otherwise refuse at run time.
func (c *PasskeysConfig) validate() error {
	if c.RPID == "" || strings.ContainsAny(c.RPID, ":/ ") {
		return fmt.Errorf("passkeys: rp_id %q: want a domain such as bank.example", c.RPID)
	}
	if len(c.Origins) == 0 {
		return errors.New("passkeys: want at least one origin")
	}
	for _, o := range c.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("passkeys: origin %q: want a scheme and host such as https://bank.example", o)
		}
		if h := u.Hostname(); h != c.RPID && !strings.HasSuffix(h, "."+c.RPID) {
			return fmt.Errorf("passkeys: origin %q is not on the rp_id %s", o, c.RPID)
		}
	}
	return nil
}

// Validate reports configuration errors.
func (a *App) Validate() error {
	if a.Passkeys != nil {
		if err := a.Passkeys.validate(); err != nil {
			return err
		}
	}
	switch a.Store {
	case "memory", "":
		if a.RedisURL != "" {
			return errors.New("redis_url is set but store is not redis")
		}
	case "redis":
		if a.RedisURL == "" {
			return errors.New("store redis needs a URL")
		}
	default:
		return fmt.Errorf("store: unknown store %q: want memory or redis", a.Store)
	}
	if a.SigningKey != "" && a.SigningKeyFile != "" {
		return errors.New("signing_key and signing_key_file are exclusive: set one")
	}
	if a.SessionIdle < 0 || a.SessionMax < 0 {
		return errors.New("session_idle and session_max must be positive")
	}
	if a.SessionIdle != 0 && a.SessionMax != 0 && a.SessionIdle > a.SessionMax {
		return fmt.Errorf("session_idle (%s) is longer than session_max (%s)",
			time.Duration(a.SessionIdle), time.Duration(a.SessionMax))
	}
	for _, k := range a.APIKeys {
		if k == "" {
			return errors.New("api_key: empty key")
		}
	}
	if a.CookieName != "" && !cookieName.MatchString(a.CookieName) {
		return fmt.Errorf("cookie_name: %q: want letters, digits, '-', '_' or '.' only", a.CookieName)
	}
	if a.Lockout != nil && (a.Lockout.Attempts < 0 || a.Lockout.Duration < 0) {
		return errors.New("lockout: attempts and duration must be positive")
	}
	for action, rl := range a.RateLimits {
		if !slices.Contains(rateLimitActions, action) {
			return fmt.Errorf("rate_limit: unknown action %q: want one of %v", action, rateLimitActions)
		}
		if rl.Requests <= 0 || rl.Window <= 0 {
			return fmt.Errorf("rate_limit %s: requests and window must be positive", action)
		}
	}
	if a.OTPSender != nil {
		if err := a.OTPSender.validate("otp_sender", otpSenders...); err != nil {
			return err
		}
	}
	if a.PushSender != nil {
		if err := a.PushSender.validate("push_sender", pushSenders...); err != nil {
			return err
		}
	}
	if a.EmailSender != nil {
		if err := a.EmailSender.validate("email_sender", emailSenders...); err != nil {
			return err
		}
	}
	repl := caddy.NewReplacer()
	for _, c := range a.ServiceClients {
		if _, err := expandRequired(repl, "service_client "+c.Name+": hash", c.Hash); err != nil && hasPlaceholder(c.Hash) {
			return err
		}
	}
	if err := manageapi.ValidateClients(a.serviceClients(repl)); err != nil {
		return fmt.Errorf("service_client: %w", err)
	}
	return nil
}

// Start implements caddy.App; the core serves through its handlers.
// It warns when another process already serves one of the config's ports.
func (a *App) Start() error {
	a.warnSharedPorts(a.ctx)
	return nil
}

// Stop implements caddy.App.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's hold on the shared store.
func (a *App) Cleanup() error {
	if a.storeKey != "" {
		_, err := stores.Delete(a.storeKey)
		return err
	}
	return nil
}

// Services returns the shared core.
func (a *App) Services() *authcore.Services { return a.services }

// appFrom returns the config's authgate app, provisioning it (with
// defaults) when the config has no authgate global block.
func appFrom(ctx caddy.Context) (*App, error) {
	v, err := ctx.App("authgate")
	if err != nil {
		return nil, fmt.Errorf("loading authgate app: %w", err)
	}
	return v.(*App), nil
}

var emptyUsers, _ = authcore.NewStaticUsers(nil)

var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
