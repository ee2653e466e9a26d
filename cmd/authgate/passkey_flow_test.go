package main

// A route that counts only a passkey step-up (SPEC §14), through the built
// binary, for an API client: authgate_protect and authgate_verify refuse a
// session stepped up by SMS with STEP_UP_REQUIRED and acr_values="phr",
// and let it pass once it steps up with a passkey (a software
// authenticator here; the browser test uses Chromium's).

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/authgate/authgate/authcore/authtest"
)

func passkeyRoutesConfig(users, backend string) string {
	cfg := gatewayConfig("memory", users, backend, "sandbox", "passkeys localhost http://localhost:{PORT}")
	return strings.Replace(cfg, "\thandle /api/* {", `	handle /api/transfers/* {
		authgate_protect {
			stepup 5m passkey
		}
		reverse_proxy `+backend+`
	}
	handle /api/payments/* {
		authgate_protect {
			stepup 5m otp
		}
		reverse_proxy `+backend+`
	}
	handle /verify/transfers {
		authgate_verify {
			stepup 5m passkey
		}
	}
	handle /api/* {`, 1)
}

func TestPasskeyOnlyRoutesThroughTheBinary(t *testing.T) {
	be := newBackend(t)
	g := startGateway(t, passkeyRoutesConfig(lhUsersFile(t, demoHash), be.Addr))
	origin := strings.Replace(g.URL, "127.0.0.1", "localhost", 1)
	auth := bearerH(loginAs(t, g, "alice@example.com"))
	access := bearerH(accessToken(t, g, auth[1][len("Bearer "):], "CONSUMER", "2001"))
	wantPhr := func(what string, r response) {
		t.Helper()
		if r.Status != 403 || r.str("errorCode") != "STEP_UP_REQUIRED" ||
			!strings.Contains(r.Header.Get("WWW-Authenticate"), `max_age=300, acr_values="phr"`) {
			t.Fatalf("%s: %d %s WWW-Authenticate %q, want 403 STEP_UP_REQUIRED with max_age=300, acr_values=\"phr\"",
				what, r.Status, r.Body, r.Header.Get("WWW-Authenticate"))
		}
	}
	mustStatus := func(what string, r response, status int) response {
		t.Helper()
		if r.Status != status {
			t.Fatalf("%s: %d %s, want %d", what, r.Status, r.Body, status)
		}
		return r
	}

	// Stepped up by SMS: the otp route opens, the passkey routes do not.
	mustStatus("send the code", request(t, "POST", g.URL+"/multi/stepup/challenges/otp/SMS", "", auth...), 204)
	mustStatus("verify the code", request(t, "POST", g.URL+"/multi/stepup/challenges/otp/SMS/verify", `{"verificationCode":"123456"}`, auth...), 204)
	mustStatus("the otp route", request(t, "GET", g.URL+"/api/payments/1", "", access...), 200)
	wantPhr("authgate_protect after an SMS step-up", request(t, "GET", g.URL+"/api/transfers/1", "", access...))
	wantPhr("authgate_verify after an SMS step-up", request(t, "GET", g.URL+"/verify/transfers", "", access...))
	calls := be.calls.Load()

	// Enrol a passkey (the SMS step-up allows it), then step up with it.
	key := authtest.NewSoftKey(t, "localhost", origin)
	options := func(path string) json.RawMessage {
		t.Helper()
		r := mustStatus(path, request(t, "POST", g.URL+"/multi"+path, "", auth...), 200)
		var body struct {
			PublicKey json.RawMessage `json:"publicKey"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil || body.PublicKey == nil {
			t.Fatalf("%s: %s", path, r.Body)
		}
		return body.PublicKey
	}
	mustStatus("enrol", request(t, "POST", g.URL+"/multi/authentication_factors/passkeys/verify",
		string(key.Attest(t, options("/authentication_factors/passkeys"))), auth...), 204)
	mustStatus("passkey step-up", request(t, "POST", g.URL+"/multi/stepup/challenges/passkey/verify",
		string(key.Assert(t, options("/stepup/challenges/passkey"), "1001")), auth...), 204)

	// Now both passkey routes let the same access token through.
	mustStatus("authgate_protect after a passkey step-up", request(t, "GET", g.URL+"/api/transfers/1", "", access...), 200)
	if got := be.lastHeaders().Get("X-Authgate-Stepped-Up"); be.calls.Load() != calls+1 || got != "true" {
		t.Fatalf("the backend was called %d times since, with X-Authgate-Stepped-Up %q", be.calls.Load()-calls, got)
	}
	mustStatus("authgate_verify after a passkey step-up", request(t, "GET", g.URL+"/verify/transfers", "", access...), 200)

	// Tokens issued after it say how: amr ["pwd","hwk"] (RFC 8176).
	tok := accessToken(t, g, auth[1][len("Bearer "):], "CONSUMER", "2001")
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || strings.Join(claims.AMR, ",") != "pwd,hwk" {
		t.Fatalf("access token after a passkey step-up has amr %v (%v), want [pwd hwk]", claims.AMR, err)
	}
}
