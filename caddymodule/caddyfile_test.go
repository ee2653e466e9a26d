package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the adapt golden files")

// TestCaddyfileAdaptsToGoldenJSON adapts every testdata/adapt/*.caddyfile
// and compares the JSON with the .json file beside it, the way Caddy's own
// caddytest adapt tests do. Run with -update to accept new output.
func TestCaddyfileAdaptsToGoldenJSON(t *testing.T) {
	files, _ := filepath.Glob("testdata/adapt/*.caddyfile")
	if len(files) == 0 {
		t.Fatal("no adapt test files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			got := adapt(t, f)
			golden := strings.TrimSuffix(f, ".caddyfile") + ".json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("adapted JSON differs from %s:\n%s", golden, got)
			}
			assertRoundTrips(t, got)
		})
	}
}

func adapt(t *testing.T, path string) []byte {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": path})
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("adapt warning: %s", w.Message)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out, "", "\t"); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	return pretty.Bytes()
}

// assertRoundTrips decodes our modules' JSON into their config structs and
// encodes it again: nothing may be lost or changed.
func assertRoundTrips(t *testing.T, config []byte) {
	t.Helper()
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(config, &cfg); err != nil {
		t.Fatal(err)
	}
	if raw, ok := cfg.Apps["authgate"]; ok {
		roundTrip(t, raw, new(App))
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "authgate_protect" {
				raw, _ := json.Marshal(v)
				roundTrip(t, raw, new(Guard), "handler")
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
	var all any
	_ = json.Unmarshal(config, &all)
	walk(all)
}

func roundTrip(t *testing.T, raw []byte, into any, ignore ...string) {
	t.Helper()
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	again, _ := json.Marshal(into)
	var a, b map[string]any
	_ = json.Unmarshal(raw, &a)
	_ = json.Unmarshal(again, &b)
	for _, k := range ignore {
		delete(a, k)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("JSON does not round-trip:\n in: %s\nout: %s", raw, again)
	}
}

func TestCaddyfileErrorsNameTheDirective(t *testing.T) {
	cases := map[string]struct{ caddyfile, want string }{
		"unknown global directive":    {"{\n authgate {\n  colour blue\n }\n}\n:80 {\n respond ok\n}", `authgate: unknown subdirective "colour"`},
		"unknown store":               {"{\n authgate {\n  store mongo\n }\n}\n:80 {\n respond ok\n}", `unknown store "mongo"`},
		"redis without url":           {"{\n authgate {\n  store redis\n }\n}\n:80 {\n respond ok\n}", "store redis: missing URL"},
		"bad session_idle":            {"{\n authgate {\n  session_idle soon\n }\n}\n:80 {\n respond ok\n}", `session_idle: bad duration "soon"`},
		"extra argument":              {"{\n authgate {\n  issuer a b\n }\n}\n:80 {\n respond ok\n}", "issuer: too many arguments"},
		"bad token kind":              {":80 {\n authgate_protect {\n  token bearer\n }\n respond ok\n}", `token: unknown kind "bearer"`},
		"bad identity_type":           {":80 {\n authgate_protect {\n  identity_type ADMIN\n }\n respond ok\n}", `identity_type: "ADMIN"`},
		"bad stepup max_age":          {":80 {\n authgate_protect {\n  stepup never\n }\n respond ok\n}", `stepup: bad max_age "never"`},
		"stepup unknown method":       {":80 {\n authgate_protect {\n  stepup 5m sms\n }\n respond ok\n}", `stepup: unknown method "sms": want otp, push or passkey`},
		"stepup max_age after method": {":80 {\n authgate_protect {\n  stepup passkey 5m\n }\n respond ok\n}", `stepup: unknown method "5m"`},
		"stepup method twice":         {":80 {\n authgate_verify {\n  stepup passkey PASSKEY\n }\n}", `stepup: method "passkey" named twice`},
		"passkeys without origin":     {"{\n authgate {\n  passkeys bank.example\n }\n}\n:80 {\n respond ok\n}", "passkeys: want <rp_id> <origin>..."},
		"bad header_prefix":           {":80 {\n authgate_protect {\n  header_prefix X:Auth-\n }\n respond ok\n}", `header_prefix: "X:Auth-" is not a valid header name prefix`},
		"prefix of Authorization":     {":80 {\n authgate_protect {\n  header_prefix Auth\n }\n respond ok\n}", `header_prefix: "Auth" would also strip the standard header Authorization`},
		"prefix X-":                   {":80 {\n authgate_protect {\n  header_prefix X-\n }\n respond ok\n}", `header_prefix: "X-" would also strip the standard header X-Forwarded-For`},
		"bad raw_paths":               {":80 {\n authgate_protect {\n  raw_paths sometimes\n }\n respond ok\n}", `authgate_protect: raw_paths: "sometimes": want allow or refuse`},
		"raw_paths without value":     {":80 {\n authgate_protect {\n  raw_paths\n }\n respond ok\n}", "raw_paths: missing value"},
		"raw_paths two values":        {":80 {\n authgate_protect {\n  raw_paths allow refuse\n }\n respond ok\n}", "raw_paths: too many arguments"},
		"unknown protect option":      {":80 {\n authgate_protect {\n  realm x\n }\n respond ok\n}", `unknown subdirective "realm"`},
		"unknown sender":              {"{\n authgate {\n  otp_sender pigeon\n }\n}\n:80 {\n respond ok\n}", `otp_sender: unknown sender "pigeon"`},
		"webhook without secret":      {"{\n authgate {\n  otp_sender webhook https://x.example\n }\n}\n:80 {\n respond ok\n}", "otp_sender webhook: wrong number of arguments"},
		"webhook bad url":             {"{\n authgate {\n  push_sender webhook ftp://x s\n }\n}\n:80 {\n respond ok\n}", "push_sender webhook: bad URL"},
		"push by twilio":              {"{\n authgate {\n  push_sender twilio a b c\n }\n}\n:80 {\n respond ok\n}", `push_sender: unknown sender "twilio"`},
		"lockout without duration":    {"{\n authgate {\n  lockout 5\n }\n}\n:80 {\n respond ok\n}", "lockout: want <attempts> <duration>"},
		"rate_limit unknown action":   {"{\n authgate {\n  rate_limit logout 5 1m\n }\n}\n:80 {\n respond ok\n}", `rate_limit: unknown action "logout"`},
		"rate_limit bad window":       {"{\n authgate {\n  rate_limit login 5 soon\n }\n}\n:80 {\n respond ok\n}", `rate_limit login: bad window "soon"`},
		"api with options":            {":80 {\n authgate_api {\n  store memory\n }\n}", `authgate_api: unknown subdirective "store"`},
		"manage with options":         {":80 {\n authgate_manage {\n  service_client x\n }\n}", `authgate_manage: unknown subdirective "service_client"`},
		"manage with argument":        {":80 {\n authgate_manage v2\n}", "wrong argument count"},
		"service_client no scope":     {"{\n authgate {\n  service_client crm " + bcryptHash + "\n }\n}\n:80 {\n respond ok\n}", "service_client: want <name> <hash> <scope>..."},
		"service_client bad scope":    {"{\n authgate {\n  service_client crm " + bcryptHash + " manage.everything\n }\n}\n:80 {\n respond ok\n}", `service_client crm: unknown scope "manage.everything"`},
		"service_client plain pass":   {"{\n authgate {\n  service_client crm hunter2 manage.user.read\n }\n}\n:80 {\n respond ok\n}", "service_client crm: hash: not a bcrypt"},
		"service_client colon name":   {"{\n authgate {\n  service_client a:b " + bcryptHash + " manage.user.read\n }\n}\n:80 {\n respond ok\n}", `service_client: name "a:b"`},
		"service_client duplicate":    {"{\n authgate {\n  service_client crm " + bcryptHash + " manage.user.read\n  service_client crm " + bcryptHash + " manage.otp.send\n }\n}\n:80 {\n respond ok\n}", `service_client: duplicate name "crm"`},
		"email_sender twilio":         {"{\n authgate {\n  email_sender twilio a b c\n }\n}\n:80 {\n respond ok\n}", `email_sender: unknown sender "twilio"`},
		"email_sender smtp 2 args":    {"{\n authgate {\n  email_sender smtp mail.example.com:587\n }\n}\n:80 {\n respond ok\n}", "email_sender smtp: wrong number of arguments"},
		"email_sender smtp no pass":   {"{\n authgate {\n  email_sender smtp mail.example.com:587 a@example.com user\n }\n}\n:80 {\n respond ok\n}", "email_sender smtp: wrong number of arguments"},
		"email_sender smtp no port":   {"{\n authgate {\n  email_sender smtp mail.example.com a@example.com\n }\n}\n:80 {\n respond ok\n}", `email_sender smtp: bad address "mail.example.com"`},
		"email_sender smtp bad from":  {"{\n authgate {\n  email_sender smtp mail.example.com:587 nobody\n }\n}\n:80 {\n respond ok\n}", `email_sender smtp: bad from address "nobody"`},
		"two store lines":             {"{\n authgate {\n  store memory\n  store redis redis://r:6379\n }\n}\n:80 {\n respond ok\n}", "authgate: store is given twice"},
		"two signing keys":            {"{\n authgate {\n  signing_key a\n  signing_key b\n }\n}\n:80 {\n respond ok\n}", "authgate: signing_key is given twice"},
		"two sandbox lines":           {"{\n authgate {\n  sandbox\n  sandbox\n }\n}\n:80 {\n respond ok\n}", "authgate: sandbox is given twice"},
		"two otp senders":             {"{\n authgate {\n  otp_sender sandbox\n  otp_sender sandbox\n }\n}\n:80 {\n respond ok\n}", "authgate: otp_sender is given twice"},
		"rate_limit action twice":     {"{\n authgate {\n  rate_limit login 5 1m\n  rate_limit login 9 1m\n }\n}\n:80 {\n respond ok\n}", "rate_limit login is given twice"},
		"two token lines":             {":80 {\n authgate_protect {\n  token any\n  token auth\n }\n respond ok\n}", "authgate_protect: token is given twice"},
		"portal without path":         {":80 {\n authgate_protect {\n  portal\n }\n respond ok\n}", "portal: missing value"},
		"portal at the root":          {":80 {\n authgate_protect {\n  portal /\n }\n respond ok\n}", "portal: want the path authgate_portal is mounted at"},
		"portal relative":             {":80 {\n authgate_protect {\n  portal auth\n }\n respond ok\n}", `portal: "auth": want the path`},
		"portal with options":         {":80 {\n authgate_portal {\n  cookie_name x\n }\n}", `authgate_portal: unknown subdirective "cookie_name"`},
		"portal with argument":        {":80 {\n authgate_portal login\n}", "wrong argument count"},
		"bad cookie_name":             {"{\n authgate {\n  cookie_name a;b\n }\n}\n:80 {\n respond ok\n}", `cookie_name: "a;b"`},
		"otp_sender smtp":             {"{\n authgate {\n  otp_sender smtp mail.example.com:587 a@example.com\n }\n}\n:80 {\n respond ok\n}", `otp_sender: unknown sender "smtp"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(tc.caddyfile), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestCaddyfileErrorsPointAtTheBadLine checks the position of values that
// are checked once read: the error names the line that holds the value,
// not the line where the block ends.
func TestCaddyfileErrorsPointAtTheBadLine(t *testing.T) {
	cases := map[string]struct {
		caddyfile, want string
	}{
		"token bogus":              {":80 {\n\tauthgate_protect {\n\t\ttoken bogus\n\t}\n\trespond ok\n}\n", `token: unknown kind "bogus": want access, auth or any, at Caddyfile:3`},
		"identity_type PERSON":     {":80 {\n\tauthgate_protect {\n\t\tstepup\n\t\tidentity_type PERSON\n\t\ttoken any\n\t}\n\trespond ok\n}\n", `identity_type: "PERSON": want CONSUMER or CORPORATE, at Caddyfile:4`},
		"credentials_type ADMIN":   {":80 {\n\tauthgate_protect {\n\t\tcredentials_type ADMIN\n\t}\n\trespond ok\n}\n", `credentials_type: "ADMIN": want ROOT or USER, at Caddyfile:3`},
		"second store line":        {"{\n\tauthgate {\n\t\tstore memory\n\t\tissuer x\n\t\tstore memory\n\t}\n}\n:80 {\n\trespond ok\n}\n", "store is given twice: it takes one line, and a second would silently replace the first, at Caddyfile:5"},
		"unknown global directive": {"{\n\tauthgate {\n\t\tsandbox\n\t\tcolour blue\n\t}\n}\n:80 {\n\trespond ok\n}\n", `unknown subdirective "colour", at Caddyfile:4`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(tc.caddyfile), map[string]any{"filename": "Caddyfile"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// bcryptHash is a valid bcrypt hash for service_client cases.
const bcryptHash = "$2a$10$sTiPAu0YBTUXvwzTQGjgvOPIBvHHsh/Olryw4fpXjZmEauQhjVxS2"

// TestAppValidateChecksServiceClientsOnceExpanded covers JSON configs and
// placeholders, which the Caddyfile parser cannot check.
func TestAppValidateChecksServiceClientsOnceExpanded(t *testing.T) {
	t.Setenv("AUTHGATE_TEST_CLIENT_HASH", bcryptHash)
	cases := map[string]struct {
		app  App
		want string
	}{
		"placeholder hash":     {App{ServiceClients: []ServiceClientConfig{{Name: "crm", Hash: "{env.AUTHGATE_TEST_CLIENT_HASH}", Scopes: []string{"manage.user.read"}}}}, ""},
		"unset placeholder":    {App{ServiceClients: []ServiceClientConfig{{Name: "crm", Hash: "{env.AUTHGATE_TEST_UNSET}", Scopes: []string{"manage.user.read"}}}}, "service_client crm: hash: the value is empty: environment variable AUTHGATE_TEST_UNSET is not set"},
		"bad placeholder":      {App{ServiceClients: []ServiceClientConfig{{Name: "crm", Hash: "x{env.AUTHGATE_TEST_UNSET}", Scopes: []string{"manage.user.read"}}}}, `service_client: client "crm": not a bcrypt`},
		"unknown scope":        {App{ServiceClients: []ServiceClientConfig{{Name: "crm", Hash: bcryptHash, Scopes: []string{"admin"}}}}, `service_client: client "crm": unknown scope "admin"`},
		"no scopes":            {App{ServiceClients: []ServiceClientConfig{{Name: "crm", Hash: bcryptHash}}}, `service_client: client "crm": no scopes`},
		"duplicate":            {App{ServiceClients: []ServiceClientConfig{{Name: "crm", Hash: bcryptHash, Scopes: []string{"manage.user.read"}}, {Name: "crm", Hash: bcryptHash, Scopes: []string{"manage.otp.send"}}}}, `service_client: client "crm": duplicate name`},
		"smtp sender":          {App{EmailSender: &SenderConfig{Type: "smtp", Addr: "mail.example.com:587", From: "a@example.com", Username: "u"}}, "email_sender smtp: needs both <user> and <pass>"},
		"passkeys":             {App{Passkeys: &PasskeysConfig{RPID: "bank.example", Origins: []string{"https://bank.example", "https://app.bank.example:8443"}}}, ""},
		"passkeys no rp_id":    {App{Passkeys: &PasskeysConfig{Origins: []string{"https://bank.example"}}}, `passkeys: rp_id "": want a domain`},
		"passkeys rp_id a URL": {App{Passkeys: &PasskeysConfig{RPID: "https://bank.example", Origins: []string{"https://bank.example"}}}, `passkeys: rp_id "https://bank.example"`},
		"passkeys no origin":   {App{Passkeys: &PasskeysConfig{RPID: "bank.example"}}, "passkeys: want at least one origin"},
		"passkeys bare host":   {App{Passkeys: &PasskeysConfig{RPID: "bank.example", Origins: []string{"bank.example"}}}, `passkeys: origin "bank.example": want a scheme and host`},
		"passkeys other site":  {App{Passkeys: &PasskeysConfig{RPID: "bank.example", Origins: []string{"https://evilbank.example"}}}, `passkeys: origin "https://evilbank.example" is not on the rp_id bank.example`},
		"twilio for email":     {App{EmailSender: &SenderConfig{Type: "twilio", AccountSID: "a", AuthToken: "b", From: "c"}}, `email_sender: unknown sender "twilio"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.app.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestEmptyPlaceholderNamesTheVariable: a required value that expands to
// nothing names the environment variables it read, and never shows a value.
func TestEmptyPlaceholderNamesTheVariable(t *testing.T) {
	t.Setenv("AUTHGATE_TEST_EMPTY", " ")
	t.Setenv("AUTHGATE_TEST_SET", "s3cret-value")
	repl := caddy.NewReplacer()
	cases := map[string]struct{ value, want string }{
		"unset":         {"{env.AUTHGATE_TEST_UNSET_KEY}", "signing_key: the value is empty: environment variable AUTHGATE_TEST_UNSET_KEY is not set"},
		"empty":         {"{env.AUTHGATE_TEST_EMPTY}", "signing_key: the value is empty: environment variable AUTHGATE_TEST_EMPTY is empty"},
		"two, one set":  {"{env.AUTHGATE_TEST_SET}{env.AUTHGATE_TEST_UNSET_KEY}", ""},
		"literal empty": {"", "signing_key: the value is empty"},
		"set":           {"{env.AUTHGATE_TEST_SET}", ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := expandRequired(repl, "signing_key", tc.value)
			if tc.want == "" {
				if err != nil || !strings.Contains(got, "s3cret-value") {
					t.Fatalf("got %q, %v", got, err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestStepUpMethodsInJSON checks what the Caddyfile parser cannot catch:
// JSON written by hand.
func TestStepUpMethodsInJSON(t *testing.T) {
	cases := map[string]struct {
		config GuardConfig
		want   string
	}{
		"passkey":            {GuardConfig{StepUp: true, StepUpMethods: []string{"passkey"}}, ""},
		"two methods":        {GuardConfig{StepUp: true, StepUpMethods: []string{"otp", "push"}}, ""},
		"methods, no stepup": {GuardConfig{StepUpMethods: []string{"passkey"}}, "stepup_methods is set but stepup is not"},
		"unknown method":     {GuardConfig{StepUp: true, StepUpMethods: []string{"sms"}}, `stepup: unknown method "sms"`},
		"upper case":         {GuardConfig{StepUp: true, StepUpMethods: []string{"PASSKEY"}}, `stepup: unknown method "PASSKEY"`},
		"named twice":        {GuardConfig{StepUp: true, StepUpMethods: []string{"otp", "otp"}}, `stepup: method "otp" named twice`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := (&Guard{GuardConfig: tc.config}).Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}
