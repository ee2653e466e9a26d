package caddymodule

// authgate's command line registers itself as Caddy commands (`caddy
// authgate user ...`, `caddy authgate hash-password`); importing it here
// gives every Caddy built with these modules, xcaddy's included, the CLI.
import _ "github.com/authgate/authgate/cli"
