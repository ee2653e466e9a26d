package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/authcore"
)

func TestValidateRejectsBadConfigNamingWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	badUsers := filepath.Join(dir, "bad-users.json")
	_ = os.WriteFile(badUsers, []byte(`{"users":[{"id":"x1","credentialsType":"ROOT","email":"a@b.c","password":"plain","identities":[{"type":"CONSUMER","id":"1"}]}]}`), 0o600)
	badPEM := filepath.Join(dir, "key.pem")
	_ = os.WriteFile(badPEM, []byte("not a key"), 0o600)
	cases := map[string]struct{ global, want string }{
		"short HS256 key":      {"signing_key c2hvcnQ=", "signing_key: HS256 signing key is 5 bytes, needs at least 32"},
		"key not base64":       {"signing_key !!!", "signing_key: not valid base64"},
		"missing users file":   {"users_file " + filepath.Join(dir, "nope.json"), "users_file: reading users file"},
		"relative users file":  {"users_file demo/nope.json", "users_file: reading users file: open demo/nope.json: no such file or directory (a relative path is read from the directory Caddy runs in, "},
		"invalid users file":   {"users_file " + badUsers, "id must be digits"},
		"bad PEM key":          {"signing_key_file " + badPEM, "signing_key_file " + badPEM + ": no PEM block found"},
		"bad redis URL":        {"store redis http://localhost", "store redis"},
		"idle longer than max": {"session_idle 2h\n\t\tsession_max 1h", "session_idle (2h0m0s) is longer than session_max (1h0m0s)"},
		"unset env key":        {"signing_key {env.AG_TEST_UNSET_KEY}", "signing_key: the value is empty: environment variable AG_TEST_UNSET_KEY is not set"},
		"unset env redis url":  {"store redis {env.AG_TEST_UNSET_URL}", "store redis: the value is empty: environment variable AG_TEST_UNSET_URL is not set"},
		"unset env api key":    {"api_key {env.AG_TEST_UNSET_API}", "api_key: the value is empty: environment variable AG_TEST_UNSET_API is not set"},
		"unset env secret":     {"otp_sender webhook https://sms.example/hook {env.AG_TEST_UNSET_SECRET}", "otp_sender webhook: the value is empty: environment variable AG_TEST_UNSET_SECRET is not set"},
		"two store lines":      {"store memory\n\t\tstore memory", "authgate: store is given twice"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "Caddyfile")
			cfg := "{\n\tadmin off\n\tauthgate {\n\t\t" + tc.global + "\n\t}\n}\n:0 {\n\tauthgate_protect\n\trespond ok\n}\n"
			_ = os.WriteFile(path, []byte(cfg), 0o600)
			out, err := exec.Command(binary, "validate", "--config", path, "--adapter", "caddyfile").CombinedOutput()
			if err == nil {
				t.Fatalf("validate accepted it:\n%s", out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("output does not name the problem (%q):\n%s", tc.want, out)
			}
		})
	}
}

func TestValidateAcceptsTheExample(t *testing.T) {
	cmd := exec.Command(binary, "validate", "--config", "Caddyfile.example", "--adapter", "caddyfile")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("Caddyfile.example does not validate: %v\n%s", err, out)
	}
}

func TestListModulesShowsAuthgateModules(t *testing.T) {
	out, err := exec.Command(binary, "list-modules").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"authgate", "http.handlers.authgate_api", "http.handlers.authgate_protect",
		"http.handlers.authgate_portal", "http.authentication.providers.authgate"} {
		found := false
		for _, line := range strings.Split(string(out), "\n") {
			if strings.TrimSpace(line) == id {
				found = true
			}
		}
		if !found {
			t.Errorf("list-modules does not show %s", id)
		}
	}
}

func TestHashPasswordReadsStdinAndPrintsArgon2id(t *testing.T) {
	cmd := exec.Command(binary, "authgate", "hash-password")
	cmd.Stdin = strings.NewReader("S3cret-Pass!\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.TrimSpace(string(out))
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", hash)
	}
	if !authcore.VerifyPassword(hash, "S3cret-Pass!") || authcore.VerifyPassword(hash, "S3cret-Pass") {
		t.Fatal("the printed hash does not verify the password")
	}
	for _, args := range [][]string{{"S3cret-Pass!"}, {"--plaintext", "S3cret-Pass!"}, {"--plaintext=S3cret-Pass!"}, {"-p", "S3cret-Pass!"}} {
		r := runCLI(t, "", append([]string{"authgate", "hash-password"}, args...)...)
		r.want(t, 2, "is refused: a password on the command line is seen by other users (ps) and kept in shell history")
		if strings.Contains(r.stdout+r.stderr, "S3cret-Pass!") {
			t.Fatalf("the refusal repeats the password: %s", r.stderr)
		}
	}
}

// A route that counts only a passkey step-up cannot be served without the
// relying party: validate says what is missing.
func TestValidateRefusesAPasskeyRouteWithoutPasskeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Caddyfile")
	cfg := "{\n\tadmin off\n\tauthgate {\n\t\tstore memory\n\t}\n}\n:0 {\n\tauthgate_protect {\n\t\tstepup 5m passkey\n\t}\n\trespond ok\n}\n"
	_ = os.WriteFile(path, []byte(cfg), 0o600)
	out, err := exec.Command(binary, "validate", "--config", path, "--adapter", "caddyfile").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "stepup: method passkey needs the passkeys global option (passkeys <rp_id> <origin>...)") {
		t.Fatalf("validate (%v) does not name the missing passkeys option:\n%s", err, out)
	}
}
