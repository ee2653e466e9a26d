package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/authcore"
	redisstore "github.com/authgate/authgate/authcore/store/redis"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// cliResult is what one run of the binary printed and returned.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the authgate binary with stdin as its standard input (not a
// terminal, so a password is read as one line).
func runCLI(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "AUTHGATE_REDIS_URL=")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cliResult{out.String(), errOut.String(), cmd.ProcessState.ExitCode()}
}

func (r cliResult) want(t *testing.T, code int, output string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stdout+r.stderr, output) {
		t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", r.code, code, output, r.stdout, r.stderr)
	}
}

// cliTarget is one of the CLI's two targets, each with a way to read back what
// it holds as the server would.
type cliTarget struct {
	args []string
	user func(t *testing.T, email string) (*authcore.User, error)
}

func cliTargets(t *testing.T) map[string]cliTarget {
	redis := storetest.StartRedis(t)
	opts, err := redisstore.ParseURL("redis://" + redis.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	client := goredis.NewUniversalClient(opts)
	t.Cleanup(func() { client.Close() })
	stored := authcore.NewStoreUsers(redisstore.New(client, "cli:"), nil)
	file := filepath.Join(t.TempDir(), "users.json")
	return map[string]cliTarget{
		"redis": {[]string{"--redis", "redis://" + redis.Addr() + "/0", "--prefix", "cli:"},
			func(t *testing.T, email string) (*authcore.User, error) {
				return stored.UserByEmail(context.Background(), email)
			}},
		"file": {[]string{"--file", file}, func(t *testing.T, email string) (*authcore.User, error) {
			users, err := authcore.LoadUsersFile(file)
			if err != nil {
				t.Fatalf("the users file no longer loads: %v", err)
			}
			return users.UserByEmail(context.Background(), email)
		}},
	}
}

func TestUserCLIManagesUsersInRedisAndInAFile(t *testing.T) {
	for name, target := range cliTargets(t) {
		t.Run(name, func(t *testing.T) {
			cli := func(stdin, command string, args ...string) cliResult {
				return runCLI(t, stdin, append(append([]string{"user", command}, target.args...), args...)...)
			}
			cli(demoPassword+"\n", "add", "--id", "1003", "--email", "Carol@Example.com", "--user-name", "carol",
				"--credentials-type", "user", "--identity", "CONSUMER:2003:Carol", "--identity", "CORPORATE:3001",
				"--text-number", "+35699000003", "--text-country-code", "356", "--mfa", "sms", "--otp", "SMS",
				"--first-name", "Carol", "--password-expires", "2099-01-01T00:00:00Z").want(t, 0, "added user 1003 (Carol@Example.com)")
			u, err := target.user(t, "carol@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if !authcore.VerifyPassword(u.Password, demoPassword) || !strings.HasPrefix(u.Password, "$argon2id$") ||
				u.CredentialsType != "USER" || u.MFA != "SMS" || len(u.Identities) != 2 || u.Identities[0].Name != "Carol" ||
				u.PasswordExpires == nil || u.TextCountryCode != "356" || u.FirstName != "Carol" {
				t.Fatalf("stored %+v", u)
			}

			cli(demoPassword+"\n", "add", "--id", "1004", "--email", "CAROL@example.com", "--credentials-type", "USER",
				"--identity", "CONSUMER:2004").want(t, 1, "user exists")
			cli(demoPassword+"\n", "add", "--id", "1003", "--email", "dave@example.com", "--credentials-type", "USER",
				"--identity", "CONSUMER:2004").want(t, 1, "id 1003")
			cli(demoPassword+"\n", "add", "--id", "1005", "--email", "erin@example.com", "--credentials-type", "USER",
				"--identity", "CONSUMER:2005", "--phone", "99000001").want(t, 1, "invalid user: phone numbers must be E.164")
			cli("short\n", "add", "--id", "1005", "--email", "erin@example.com", "--credentials-type", "USER",
				"--identity", "CONSUMER:2005").want(t, 1, "password refused: shorter than 8")

			list := cli("", "list")
			list.want(t, 0, "1003")
			if lines := strings.Split(strings.TrimSpace(list.stdout), "\n"); len(lines) != 1 ||
				strings.Join(strings.Fields(lines[0]), " ") != "1003 Carol@Example.com carol USER CONSUMER:2003,CORPORATE:3001 otp:SMS active" {
				t.Fatalf("list:\n%s", list.stdout)
			}
			if strings.Contains(list.stdout, "$argon2id$") {
				t.Fatal("list printed a hash")
			}

			cli("", "set", "--id", "1003", "--email", "carol@new.example", "--first-name", "", "--mfa", "none",
				"--identity", "CORPORATE:3001:Acme", "--password-expires", "", "--disabled").want(t, 0, "updated user 1003 (carol@new.example)")
			u, err = target.user(t, "carol@new.example")
			if err != nil {
				t.Fatal(err)
			}
			if u.FirstName != "" || u.MFA != "" || len(u.Identities) != 1 || u.Identities[0].Name != "Acme" ||
				u.PasswordExpires != nil || !u.Disabled || u.UserName != "carol" {
				t.Fatalf("after set: %+v", u)
			}
			if _, err := target.user(t, "carol@example.com"); !errors.Is(err, authcore.ErrUserNotFound) {
				t.Fatalf("the old email still finds a user: %v", err)
			}
			cli("", "set", "--id", "1003", "--disabled=false").want(t, 0, "updated user 1003")
			cli("", "set", "--id", "1003").want(t, 2, "nothing to change")
			cli("", "set", "--id", "1099", "--first-name", "X").want(t, 1, "no user with id 1099")

			cli("New-Pass-456!\n", "passwd", "--id", "1003", "--force-password-change").want(t, 0, "changed the password of user 1003")
			u, _ = target.user(t, "carol@new.example")
			if !authcore.VerifyPassword(u.Password, "New-Pass-456!") || authcore.VerifyPassword(u.Password, demoPassword) ||
				!u.ForcePasswordChange {
				t.Fatalf("after passwd: %+v", u)
			}

			cli("", "enrol", "--id", "1003", "--push", "authy", "--push", "BIOMETRIC").want(t, 0, "otp:SMS,push:AUTHY,push:BIOMETRIC")
			cli("", "enrol", "--id", "1003", "--otp", "SMS", "--push", "AUTHY", "--remove").want(t, 0, "user 1003 factors: push:BIOMETRIC")
			cli("", "enrol", "--id", "1003", "--push", "PIGEON").want(t, 2, "want AUTHY or BIOMETRIC")
			cli("", "list").want(t, 0, "push:BIOMETRIC  active")

			cli("", "del", "--id", "1003").want(t, 0, "deleted user 1003")
			cli("", "del", "--id", "1003").want(t, 1, "no user with id 1003")
			if _, err := target.user(t, "carol@new.example"); !errors.Is(err, authcore.ErrUserNotFound) {
				t.Fatalf("deleted user still found: %v", err)
			}
			if r := cli("", "list"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
				t.Fatalf("list after del: %+v", r)
			}
		})
	}
}

func TestUserCLINeverTakesASecretFromTheCommandLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users.json")
	for _, flag := range []string{"--password", "--password=Demo-Pass-123", "-password", "--password-hash", "--totp-secret=JBSWY3DPEHPK3PXP"} {
		r := runCLI(t, "", "user", "add", "--file", file, "--id", "1003", "--email", "c@example.com", "--credentials-type", "USER",
			"--identity", "CONSUMER:1", flag, "Demo-Pass-123")
		r.want(t, 2, "secrets never go on the command line")
		if strings.Contains(r.stderr, "Demo-Pass-123") || strings.Contains(r.stderr, "JBSWY3DPEHPK3PXP") {
			t.Fatalf("the refusal repeats the secret: %s", r.stderr)
		}
	}
	runCLI(t, "", "user", "passwd", "--file", file, "--id", "1003", "--password", "x").want(t, 2, "--password is refused")
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused command wrote the file: %v", err)
	}
}

func TestUserCLIUsageErrorsExitTwo(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users.json")
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no command":       {nil, "usage: caddy authgate user"},
		"unknown command":  {[]string{"rename", "--file", file}, `unknown command "rename"`},
		"no target":        {[]string{"list"}, "give one target"},
		"two targets":      {[]string{"list", "--file", file, "--redis", "redis://127.0.0.1:1/0"}, "give one target"},
		"no id":            {[]string{"del", "--file", file}, "--id is required"},
		"stray argument":   {[]string{"del", "--file", file, "--id", "1", "now"}, `unexpected argument "now"`},
		"unknown flag":     {[]string{"list", "--file", file, "--all"}, "flag provided but not defined: -all"},
		"bad identity":     {[]string{"add", "--file", file, "--id", "1", "--identity", "CONSUMER"}, "want TYPE:ID[:NAME]"},
		"bad mfa":          {[]string{"set", "--file", file, "--id", "1", "--mfa", "fax"}, "want SMS, EMAIL, TOTP or none"},
		"bad expiry":       {[]string{"set", "--file", file, "--id", "1", "--password-expires", "tomorrow"}, "want an RFC 3339 time"},
		"bad type":         {[]string{"add", "--file", file, "--id", "1", "--credentials-type", "ADMIN"}, "want ROOT or USER"},
		"add without mail": {[]string{"add", "--file", file, "--id", "1", "--credentials-type", "USER"}, "--email is required"},
		"enrol nothing":    {[]string{"enrol", "--file", file, "--id", "1"}, "give a factor"},
		"users-file+file":  {[]string{"add", "--file", file, "--users-file", file, "--id", "1"}, "--users-file goes with --redis"},
		"passwd with set":  {[]string{"passwd", "--file", file, "--id", "1", "--email", "a@b.c"}, "flag provided but not defined: -email"},
	} {
		t.Run(name, func(t *testing.T) {
			runCLI(t, "", append([]string{"user"}, tc.args...)...).want(t, 2, tc.want)
		})
	}
	runCLI(t, "", "user", "help").want(t, 0, "exit status: 0 done, 1 failed, 2 usage error")
}

func TestUserCLIRefusesAUserTheServerCouldNotServe(t *testing.T) {
	for name, target := range cliTargets(t) {
		t.Run(name, func(t *testing.T) {
			cli := func(stdin, command string, args ...string) cliResult {
				return runCLI(t, stdin, append(append([]string{"user", command}, target.args...), args...)...)
			}
			add := []string{"--id", "1003", "--email", "carol@example.com", "--credentials-type", "USER", "--identity", "CONSUMER:2003"}
			cli(demoPassword+"\n", "add", append(add, "--mfa", "TOTP")...).want(t, 1, "user 1003 could not be served: mfa TOTP needs a totpSecret")
			cli(demoPassword+"\n", "add", append(add, "--mfa", "SMS")...).
				want(t, 1, "user 1003 could not be served: mfa SMS needs a textNumber (or phone) to send codes to")
			cli(demoPassword+"\n", "add", add...).want(t, 0, "added user 1003")
			cli("", "set", "--id", "1003", "--mfa", "SMS").want(t, 1, "user 1003 could not be served: mfa SMS needs a textNumber")
			cli("", "set", "--id", "1003", "--mfa", "SMS", "--text-number", "+35699000003").want(t, 0, "updated user 1003")
			cli("", "set", "--id", "1003", "--text-number", "").want(t, 1, "user 1003 could not be served: mfa SMS needs a textNumber")
			if u, err := target.user(t, "carol@example.com"); err != nil || u.TextNumber != "+35699000003" {
				t.Fatalf("a refused change was written: %+v, %v", u, err)
			}
		})
	}
}

func TestUserCLINamesAnUnknownFieldOfAUsersFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users.json")
	_ = os.WriteFile(file, []byte(`{"users": [{"id": "1001", "credentialsType": "ROOT", "email": "alice@example.com",
		"pasword": "$2a$10$sTiPAu0YBTUXvwzTQGjgvOPIBvHHsh/Olryw4fpXjZmEauQhjVxS2", "identities": [{"type": "CONSUMER", "id": "2001"}]}]}`), 0o600)
	runCLI(t, "", "user", "list", "--file", file).want(t, 1, `user 0 ("alice@example.com"): unknown field "pasword"`)
	runCLI(t, "", "user", "set", "--file", file, "--id", "1001", "--first-name", "Al").
		want(t, 1, `user 0 ("alice@example.com"): unknown field "pasword"`)
}

func TestUserCLIRefusesAUserOfTheUsersFile(t *testing.T) {
	redis := storetest.StartRedis(t)
	users := usersFile(t) // alice 1001, bob 1002
	target := []string{"--redis", "redis://" + redis.Addr() + "/0", "--users-file", users}
	add := func(id, email string) cliResult {
		return runCLI(t, demoPassword+"\n", append([]string{"user", "add", "--id", id, "--email", email,
			"--credentials-type", "USER", "--identity", "CONSUMER:2009"}, target...)...)
	}
	add("1009", "ALICE@example.com").want(t, 1, `the users file has a user with email "ALICE@example.com"`)
	add("1001", "new@example.com").want(t, 1, "the users file has a user with id 1001")
	add("1009", "new@example.com").want(t, 0, "added user 1009")
	runCLI(t, "", append([]string{"user", "set", "--id", "1009", "--email", "bob@example.com"}, target...)...).
		want(t, 1, `the users file has a user with email "bob@example.com"`)
}

func TestUserCLIFailsClearlyWhenRedisIsDown(t *testing.T) {
	r := runCLI(t, "", "user", "list", "--redis", fmt.Sprintf("redis://:s3cret-pw@127.0.0.1:%d/0", freePort(t)))
	r.want(t, 1, "reaching redis")
	if strings.Contains(r.stderr, "s3cret-pw") {
		t.Fatalf("the error shows the Redis password: %s", r.stderr)
	}
}

func TestUsersStoreConfigIsValidated(t *testing.T) {
	for name, tc := range map[string]struct {
		global string
		code   int
		want   string
	}{
		"users store on memory": {"users store", 0, "users store on the memory store: it starts empty"},
		"unknown users source":  {"users file", 1, "users: unknown source"},
		"users store on redis":  {"store redis redis://127.0.0.1:6379/0\n\t\tusers store", 0, "Valid configuration"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "Caddyfile")
			cfg := "{\n\tadmin off\n\tauthgate {\n\t\t" + tc.global + "\n\t}\n}\n:0 {\n\tauthgate_protect\n\trespond ok\n}\n"
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			runCLI(t, "", "validate", "--config", path, "--adapter", "caddyfile").want(t, tc.code, tc.want)
		})
	}
}
