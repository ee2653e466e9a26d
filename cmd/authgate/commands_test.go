package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIIsRegisteredAsCaddyCommands: the CLI lives in Caddy's command
// tree (caddy authgate ...), so any build with the module has it; help
// lists each command with its own text; Caddy's own hash-password is left
// as Caddy ships it.
func TestCLIIsRegisteredAsCaddyCommands(t *testing.T) {
	help := runCLI(t, "", "help")
	help.want(t, 0, "authgate       Manages authgate's users and sessions and hashes passwords (user, session, hash-password)")
	help.want(t, 0, "session        Lists and ends a user's sessions on a gateway's Redis")
	help.want(t, 0, "user           Manages the users of users store (Redis) or of a users file")
	help.want(t, 0, "hash-password  Hashes a password and writes base64")

	for _, args := range [][]string{{"help", "user"}, {"authgate", "help", "user"}, {"help", "authgate", "user"}, {"user", "--help"}} {
		runCLI(t, "", args...).want(t, 0, "exit status: 0 done, 1 failed, 2 usage error")
	}
	runCLI(t, "", "help", "authgate").want(t, 0, "hash-password  reads a password and prints its argon2id hash")
	runCLI(t, "", "authgate", "help", "hash-password").want(t, 0, "prints its argon2id hash (m=19456 KiB, t=2, p=1)")
	runCLI(t, "", "help", "hash-password").want(t, 0, "--algorithm")
	runCLI(t, "", "authgate", "bogus").want(t, 1, `unknown command "bogus"`)

	file := filepath.Join(t.TempDir(), "users.json")
	runCLI(t, demoPassword+"\n", "authgate", "user", "add", "--file", file, "--id", "1003", "--email", "carol@example.com",
		"--credentials-type", "USER", "--identity", "CONSUMER:2003").want(t, 0, "added user 1003")
	runCLI(t, "", "user", "list", "--file", file).want(t, 0, "carol@example.com")
	runCLI(t, "", "authgate", "user", "del", "--file", file).want(t, 2, "--id is required")

	// Caddy's own: bcrypt by default, for basic_auth.
	caddys := runCLI(t, "S3cret-Pass!\n", "hash-password")
	caddys.want(t, 0, "$2a$")
	if strings.Contains(caddys.stdout, "argon2id") {
		t.Fatalf("hash-password is not Caddy's: %s", caddys.stdout)
	}
}
