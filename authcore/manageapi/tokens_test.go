package manageapi_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/manageapi"
)

// form posts a form body with token to path as the backend client.
func (e *env) form(t *testing.T, path, token string, headers ...string) reply {
	t.Helper()
	return e.call(t, "POST", path, url.Values{"token": {token}}.Encode(),
		append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
}

// wantInactive checks the RFC 7662 answer for a token that is not live:
// {"active": false} and nothing else.
func (r reply) wantInactive(t *testing.T, what string) {
	t.Helper()
	if r.status != 200 || string(r.raw) != `{"active":false}` || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("introspect %s = %d %s (Cache-Control %q), want 200 {\"active\":false}, no-store",
			what, r.status, r.raw, r.header.Get("Cache-Control"))
	}
}

// POST /introspect answers RFC 7662 for live tokens, and {"active": false}
// for every token that is not, on both stores (SPEC §13).
func TestIntrospect(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		ctx := t.Context()
		login, err := e.gw.Sessions.Login(ctx, "bob@example.com", password)
		if err != nil {
			t.Fatal(err)
		}
		access, err := e.gw.Sessions.AccessToken(ctx, login.Session, authcore.IdentityRef{Type: "CONSUMER", ID: "2001"})
		if err != nil {
			t.Fatal(err)
		}
		r := e.form(t, "/introspect", access)
		if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("introspect a live token = %d %s", r.status, r.raw)
		}
		b := r.body
		for k, want := range map[string]any{"active": true, "iss": "test", "sub": "1002", "sid": login.Session.ID,
			"token_type": "ACCESS", "stepped_up": false, "credentials_type": "USER"} {
			if b[k] != want {
				t.Errorf("%s = %v, want %v in %s", k, b[k], want, r.raw)
			}
		}
		// RFC 7662 §2.2: iat, exp and auth_time are NumericDates (seconds).
		for _, k := range []string{"iat", "exp", "auth_time"} {
			if v, ok := b[k].(float64); !ok || v != float64(int64(v)) || v < 1e9 {
				t.Errorf("%s = %v, want seconds since the epoch", k, b[k])
			}
		}
		if id, _ := b["identity"].(map[string]any); id["type"] != "CONSUMER" || id["id"] != "2001" {
			t.Errorf("identity = %v", b["identity"])
		}
		if amr, _ := b["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" {
			t.Errorf("amr = %v, want [pwd]", b["amr"])
		}

		// Not live: forged, garbage, PASSWORD_UPDATE, foreign issuer, logged out, expired.
		e.form(t, "/introspect", access[:len(access)-4]+"AAAA").wantInactive(t, "a forged signature")
		e.form(t, "/introspect", "not-a-token").wantInactive(t, "garbage")
		_, err = e.gw.Sessions.Login(ctx, "alice@example.com", password) // alice's password has expired
		var expired *authcore.PasswordExpiredError
		if !errors.As(err, &expired) {
			t.Fatalf("alice's login: %v, want a password-expired session", err)
		}
		e.form(t, "/introspect", expired.Token).wantInactive(t, "a PASSWORD_UPDATE token")
		key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
		foreign, err := authcore.NewTokens("someone-else", key, e.clk.Now).Issue(&authcore.Claims{
			SessionID: login.Session.ID, TokenType: authcore.TokenAccess, CredentialsType: "USER",
			Identity: authcore.IdentityRef{Type: "CONSUMER", ID: "2001"}, AMR: []string{"pwd"}})
		if err != nil {
			t.Fatal(err)
		}
		e.form(t, "/introspect", foreign).wantInactive(t, "a token of another issuer, same key")
		if err := e.gw.Sessions.Logout(ctx, login.Session); err != nil {
			t.Fatal(err)
		}
		e.form(t, "/introspect", access).wantInactive(t, "a logged-out token")
		if !kind.realTime {
			live, _ := e.gw.Sessions.Login(ctx, "bob@example.com", password)
			e.wait(13 * time.Hour) // past session_max
			e.form(t, "/introspect", live.Token).wantInactive(t, "an expired token")
		}
	})
}

// POST /revoke (RFC 7009) ends the token's session on the spot, and
// answers 200 whether or not the token was live.
func TestRevoke(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		ctx := t.Context()
		login, err := e.gw.Sessions.Login(ctx, "bob@example.com", password)
		if err != nil {
			t.Fatal(err)
		}
		access, _ := e.gw.Sessions.AccessToken(ctx, login.Session, authcore.IdentityRef{Type: "CONSUMER", ID: "2001"})
		if r := e.form(t, "/revoke", access); r.status != 200 || len(r.body["errors"].([]any)) != 0 {
			t.Fatalf("revoke = %d %s", r.status, r.raw)
		}
		// Every token of the session is dead: the other one too.
		if _, _, err := e.gw.Sessions.Authenticate(ctx, login.Token); err == nil {
			t.Fatal("the session's AUTH token still authenticates after its ACCESS token was revoked")
		}
		e.form(t, "/introspect", access).wantInactive(t, "a revoked token")
		for _, tok := range []string{access, "not-a-token"} {
			if r := e.form(t, "/revoke", tok); r.status != 200 {
				t.Errorf("revoke of a dead token = %d %s, want 200", r.status, r.raw)
			}
		}
	})
}

// The token routes take a form with a token, from a client with the
// route's scope.
func TestTokenRoutesRefuseBadCalls(t *testing.T) {
	e := newEnv(t, memoryKind())
	for _, path := range []string{"/introspect", "/revoke"} {
		e.call(t, "POST", path, `{"token": "x"}`, "Content-Type", "application/json").wantError(t, manageapi.InvalidRequest)
		e.call(t, "POST", path, "", "Content-Type", "application/x-www-form-urlencoded").wantError(t, manageapi.InvalidRequest)
		e.form(t, path, "x", "Authorization", "").wantError(t, manageapi.InvalidServiceCredentials)
		e.form(t, path, "x", "Authorization", basic("reader", "reader-secret")).wantError(t, manageapi.ScopeNotGranted)
		if r := e.call(t, "GET", path, ""); r.status != 405 {
			t.Errorf("GET %s = %d, want 405", path, r.status)
		}
	}
}
