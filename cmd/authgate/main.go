// Command authgate is Caddy with its standard modules and authgate's,
// whose commands it carries like any Caddy built with them:
//
//	authgate run --config Caddyfile.example
//	authgate authgate hash-password < password.txt
//	authgate authgate user add|set|passwd|list|del|enrol|unlock --redis URL | --file PATH ...
//	authgate authgate session list|revoke <user> [<id> | --all] --redis URL
//
// plus `authgate user ...` and `authgate session ...` as short forms. `authgate
// hash-password` is Caddy's own, as Caddy ships it.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/authgate/authgate/cli"

	_ "github.com/authgate/authgate/caddymodule"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func init() {
	cli.Register(cli.UserCommand())
	cli.Register(cli.SessionCommand())
}

func main() {
	caddycmd.Main()
}
