package multiapi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/authtest"
)

const (
	rpID   = "bank.example"
	origin = "https://bank.example"
)

// passkeyOptions asks path for a ceremony's options: the publicKey of a
// 200.
func passkeyOptions(t *testing.T, do func(call) (int, map[string]any, []byte), path, token string) json.RawMessage {
	t.Helper()
	status, _, raw := do(call{method: "POST", path: path, headers: bearer(token)})
	var body struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if status != 200 || json.Unmarshal(raw, &body) != nil || len(body.PublicKey) == 0 {
		t.Fatalf("%s: %d %s", path, status, raw)
	}
	return body.PublicKey
}

func TestPasskeyRoutes(t *testing.T) {
	var store authcore.Store
	var tokens *authcore.Tokens
	srv := newServerWith(t, func(o *authcore.Options) {
		store, tokens = o.Store, o.Tokens
		o.Passkeys = &authcore.PasskeyConfig{RPID: rpID, Origins: []string{origin}}
	})
	send := func(c call) (int, map[string]any, []byte) {
		resp, body, raw := do(t, srv, c)
		return resp.StatusCode, body, raw
	}
	auth := login(t, srv, "alice@example.com")

	// Enrolment needs a stepped-up session.
	if status, body, raw := send(call{method: "POST", path: "/authentication_factors/passkeys", headers: bearer(auth)}); status != 403 || body["errorCode"] != "STEP_UP_REQUIRED" {
		t.Fatalf("enrol before step-up: %d %s", status, raw)
	}
	stepUpInStore(t, store, tokens, auth, authcore.StepUpOTP)
	k := authtest.NewSoftKey(t, rpID, origin)
	options := passkeyOptions(t, send, "/authentication_factors/passkeys", auth)
	if !strings.Contains(string(options), `"userVerification":"required"`) {
		t.Fatalf("creation options without required user verification: %s", options)
	}
	if status, _, raw := send(call{method: "POST", path: "/authentication_factors/passkeys/verify", headers: bearer(auth), body: string(k.Attest(t, options))}); status != 204 {
		t.Fatalf("enrol verify: %d %s", status, raw)
	}
	id := authcore.PasskeyID(k.ID)
	if status, _, raw := send(call{method: "GET", path: "/authentication_factors", headers: bearer(auth)}); status != 200 ||
		!strings.Contains(string(raw), `{"type":"PASSKEY","status":"ACTIVE","channel":"`+id+`"}`) {
		t.Fatalf("factors: %d %s", status, raw)
	}

	// A new session steps up with it; the challenge is single use.
	fresh := login(t, srv, "alice@example.com")
	options = passkeyOptions(t, send, "/stepup/challenges/passkey", fresh)
	assertion := string(k.Assert(t, options, "1001"))
	if status, body, raw := send(call{method: "POST", path: "/stepup/challenges/passkey/verify", headers: bearer(fresh), body: `{"id":"x"}`}); status != 409 || body["errorCode"] != "VERIFICATION_CODE_INVALID" {
		t.Fatalf("bad assertion: %d %s", status, raw)
	}
	if status, body, raw := send(call{method: "POST", path: "/stepup/challenges/passkey/verify", headers: bearer(fresh), body: assertion}); status != 409 || body["errorCode"] != "STATE_INVALID" {
		t.Fatalf("assertion after its challenge was used: %d %s", status, raw)
	}
	options = passkeyOptions(t, send, "/stepup/challenges/passkey", fresh)
	before := time.Now().Truncate(time.Second)
	if status, _, raw := send(call{method: "POST", path: "/stepup/challenges/passkey/verify", headers: bearer(fresh), body: string(k.Assert(t, options, "1001"))}); status != 204 {
		t.Fatalf("step-up verify: %d %s", status, raw)
	}
	status, body, raw := send(call{method: "POST", path: "/access_token", headers: bearer(fresh), body: `{"identity":{"type":"CONSUMER","id":"2001"}}`})
	if status != 200 || body["status"] != "STEPPED_UP" {
		t.Fatalf("access_token: %d %s", status, raw)
	}
	c, _ := tokens.Verify(body["token"].(string))
	if strings.Join(c.AMR, ",") != "pwd,hwk" || c.AuthTime < before.Unix() {
		t.Fatalf("amr %v auth_time %d", c.AMR, c.AuthTime)
	}

	// Removal.
	if status, _, raw := send(call{method: "DELETE", path: "/authentication_factors/passkeys/" + id, headers: bearer(auth)}); status != 204 {
		t.Fatalf("delete: %d %s", status, raw)
	}
	if status, _, raw := send(call{method: "DELETE", path: "/authentication_factors/passkeys/" + id, headers: bearer(auth)}); status != 404 {
		t.Fatalf("delete again: %d %s", status, raw)
	}
	if status, body, raw := send(call{method: "POST", path: "/stepup/challenges/passkey", headers: bearer(fresh)}); status != 409 || body["errorCode"] != "STATE_INVALID" {
		t.Fatalf("step-up without a passkey: %d %s", status, raw)
	}
}
