package portal_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/portal"
	"github.com/authgate/authgate/authcore/store/memory"
)

// FuzzPortalRequests: whatever a browser sends to any page (path, query,
// form body, cookies, Origin), the portal answers in its own shape and never
// with a 5xx or a panic (SPEC §9). The seeds carry a valid pre-session
// cookie and a signed-in session with their CSRF tokens, so the fuzzer gets
// past the CSRF check into each form's parsing.
func FuzzPortalRequests(f *testing.F) {
	store := memory.New(nil)
	defer store.Close()
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	gw, err := authcore.New(authcore.Options{Store: store, Users: testUsers(f), Tokens: authcore.NewTokens("test", key, time.Now),
		Sandbox: true, PasswordHash: testHashParams, CodeKey: key.Derive("codes"), CSRFKey: key.Derive("csrf"),
		RateLimits: map[string]authcore.RateLimit{}, Passkeys: &authcore.PasskeyConfig{RPID: "localhost", Origins: []string{"http://localhost"}}})
	if err != nil {
		f.Fatal(err)
	}
	h := portal.New(portal.Options{Sessions: gw.Sessions, Accounts: gw.Accounts, Passwords: gw.Passwords,
		StepUp: gw.StepUp, CSRF: gw.CSRF, Passkeys: gw.Passkeys, Outage: gw.Outage})
	cookies := portal.NewCookies("")
	pre := gw.CSRF.NewPreSession()
	login, err := gw.Sessions.LoginBrowser(context.Background(), "alice@example.com", password)
	if err != nil {
		f.Fatal(err)
	}
	// Stepped up, so that the passkey enrolment routes get past that check.
	ctx := context.Background()
	if err := gw.StepUp.IssueOTP(ctx, login.Session, authcore.ChannelSMS); err != nil {
		f.Fatal(err)
	}
	if err := gw.StepUp.VerifyOTP(ctx, login.Session, authcore.ChannelSMS, authcore.SandboxCode); err != nil {
		f.Fatal(err)
	}
	preCookie := cookies.PreSession + "=" + pre
	sessCookie := cookies.Session + "=" + login.Cookie
	preCSRF, sessCSRF := gw.CSRF.ForPreSession(pre), gw.CSRF.ForSession(login.Session)

	f.Add("GET", "/login?return=/app/", "", preCookie, "")
	f.Add("POST", "/login", "email=alice%40example.com&password=x&return=%2F%2Fevil&csrf="+preCSRF, preCookie, "")
	f.Add("POST", "/stepup", "action=send-sms&return=/app/&max_age=300&csrf="+sessCSRF, sessCookie, "http://127.0.0.1")
	f.Add("POST", "/stepup", "action=verify-sms&code=12%00456&csrf="+sessCSRF, sessCookie, "")
	f.Add("POST", "/stepup", "action=push&channel=AUTHY&csrf="+sessCSRF, sessCookie, "")
	f.Add("POST", "/stepup", "action=push-continue&id=99999999&csrf="+sessCSRF, sessCookie, "")
	f.Add("GET", "/stepup/push?id=1&return=%0d%0aLocation:x", "", sessCookie, "")
	f.Add("GET", "/stepup/push/status?id=", "", sessCookie, "")
	f.Add("POST", "/password", "old_password=a&new_password=%ff%fe&csrf="+sessCSRF, sessCookie, "null")
	f.Add("GET", "/stepup?return=/pay&methods=passkey,otp,%00,passkey", "", sessCookie, "")
	f.Add("GET", "/passkeys?return=/pay&done=added", "", sessCookie, "")
	f.Add("POST", "/passkeys/options", "csrf="+sessCSRF, sessCookie, "http://localhost")
	f.Add("POST", "/passkeys", `credential={"id":"AA","rawId":"AA","type":"public-key","response":{}}&csrf=`+sessCSRF, sessCookie, "")
	f.Add("POST", "/passkeys/delete", "id=AA&return=/x&csrf="+sessCSRF, sessCookie, "")
	f.Add("POST", "/stepup/passkey/options", "csrf="+sessCSRF, sessCookie, "")
	f.Add("POST", "/stepup/passkey", "credential=%7B%7D&return=/pay&csrf="+sessCSRF, sessCookie, "")
	f.Add("POST", "/logout", "csrf="+sessCSRF, sessCookie+"; "+preCookie, "")
	f.Fuzz(func(t *testing.T, method, target, body, cookie, origin string) {
		if method != http.MethodGet && method != http.MethodPost && method != http.MethodHead {
			method = http.MethodPost
		}
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(target, "/") {
			t.Skip("not a request target a server would pass on")
		}
		req := httptest.NewRequest(method, "http://localhost/", strings.NewReader(body))
		req.URL, req.RequestURI = u, target
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", cookie)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, target, body, rec.Code, rec.Body)
		}
	})
}
