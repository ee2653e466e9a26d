package caddymodule

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/sender"
)

// SenderConfig configures how codes or pushes are delivered. Secret
// fields expand placeholders such as {env.TWILIO_TOKEN}.
type SenderConfig struct {
	// Type is "sandbox" (nothing sent, every code 123456), "webhook",
	// "twilio" or (email_sender) "smtp".
	Type string `json:"type"`
	// URL is the webhook's address.
	URL string `json:"url,omitempty"`
	// Secret signs webhook bodies (header signature: base64 HMAC-SHA256).
	// For push_sender it also checks the provider's resolve callbacks.
	Secret string `json:"secret,omitempty"`
	// AccountSID and AuthToken are Twilio's.
	AccountSID string `json:"account_sid,omitempty"`
	AuthToken  string `json:"auth_token,omitempty"`
	// From is Twilio's sending number, or the SMTP sender address
	// ("Example <no-reply@example.com>").
	From string `json:"from,omitempty"`
	// Addr is the SMTP relay's host:port (STARTTLS when offered).
	Addr string `json:"addr,omitempty"`
	// Username and Password, when set, authenticate to the SMTP relay
	// (AUTH PLAIN, only over TLS or to localhost).
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

func (c *SenderConfig) validate(directive string, types ...string) error {
	allowed := false
	for _, t := range types {
		allowed = allowed || c.Type == t
	}
	if !allowed {
		return fmt.Errorf("%s: unknown sender %q: want one of %v", directive, c.Type, types)
	}
	switch c.Type {
	case "webhook":
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s webhook: bad URL: want http(s)://host/path", directive)
		}
		if c.Secret == "" {
			return fmt.Errorf("%s webhook: missing hmac secret", directive)
		}
	case "twilio":
		if c.AccountSID == "" || c.AuthToken == "" || c.From == "" {
			return fmt.Errorf("%s twilio: needs <account> <token> <from>", directive)
		}
	case "smtp":
		// Values with placeholders are checked once expanded, when sending.
		if _, port, err := net.SplitHostPort(c.Addr); !hasPlaceholder(c.Addr) && (err != nil || port == "") {
			return fmt.Errorf("%s smtp: bad address %q: want host:port", directive, c.Addr)
		}
		if _, err := mail.ParseAddress(c.From); !hasPlaceholder(c.From) && err != nil {
			return fmt.Errorf("%s smtp: bad from address %q", directive, c.From)
		}
		if (c.Username == "") != (c.Password == "") {
			return fmt.Errorf("%s smtp: needs both <user> and <pass>, or neither", directive)
		}
	}
	return nil
}

func hasPlaceholder(s string) bool { return strings.Contains(s, "{") }

// build returns the sender and the secret it signs with. A required
// value whose placeholders expand to nothing is an error naming them.
func (c *SenderConfig) build(directive string, repl *caddy.Replacer) (authcore.Sender, []byte, error) {
	var fields []*string
	switch c.Type {
	case "webhook":
		fields = []*string{&c.URL, &c.Secret}
	case "twilio":
		fields = []*string{&c.AccountSID, &c.AuthToken, &c.From}
	case "smtp":
		fields = []*string{&c.Addr, &c.From}
	}
	values := make([]string, len(fields))
	for i, f := range fields {
		v, err := expandRequired(repl, directive+" "+c.Type, *f)
		if err != nil {
			return nil, nil, err
		}
		values[i] = v
	}
	switch c.Type {
	case "webhook":
		return sender.NewWebhook(values[0], []byte(values[1])), []byte(values[1]), nil
	case "twilio":
		return sender.NewTwilio(values[0], values[1], values[2]), nil, nil
	case "smtp":
		return sender.NewSMTP(values[0], values[1], repl.ReplaceKnown(c.Username, ""), repl.ReplaceKnown(c.Password, "")), nil, nil
	}
	return sender.Sandbox{}, nil, nil
}

// parseSender reads `<directive> sandbox | webhook <url> <secret> |
// twilio <account> <token> <from> | smtp <host:port> <from> [<user> <pass>]`.
func parseSender(d *caddyfile.Dispenser, types ...string) (*SenderConfig, error) {
	dir := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.Errf("%s: missing sender type", dir)
	}
	c := &SenderConfig{Type: args[0]}
	want := map[string][]int{"sandbox": {1}, "webhook": {3}, "twilio": {4}, "smtp": {3, 5}}[c.Type]
	if want == nil {
		return nil, d.Errf("%s: unknown sender %q: want one of %v", dir, c.Type, types)
	}
	if !slices.Contains(want, len(args)) {
		return nil, d.Errf("%s %s: wrong number of arguments", dir, c.Type)
	}
	switch c.Type {
	case "webhook":
		c.URL, c.Secret = args[1], args[2]
	case "twilio":
		c.AccountSID, c.AuthToken, c.From = args[1], args[2], args[3]
	case "smtp":
		c.Addr, c.From = args[1], args[2]
		if len(args) == 5 {
			c.Username, c.Password = args[3], args[4]
		}
	}
	if err := c.validate(dir, types...); err != nil {
		return nil, d.Err(err.Error())
	}
	return c, nil
}
