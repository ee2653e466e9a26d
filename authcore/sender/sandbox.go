// Package sender holds the ways authgate delivers one-time codes and push
// challenges: a sandbox that delivers nothing, a signed webhook, Twilio's
// Messages API and SMTP. Each satisfies authcore.Sender, so the gateway
// never knows which one is configured.
package sender

import (
	"context"

	"github.com/authgate/authgate/authcore"
)

// Sandbox delivers nothing. In sandbox mode every code is the fixed 123456,
// so there is nothing a user would need to receive, and demos and tests run
// without any provider account.
type Sandbox struct{}

var _ authcore.Sender = Sandbox{}

// Send drops the message and reports success, so that flows behave exactly
// as they would with a real provider.
func (Sandbox) Send(context.Context, authcore.Message) error { return nil }

// FixedCode makes every code sent through the sandbox 123456: nothing is
// delivered, so the user must be able to know it.
func (Sandbox) FixedCode() string { return authcore.SandboxCode }

var _ authcore.FixedCoder = Sandbox{}
