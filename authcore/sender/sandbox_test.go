package sender

import (
	"context"
	"testing"

	"github.com/authgate/authgate/authcore"
)

func TestSandboxAcceptsEveryMessageWithoutSendingAnything(t *testing.T) {
	var s authcore.Sender = Sandbox{}
	for _, m := range []authcore.Message{
		{To: "+447700900123", Code: "123456", Channel: "SMS", Purpose: "stepup"},
		{To: "cred-1", Channel: "AUTHY", ChallengeID: "42"},
		{},
	} {
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("Send(%+v) = %v, want nil", m, err)
		}
	}
}
