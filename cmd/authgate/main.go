// Command authgate is Caddy with its standard modules and authgate's,
// plus authgate's own subcommands:
//
//	authgate run --config Caddyfile.example
//	authgate hash-password < password.txt
//	authgate user add|set|passwd|list|del|enrol --redis URL | --file PATH ...
package main

import (
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/authgate/authgate/caddymodule"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() {
	// Caddy's own hash-password writes base64-wrapped bcrypt for
	// basic_auth; authgate's users_file wants an argon2id PHC string, so
	// authgate's command takes that name in this binary.
	if len(os.Args) > 1 && os.Args[1] == "hash-password" {
		os.Exit(hashPassword(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "user" {
		os.Exit(userCommand(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	caddycmd.Main()
}
