package multiapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/multiapi"
	"github.com/authgate/authgate/authcore/store/memory"
)

// testHashParams make the gateways' password hashes cheap: they are in the
// work of every login.
var testHashParams = authcore.HashParams{Scheme: authcore.SchemeArgon2id, Memory: 64, Time: 1, Threads: 1, KeyLen: 32}

const password = "Correct-Horse-1"

// newServer serves the Multi API over a memory store with test users and
// no rate limits (tests log in often from one address).
func newServer(t *testing.T, apiKeys ...string) *httptest.Server {
	t.Helper()
	return newServerWith(t, func(o *authcore.Options) { o.RateLimits = map[string]authcore.RateLimit{} }, apiKeys...)
}

// newServerWith is newServer with the gateway options adjusted by tune.
func newServerWith(t *testing.T, tune func(*authcore.Options), apiKeys ...string) *httptest.Server {
	t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	users, err := authcore.NewStaticUsers([]authcore.User{
		{ID: "1001", CredentialsType: "ROOT", Email: "alice@example.com", Password: string(hash),
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2001", Name: "Alice"}, {Type: "CORPORATE", ID: "3001", Name: "Acme"}}},
		{ID: "1003", CredentialsType: "USER", Email: "carol@example.com", Password: string(hash), PasswordExpires: &past,
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2003"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	store := memory.New(nil)
	t.Cleanup(func() { store.Close() })
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	opts := authcore.Options{Store: store, Users: users,
		Tokens: authcore.NewTokens("test", key, time.Now), PasswordHash: testHashParams}
	tune(&opts)
	gw, err := authcore.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(multiapi.New(multiapi.Options{Sessions: gw.Sessions, Accounts: gw.Accounts, Passwords: gw.Passwords,
		StepUp: gw.StepUp, Passkeys: gw.Passkeys, Tokens: gw.Tokens, Health: gw.Health, Outage: gw.Outage, Logger: gw.Logger, APIKeys: apiKeys}))
	t.Cleanup(srv.Close)
	return srv
}

type call struct {
	method, path, body string
	headers            map[string]string
}

func do(t *testing.T, srv *httptest.Server, c call) (*http.Response, map[string]any, []byte) {
	t.Helper()
	req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var obj map[string]any
	_ = json.Unmarshal(raw, &obj)
	if resp.Header.Get("request-ref") == "" {
		t.Errorf("%s %s: no request-ref header", c.method, c.path)
	}
	return resp, obj, raw
}

func login(t *testing.T, srv *httptest.Server, email string) string {
	t.Helper()
	resp, body, raw := do(t, srv, call{method: "POST", path: "/login_with_password",
		body: `{"email":"` + email + `","password":{"value":"` + password + `"}}`})
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, raw)
	}
	return body["token"].(string)
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func TestLoginWithPassword(t *testing.T) {
	srv := newServer(t)
	resp, body, raw := do(t, srv, call{method: "POST", path: "/login_with_password",
		body: `{"email":"alice@example.com","password":{"value":"` + password + `"},"extra":1}`})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	if body["tokenType"] != "AUTH" || body["token"] == "" {
		t.Fatalf("body %s", raw)
	}
	if got, _ := json.Marshal(body["identity"]); string(got) != `{"id":"2001","type":"CONSUMER"}` {
		t.Fatalf("identity %s", got)
	}
	if got, _ := json.Marshal(body["credentials"]); string(got) != `{"id":"1001","type":"ROOT"}` {
		t.Fatalf("credentials %s", got)
	}
}

func TestLoginFailuresAnswerTheSame(t *testing.T) {
	srv := newServer(t)
	r1, _, b1 := do(t, srv, call{method: "POST", path: "/login_with_password", body: `{"email":"nobody@example.com","password":{"value":"x"}}`})
	r2, _, b2 := do(t, srv, call{method: "POST", path: "/login_with_password", body: `{"email":"alice@example.com","password":{"value":"x"}}`})
	if r1.StatusCode != 403 || r2.StatusCode != 403 || !bytes.Equal(b1, b2) {
		t.Fatalf("unknown email %d %s; wrong password %d %s", r1.StatusCode, b1, r2.StatusCode, b2)
	}
}

func TestLoginExpiredPasswordIs409WithPasswordUpdateToken(t *testing.T) {
	srv := newServer(t)
	resp, body, raw := do(t, srv, call{method: "POST", path: "/login_with_password",
		body: `{"email":"carol@example.com","password":{"value":"` + password + `"}}`})
	if resp.StatusCode != 409 || body["token"] == nil {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	// The PASSWORD_UPDATE token serves no other route.
	r, _, _ := do(t, srv, call{method: "GET", path: "/identities", headers: bearer(body["token"].(string))})
	if r.StatusCode != 401 {
		t.Fatalf("identities with a PASSWORD_UPDATE token: %d", r.StatusCode)
	}
}

func TestBadRequestBodies(t *testing.T) {
	srv := newServer(t)
	cases := []struct {
		name, body string
		status     int
		field      string
		errCode    string
	}{
		{"missing email", `{"password":{"value":"x"}}`, 400, "email", "REQUIRED"},
		{"empty email", `{"email":"","password":{"value":"x"}}`, 400, "email", "REQUIRED"},
		{"missing password", `{"email":"a@b.c"}`, 400, "password.value", "REQUIRED"},
		{"password not an object", `{"email":"a@b.c","password":"x"}`, 400, "password", "REGEX"},
		{"email a number", `{"email":12,"password":{"value":"x"}}`, 400, "email", "REGEX"},
		{"not json", `{"email":`, 400, "", ""},
		{"trailing garbage", `{"email":"a@b.c","password":{"value":"x"}} x`, 400, "", ""},
		{"array", `[]`, 400, "", ""},
		{"empty body", ``, 400, "", ""},
		{"invalid utf-8", "{\"email\":\"\xff@b.c\",\"password\":{\"value\":\"x\"}}", 400, "", ""},
		{"huge number", `{"email":"a@b.c","password":{"value":1e999999}}`, 400, "", ""},
		{"too long email", `{"email":"` + strings.Repeat("a", 300) + `@b.c","password":{"value":"x"}}`, 400, "email", "SIZE"},
		{"oversized body", `{"email":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, raw := do(t, srv, call{method: "POST", path: "/login_with_password", body: tc.body})
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, raw, tc.status)
			}
			if body["message"] == nil {
				t.Fatalf("no message: %s", raw)
			}
			if tc.field == "" {
				return
			}
			fields := body["syntaxErrors"].(map[string]any)["invalidFields"].([]any)
			f := fields[0].(map[string]any)
			if f["fieldName"] != tc.field || f["error"] != tc.errCode {
				t.Fatalf("invalidFields %s", raw)
			}
		})
	}
}

func TestIdentitiesAccessTokenAndLogout(t *testing.T) {
	srv := newServer(t)
	auth := login(t, srv, "alice@example.com")

	resp, _, raw := do(t, srv, call{method: "GET", path: "/identities", headers: bearer(auth)})
	if resp.StatusCode != 200 || string(raw) != `[{"id":{"type":"CONSUMER","id":"2001"},"name":"Alice"},{"id":{"type":"CORPORATE","id":"3001"},"name":"Acme"}]` {
		t.Fatalf("identities: %d %s", resp.StatusCode, raw)
	}

	resp, body, raw := do(t, srv, call{method: "POST", path: "/access_token", headers: bearer(auth),
		body: `{"identity":{"type":"CORPORATE","id":"3001"}}`})
	if resp.StatusCode != 200 || body["status"] != "STANDARD" || body["token"] == "" {
		t.Fatalf("access_token: %d %s", resp.StatusCode, raw)
	}
	access := body["token"].(string)

	for name, c := range map[string]struct {
		body   string
		status int
	}{
		"foreign identity":  {`{"identity":{"type":"CONSUMER","id":"9999"}}`, 403},
		"bad type":          {`{"identity":{"type":"ADMIN","id":"1"}}`, 400},
		"non-digit id":      {`{"identity":{"type":"CONSUMER","id":"x1"}}`, 400},
		"missing identity":  {`{}`, 400},
		"identity a string": {`{"identity":"x"}`, 400},
	} {
		resp, _, raw := do(t, srv, call{method: "POST", path: "/access_token", headers: bearer(auth), body: c.body})
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d %s, want %d", name, resp.StatusCode, raw, c.status)
		}
	}

	// The access token works on the API too, then logout kills both.
	if resp, _, _ := do(t, srv, call{method: "GET", path: "/identities", headers: bearer(access)}); resp.StatusCode != 200 {
		t.Fatalf("identities with access token: %d", resp.StatusCode)
	}
	if resp, _, raw := do(t, srv, call{method: "POST", path: "/logout", headers: bearer(access)}); resp.StatusCode != 204 || len(raw) != 0 {
		t.Fatalf("logout: %d %s", resp.StatusCode, raw)
	}
	for _, tok := range []string{auth, access} {
		if resp, body, _ := do(t, srv, call{method: "GET", path: "/identities", headers: bearer(tok)}); resp.StatusCode != 401 || body["message"] == nil {
			t.Fatalf("after logout: %d", resp.StatusCode)
		}
	}
}

func TestUnauthenticatedRoutesAre401(t *testing.T) {
	srv := newServer(t)
	for _, c := range []call{
		{method: "GET", path: "/identities"},
		{method: "POST", path: "/access_token", body: `{}`},
		{method: "POST", path: "/logout"},
		{method: "POST", path: "/logout", headers: bearer("nope")},
	} {
		if resp, body, _ := do(t, srv, c); resp.StatusCode != 401 || body["message"] == nil {
			t.Errorf("%s %s: %d", c.method, c.path, resp.StatusCode)
		}
	}
}

func TestUnknownRoutesAndMethodsAnswerJSON(t *testing.T) {
	srv := newServer(t)
	resp, body, _ := do(t, srv, call{method: "GET", path: "/nope"})
	if resp.StatusCode != 404 || body["message"] == nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("unknown route: %d", resp.StatusCode)
	}
	for _, p := range []string{"//logout", "/stepup/../logout", "/logout/", "/./identities"} {
		resp, body, _ := do(t, srv, call{method: "POST", path: p})
		if resp.StatusCode != 404 || body["message"] == nil {
			t.Fatalf("non-canonical path %s: %d", p, resp.StatusCode)
		}
	}
	resp, body, _ = do(t, srv, call{method: "GET", path: "/login_with_password"})
	if resp.StatusCode != 405 || body["message"] == nil || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("wrong method: %d allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestAPIKey(t *testing.T) {
	srv := newServer(t, "key-one", "key-two")
	loginBody := `{"email":"alice@example.com","password":{"value":"` + password + `"}}`
	resp, body, raw := do(t, srv, call{method: "POST", path: "/login_with_password", body: loginBody})
	if resp.StatusCode != 400 || !strings.Contains(string(raw), `"fieldName":"api-key","error":"REQUIRED"`) || body["message"] == nil {
		t.Fatalf("missing api-key: %d %s", resp.StatusCode, raw)
	}
	resp, _, _ = do(t, srv, call{method: "POST", path: "/login_with_password", body: loginBody, headers: map[string]string{"api-key": "wrong"}})
	if resp.StatusCode != 401 {
		t.Fatalf("unknown api-key: %d", resp.StatusCode)
	}
	resp, _, _ = do(t, srv, call{method: "POST", path: "/login_with_password", body: loginBody, headers: map[string]string{"api-key": "key-two"}})
	if resp.StatusCode != 200 {
		t.Fatalf("good api-key: %d", resp.StatusCode)
	}
}

func TestJWKSIs404WithHS256(t *testing.T) {
	srv := newServer(t)
	if resp, body, _ := do(t, srv, call{method: "GET", path: "/.well-known/jwks.json"}); resp.StatusCode != 404 || body["message"] == nil {
		t.Fatalf("jwks: %d", resp.StatusCode)
	}
}

func TestLoginLockedAfterFiveFailures(t *testing.T) {
	srv := newServer(t)
	wrong := `{"email":"alice@example.com","password":{"value":"wrong"}}`
	right := `{"email":"ALICE@example.com","password":{"value":"` + password + `"}}`
	// A success before the lock resets the count.
	for i := 0; i < 4; i++ {
		do(t, srv, call{method: "POST", path: "/login_with_password", body: wrong})
	}
	if resp, _, _ := do(t, srv, call{method: "POST", path: "/login_with_password", body: right}); resp.StatusCode != 200 {
		t.Fatalf("right password after 4 failures: %d", resp.StatusCode)
	}
	auth := login(t, srv, "alice@example.com")
	for i := 1; i <= 5; i++ {
		if resp, _, raw := do(t, srv, call{method: "POST", path: "/login_with_password", body: wrong}); resp.StatusCode != 403 {
			t.Fatalf("failure %d: %d %s", i, resp.StatusCode, raw)
		}
	}
	for _, body := range []string{wrong, right} {
		resp, obj, raw := do(t, srv, call{method: "POST", path: "/login_with_password", body: body})
		if resp.StatusCode != 423 || obj["message"] == nil {
			t.Fatalf("locked account: %d %s", resp.StatusCode, raw)
		}
	}
	// A session opened before the lock cannot get access tokens while locked.
	if resp, _, raw := do(t, srv, call{method: "POST", path: "/access_token", headers: bearer(auth),
		body: `{"identity":{"type":"CONSUMER","id":"2001"}}`}); resp.StatusCode != 423 {
		t.Fatalf("access_token while locked: %d %s", resp.StatusCode, raw)
	}
	// Unknown emails count too, and answer exactly like a known one.
	ghost := `{"email":"ghost@example.com","password":{"value":"x"}}`
	for i := 1; i <= 5; i++ {
		do(t, srv, call{method: "POST", path: "/login_with_password", body: ghost})
	}
	if resp, _, _ := do(t, srv, call{method: "POST", path: "/login_with_password", body: ghost}); resp.StatusCode != 423 {
		t.Fatalf("unknown email after 5 failures: %d", resp.StatusCode)
	}
}

func TestLoginRateLimitPerClientIP(t *testing.T) {
	srv := newServerWith(t, func(o *authcore.Options) {
		o.RateLimits = map[string]authcore.RateLimit{authcore.LimitLogin: {Limit: 3, Window: time.Minute}}
	})
	body := `{"email":"nobody@example.com","password":{"value":"x"}}`
	for i := 1; i <= 3; i++ {
		if resp, _, _ := do(t, srv, call{method: "POST", path: "/login_with_password", body: body}); resp.StatusCode != 403 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	resp, obj, raw := do(t, srv, call{method: "POST", path: "/login_with_password", body: body})
	if resp.StatusCode != 429 || obj["message"] == nil || resp.Header.Get("x-ratelimit-limit") != "3" ||
		resp.Header.Get("x-ratelimit-reset") == "" || resp.Header.Get("Retry-After") != resp.Header.Get("x-ratelimit-reset") {
		t.Fatalf("4th request: %d %s %v", resp.StatusCode, raw, resp.Header)
	}
}

func TestPasswordUpdate(t *testing.T) {
	srv := newServer(t)
	update := func(tok, old, new string) (*http.Response, map[string]any, []byte) {
		return do(t, srv, call{method: "POST", path: "/passwords/update", headers: bearer(tok),
			body: `{"oldPassword":{"value":"` + old + `"},"newPassword":{"value":"` + new + `"}}`})
	}
	// An expired password: the PASSWORD_UPDATE token serves this route.
	resp, body, _ := do(t, srv, call{method: "POST", path: "/login_with_password",
		body: `{"email":"carol@example.com","password":{"value":"` + password + `"}}`})
	pwToken := body["token"].(string)
	if resp.StatusCode != 409 {
		t.Fatalf("expired login: %d", resp.StatusCode)
	}

	for _, tc := range []struct{ old, new, code string }{
		{"wrong-old", "N3w-Password!", "PASSWORD_INCORRECT"},
		{password, "Sh0rt!", "PASSWORD_TOO_SHORT"},
		{password, "Way-T00-Long-" + strings.Repeat("x", 20), "PASSWORD_TOO_LONG"},
		{password, "alllowercase1!", "PASSWORD_TOO_SIMPLE"},
		{password, "NoDigitsHere!", "PASSWORD_TOO_SIMPLE"},
		{password, "NoSpecial123", "PASSWORD_TOO_SIMPLE"},
		{password, password, "PASSWORD_ALREADY_USED"},
	} {
		resp, body, raw := update(pwToken, tc.old, tc.new)
		if resp.StatusCode != 409 || body["errorCode"] != tc.code {
			t.Fatalf("%q -> %q: %d %s, want 409 %s", tc.old, tc.new, resp.StatusCode, raw, tc.code)
		}
	}
	if resp, _, raw := do(t, srv, call{method: "POST", path: "/passwords/update", headers: bearer(pwToken), body: `{}`}); resp.StatusCode != 400 ||
		!strings.Contains(string(raw), `"fieldName":"oldPassword.value"`) || !strings.Contains(string(raw), `"fieldName":"newPassword.value"`) {
		t.Fatalf("empty body: %d %s", resp.StatusCode, raw)
	}

	resp, body, raw := update(pwToken, password, "N3w-Password!")
	if resp.StatusCode != 200 || body["token"] == nil {
		t.Fatalf("update: %d %s", resp.StatusCode, raw)
	}
	info, _ := json.Marshal(body["passwordInfo"])
	if string(info) != `{"expiryDate":0,"identityId":{"id":"2003","type":"CONSUMER"}}` {
		t.Fatalf("passwordInfo %s", info)
	}
	fresh := body["token"].(string)
	if r, _, _ := do(t, srv, call{method: "GET", path: "/identities", headers: bearer(fresh)}); r.StatusCode != 200 {
		t.Fatalf("fresh AUTH token: %d", r.StatusCode)
	}
	if r, _, _ := do(t, srv, call{method: "GET", path: "/identities", headers: bearer(pwToken)}); r.StatusCode != 401 {
		t.Fatalf("the PASSWORD_UPDATE token survived: %d", r.StatusCode)
	}
	// The new password logs in normally; the old one is refused.
	if r, _, _ := do(t, srv, call{method: "POST", path: "/login_with_password",
		body: `{"email":"carol@example.com","password":{"value":"N3w-Password!"}}`}); r.StatusCode != 200 {
		t.Fatalf("login with the new password: %d", r.StatusCode)
	}
	if r, _, _ := do(t, srv, call{method: "POST", path: "/login_with_password",
		body: `{"email":"carol@example.com","password":{"value":"` + password + `"}}`}); r.StatusCode != 403 {
		t.Fatalf("login with the old password: %d", r.StatusCode)
	}
}

func TestPasswordChangeEndsEveryOldSessionAndKeepsHistory(t *testing.T) {
	srv := newServer(t)
	a, b := login(t, srv, "alice@example.com"), login(t, srv, "alice@example.com")
	pw := password
	var fresh string
	for i, next := range []string{"Second-Pass-2", "Third-Pass-3!", "Fourth-Pass-4", "Fifth-Pass-5!", "Sixth-Pass-6!"} {
		resp, body, raw := do(t, srv, call{method: "POST", path: "/passwords/update", headers: bearer(a),
			body: `{"oldPassword":{"value":"` + pw + `"},"newPassword":{"value":"` + next + `"}}`})
		if resp.StatusCode != 200 {
			t.Fatalf("change %d: %d %s", i+1, resp.StatusCode, raw)
		}
		pw, fresh, a = next, body["token"].(string), body["token"].(string)
	}
	if r, _, _ := do(t, srv, call{method: "GET", path: "/identities", headers: bearer(b)}); r.StatusCode != 401 {
		t.Fatalf("the other session survived a password change: %d", r.StatusCode)
	}
	// The last five passwords are refused; the sixth-newest is allowed again.
	for _, old := range []string{"Sixth-Pass-6!", "Fifth-Pass-5!", "Second-Pass-2"} {
		resp, body, _ := do(t, srv, call{method: "POST", path: "/passwords/update", headers: bearer(fresh),
			body: `{"oldPassword":{"value":"` + pw + `"},"newPassword":{"value":"` + old + `"}}`})
		if resp.StatusCode != 409 || body["errorCode"] != "PASSWORD_ALREADY_USED" {
			t.Fatalf("reusing %s: %d %v", old, resp.StatusCode, body)
		}
	}
	resp, _, raw := do(t, srv, call{method: "POST", path: "/passwords/update", headers: bearer(fresh),
		body: `{"oldPassword":{"value":"` + pw + `"},"newPassword":{"value":"` + password + `"}}`})
	if resp.StatusCode != 200 {
		t.Fatalf("the password from six changes ago: %d %s", resp.StatusCode, raw)
	}
}

// TestAccessTokenAfterAPasskeyStepUp: a session stepped up with a passkey
// reports STEPPED_UP and its tokens carry amr ["pwd","hwk"] (RFC 8176).
func TestAccessTokenAfterAPasskeyStepUp(t *testing.T) {
	var store authcore.Store
	var tokens *authcore.Tokens
	srv := newServerWith(t, func(o *authcore.Options) { store, tokens = o.Store, o.Tokens })
	auth := login(t, srv, "alice@example.com")
	steppedUp := stepUpInStore(t, store, tokens, auth, authcore.StepUpPasskey)
	resp, body, raw := do(t, srv, call{method: "POST", path: "/access_token", headers: bearer(auth),
		body: `{"identity":{"type":"CONSUMER","id":"2001"}}`})
	if resp.StatusCode != 200 || body["status"] != "STEPPED_UP" {
		t.Fatalf("access_token: %d %s", resp.StatusCode, raw)
	}
	wantAMR(t, tokens, body["token"].(string), "pwd,hwk", steppedUp)
}

// stepUpInStore records a step-up by method on the token's session, as
// the step-up routes would, and returns its time.
func stepUpInStore(t *testing.T, store authcore.Store, tokens *authcore.Tokens, token, method string) time.Time {
	t.Helper()
	c, err := tokens.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := store.GetSession(ctx, c.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	s.SteppedUp, s.StepUpMethod = time.Now(), method
	if err := store.SaveSession(ctx, s, time.Hour); err != nil {
		t.Fatal(err)
	}
	return s.SteppedUp
}

// wantAMR checks a token's amr and auth_time.
func wantAMR(t *testing.T, tokens *authcore.Tokens, token, amr string, authTime time.Time) {
	t.Helper()
	c, err := tokens.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.AMR, ",") != amr || c.AuthTime != authTime.Unix() {
		t.Fatalf("amr %v auth_time %d, want %s and %d", c.AMR, c.AuthTime, amr, authTime.Unix())
	}
}
