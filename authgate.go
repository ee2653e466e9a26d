// Package authgate is the import path that plugs authgate into a custom
// Caddy: `xcaddy build --with github.com/authgate/authgate` (see
// xcaddy.json and cmd/xcaddy-build). The modules themselves live in
// caddymodule; the core, free of Caddy, in authcore.
package authgate

import (
	// Registers the authgate app, its handlers, its auth provider and the
	// `caddy authgate ...` commands.
	_ "github.com/authgate/authgate/caddymodule"
)
