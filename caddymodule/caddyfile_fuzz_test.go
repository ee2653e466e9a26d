package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/authgate/authgate/authcore"
)

// Fuzz targets of the Caddyfile parsers (SPEC §9): the global authgate
// option, authgate_protect and authgate_api. Whatever the text, adapting
// never panics, and what adapts decodes (strictly) into the module's
// config struct. Run one with, for example:
//
//	go test -run '^$' -fuzz '^FuzzGlobalOption$' -fuzztime 10s ./caddymodule

// fzGlobalLines is the documented surface of the global block (SPEC §2)
// and malformed variants of it.
var fzGlobalLines = []string{
	"store memory", "store redis redis://127.0.0.1:6379/0", "store redis rediss://:pass@h:6380/1",
	"store redis redis-sentinel://:p@h1:1,h2:2/0?master=m", "store redis redis-cluster://h1:1,h2:2",
	"store redis {env.REDIS_URL}", "key_prefix authgate:", "issuer https://auth.example.com",
	"signing_key YXV0aGdhdGUtZTJlLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmctb2s=", "signing_key {env.AUTHGATE_KEY}",
	"signing_key_file /nonexistent/key.pem", "users_file /nonexistent/users.json", "api_key k-123",
	"api_key k-1\napi_key k-2", "api_key {env.API_KEY}", "sandbox",
	"passkeys bank.example https://bank.example", "passkeys bank.example", "passkeys https://bank.example bank.example",
	"otp_sender sandbox", "otp_sender webhook https://sms.example.com/hook s3cret",
	"otp_sender twilio AC123 token +15550000000", "push_sender sandbox",
	"push_sender webhook https://push.example.com/hook s3cret",
	"email_sender sandbox", "email_sender smtp smtp.example.com:587 from@example.com user pass",
	"email_sender webhook https://mail.example.com/hook s3cret",
	"session_idle 5m", "session_max 12h", "session_idle 1d", "lockout 5 30m",
	"rate_limit login 10 1m", "rate_limit code_issue 10 1m", "rate_limit code_verify 30 1m",
	"service_client backoffice $2a$10$sTiPAu0YBTUXvwzTQGjgvOPIBvHHsh/Olryw4fpXjZmEauQhjVxS2 users:read users:write",
	// malformed
	"", "store", "store mongo", "store redis", "store memory extra", "key_prefix", "issuer a b",
	"signing_key", "signing_key \"\"", "api_key \"\"", "api_key", "session_idle soon", "session_idle -5m",
	"session_idle 0", "session_max 99999999999999999999h", "session_idle 5m\nsession_max 1m", "sandbox yes",
	"otp_sender", "otp_sender pigeon", "otp_sender webhook https://x.example", "otp_sender webhook ftp://x s",
	"otp_sender webhook http:// s", "otp_sender webhook :%zz s", "otp_sender twilio a b",
	"push_sender twilio a b c", "push_sender webhook https://x \"\"", "lockout", "lockout 5", "lockout x 30m",
	"lockout 0 30m", "lockout -1 30m", "lockout 99999999999999999999 30m", "lockout 5 -1s", "lockout 5 30m 1",
	"rate_limit", "rate_limit login", "rate_limit logout 5 1m", "rate_limit login 0 1m",
	"rate_limit login 5 soon", "rate_limit login 5 0s", "rate_limit login 5 1m extra", "colour blue",
	"store memory {\n}", "sandbox {\n\tstore memory\n}", "{", "}", "}\n}\n{", "\"unterminated",
	"`backquoted` line", "store \"mem ory\"", "issuer \"\\\"\"", "api_key {$HOME}", "api_key {env.}",
	"\x00", "\xff\xfe", "store\tmemory", "store memory # comment", "# only a comment",
	"otp_sender webhook https://x.example s\notp_sender sandbox", strings.Repeat("sandbox\n", 200),
	"issuer " + strings.Repeat("a", 10000), "session_idle 1.5h", "session_idle 5m5m", "session_idle 1ns",
}

// fzProtectLines is the documented surface of authgate_protect and
// malformed variants of it.
var fzProtectLines = []string{
	"", "token access", "token auth", "token any", "token ACCESS", "stepup", "stepup 10m", "stepup 1h30m",
	"stepup 5m passkey", "stepup passkey", "stepup otp push passkey", "stepup 1m OTP",
	"identity_type CONSUMER", "identity_type CORPORATE", "credentials_type ROOT", "credentials_type USER",
	"header_prefix X-Authgate-", "header_prefix X-Auth-", "raw_paths allow", "raw_paths refuse", "raw_paths ALLOW",
	"token access\nstepup 10m\nidentity_type CONSUMER\ncredentials_type ROOT\nheader_prefix X-Auth-\nraw_paths allow",
	// malformed
	"token", "token bearer", "token access any", "stepup never", "stepup 0", "stepup -1m", "stepup 10m 20m",
	"stepup passkey 5m", "stepup sms", "stepup passkey passkey",
	"identity_type", "identity_type ADMIN", "identity_type consumer", "credentials_type", "credentials_type ADMIN",
	"header_prefix", "header_prefix \"\"", "header_prefix Authorization",
	"raw_paths", "raw_paths \"\"", "raw_paths sometimes", "raw_paths allow refuse", "raw_paths {env.RAW}",
	"realm x", "{", "}", "}\n}\n:81 {\n\tauthgate_protect", "token \"\"", "\xff", "\x00",
	"stepup 99999999999999999999h", strings.Repeat("token any\n", 100),
}

// fzAPITails follow the authgate_api directive name.
var fzAPITails = []string{
	"", "\n", " {\n}", " {\n\tstore memory\n}", " arg", " arg1 arg2", " {", " }", " {\n\t}\n}\n:81 {\n\tauthgate_api",
	" /multi/*", " * {\n}", "\nauthgate_api", "\nrespond ok", " \"\"", " \xff", " {\n\t# comment\n}",
}

// fzAdapt adapts a Caddyfile without panicking; it reports the JSON, or
// nil when the Caddyfile was refused (or must not be read, see below).
func fzAdapt(t *testing.T, caddyfile string) []byte {
	t.Helper()
	// import reads files (and globs) from disk: not the parser under test,
	// and `import /dev/zero` would never end.
	if strings.Contains(caddyfile, "import") {
		return nil
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil
	}
	return out
}

// fzHandlers returns the JSON of every handler named name in config.
func fzHandlers(t *testing.T, config []byte, name string) [][]byte {
	t.Helper()
	var all any
	if err := json.Unmarshal(config, &all); err != nil {
		t.Fatalf("adapted config is not JSON: %v\n%s", err, config)
	}
	var found [][]byte
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == name {
				m := make(map[string]any, len(v))
				for k, e := range v {
					if k != "handler" {
						m[k] = e
					}
				}
				raw, _ := json.Marshal(m)
				found = append(found, raw)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(all)
	return found
}

func FuzzGlobalOption(f *testing.F) {
	for _, l := range fzGlobalLines {
		f.Add(l)
	}
	// Every valid line at once.
	f.Add(strings.Join([]string{"store redis redis://127.0.0.1:6379/0", "key_prefix authgate:",
		"issuer https://auth.example.com", "signing_key YXV0aGdhdGUtZTJlLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmctb2s=",
		"users_file /nonexistent/users.json", "api_key k-1", "api_key k-2", "sandbox",
		"otp_sender webhook https://sms.example.com/hook s3cret", "push_sender webhook https://push.example.com/hook s3cret",
		"email_sender sandbox", "session_idle 5m", "session_max 12h", "lockout 5 30m", "rate_limit login 10 1m",
		"rate_limit code_issue 10 1m", "rate_limit code_verify 30 1m"}, "\n"))
	f.Fuzz(func(t *testing.T, body string) {
		config := fzAdapt(t, "{\n\tauthgate {\n"+body+"\n\t}\n}\n:80 {\n\trespond ok\n}\n")
		if config == nil {
			return
		}
		var cfg struct {
			Apps map[string]json.RawMessage `json:"apps"`
		}
		if err := json.Unmarshal(config, &cfg); err != nil {
			t.Fatalf("adapted config is not JSON: %v", err)
		}
		raw, ok := cfg.Apps["authgate"]
		if !ok {
			return // e.g. the text closed the block: no authgate option at all
		}
		app := new(App)
		if err := caddy.StrictUnmarshalJSON(raw, app); err != nil {
			t.Fatalf("the adapted authgate app does not decode into App: %v\n%s", err, raw)
		}
		_ = app.Validate() // may refuse (idle > max...), must not panic
		again, err := json.Marshal(app)
		if err != nil {
			t.Fatalf("App does not encode again: %v", err)
		}
		if err := caddy.StrictUnmarshalJSON(again, new(App)); err != nil {
			t.Fatalf("App's own JSON does not decode: %v\n%s", err, again)
		}
	})
}

func FuzzProtectDirective(f *testing.F) {
	for _, l := range fzProtectLines {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, body string) {
		config := fzAdapt(t, ":80 {\n\tauthgate_protect {\n"+body+"\n\t}\n\trespond ok\n}\n")
		if config == nil {
			return
		}
		for _, raw := range fzHandlers(t, config, "authgate_protect") {
			p := new(Guard)
			if err := caddy.StrictUnmarshalJSON(raw, p); err != nil {
				t.Fatalf("the adapted authgate_protect does not decode into Guard: %v\n%s", err, raw)
			}
			// The parser validated the handler before encoding it: what it
			// encoded must still be valid.
			if err := p.Validate(); err != nil {
				t.Fatalf("an adapted authgate_protect fails Validate: %v\n%s", err, raw)
			}
			// A config that validates must not fail every admitted request:
			// the identity headers must have legal names, or the request to
			// the backend is refused (502 from reverse_proxy).
			prefix := p.HeaderPrefix
			if prefix == "" {
				prefix = authcore.DefaultHeaderPrefix
			}
			for _, n := range []string{authcore.HeaderCredentialsID, authcore.HeaderCredentialsType, authcore.HeaderIdentityID,
				authcore.HeaderIdentityType, authcore.HeaderSteppedUp, authcore.HeaderAuthTime} {
				if !fzValidHeaderName(prefix + n) {
					t.Fatalf("authgate_protect validates with header_prefix %q, which makes the header name %q that no HTTP request may carry",
						p.HeaderPrefix, prefix+n)
				}
			}
		}
	})
}

// fzValidHeaderName reports whether name is an RFC 9110 token, as header
// field names must be.
func fzValidHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func FuzzAPIDirective(f *testing.F) {
	for _, l := range fzAPITails {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, tail string) {
		config := fzAdapt(t, ":80 {\n\tauthgate_api"+tail+"\n}\n")
		if config == nil {
			return
		}
		for _, raw := range fzHandlers(t, config, "authgate_api") {
			if err := caddy.StrictUnmarshalJSON(raw, new(API)); err != nil {
				t.Fatalf("the adapted authgate_api does not decode into API: %v\n%s", err, raw)
			}
		}
	})
}
