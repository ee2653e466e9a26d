package portal_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/authtest"
	redisstore "github.com/authgate/authgate/authcore/store/redis"
)

// Every answer of the portal, pages, assets and errors alike, carries the
// security headers.
func TestEveryAnswerCarriesTheSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	answers := map[string]reply{
		"login page":   b.get("/auth/login"),
		"stylesheet":   b.get("/auth/assets/portal.css"),
		"script":       b.get("/auth/assets/portal.js"),
		"no such page": b.get("/auth/nowhere"),
		"wrong method": b.get("/auth/logout"),
		"step-up page": b.get("/auth/stepup"),
		"cross-site":   b.post("/auth/login", url.Values{}, "Origin", "https://evil.example"),
		"push status":  b.get("/auth/stepup/push/status?id=1"),
	}
	for name, r := range answers {
		for header, want := range map[string]string{
			"Cache-Control":          "no-store",
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "same-origin",
		} {
			if got := r.header.Get(header); got != want {
				t.Errorf("%s: %s = %q, want %q", name, header, got, want)
			}
		}
		csp := r.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			strings.Contains(csp, "unsafe") {
			t.Errorf("%s: Content-Security-Policy %q", name, csp)
		}
	}
	answers["no such page"].want(t, http.StatusNotFound, "There is no such page.")
	answers["wrong method"].want(t, http.StatusMethodNotAllowed)
	if ct := answers["stylesheet"].header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("stylesheet Content-Type %q", ct)
	}
	if ct := answers["script"].header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("script Content-Type %q", ct)
	}
	// No inline script or style: the CSP forbids them.
	for _, path := range []string{"/auth/login", "/auth/nowhere"} {
		if body := b.get(path).body; strings.Contains(body, "<script>") || strings.Contains(body, "<style") || strings.Contains(body, "style=") {
			t.Errorf("%s has inline script or style", path)
		}
	}
}

// The sign-in page is the contract's form, with a label on every field,
// and binds its CSRF token to a pre-session cookie.
func TestLoginPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	r := b.get("/auth/login?return=/app/x")
	r.want(t, http.StatusOK, `<form id="login" method="post" action="login">`,
		`<label for="email">`, `name="email" id="email" autocomplete="username"`,
		`<label for="password">`, `type="password" name="password" id="password" autocomplete="current-password"`,
		`name="return" value="/app/x"`, `<button type="submit" id="login-submit">`, `href="assets/portal.css"`)
	pre := r.setCookie(t, "__Host-authgate-pre")
	wantCookieAttributes(t, pre)
	if strings.Contains(r.body, `role="status"`) {
		t.Error("a signed-out notice without signing out")
	}
	// Another visit keeps the pre-session, so two tabs both work.
	again := b.get("/auth/login")
	if again.csrf(t) != r.csrf(t) {
		t.Error("a second visit changed the pre-session's token")
	}
}

// wantCookieAttributes checks the attributes both cookies have.
func wantCookieAttributes(t *testing.T, line string) {
	t.Helper()
	for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(line, "; "+attr) {
			t.Errorf("cookie %q lacks %s", line, attr)
		}
	}
	if strings.Contains(strings.ToLower(line), "domain=") {
		t.Errorf("cookie %q has a Domain", line)
	}
}

// A sign-in sets the session cookie and lands on the return path; the
// cookie is opaque and holds no password.
func TestLoginSetsTheSessionCookie(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	r := b.login("alice@example.com", password, "/app/x?tab=2")
	r.wantRedirect(t, "/app/x?tab=2")
	line := r.setCookie(t, "__Host-authgate")
	wantCookieAttributes(t, line)
	if strings.Contains(line, "Max-Age") || strings.Contains(line, "Expires") {
		t.Errorf("session cookie %q outlives the browser session", line)
	}
	if pre := r.setCookie(t, "__Host-authgate-pre"); !strings.Contains(pre, "Max-Age=0") {
		t.Errorf("the pre-session cookie is kept: %q", pre)
	}
	value := b.cookie("__Host-authgate")
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}$`).MatchString(value) || strings.Contains(value, password) {
		t.Errorf("cookie value %q: want <session id>.<secret>", value)
	}
	if got := b.admitted(e, accessRoute); got != authcore.NotRefused {
		t.Errorf("the guard refuses the new session: %v", got)
	}
	wantLog(t, e, "login", map[string]string{"result": "success", "credentials_id": "1001", "api": "portal"})
}

// wantLog checks that an audit line with msg and these fields was written.
func wantLog(t *testing.T, e *env, msg string, fields map[string]string) {
	t.Helper()
next:
	for _, entry := range e.logs.FilterMessage(msg).All() {
		m := entry.ContextMap()
		for k, v := range fields {
			if m[k] != v {
				continue next
			}
		}
		return
	}
	t.Errorf("no %q line with %v in %v", msg, fields, e.logs.All())
}

// Failed sign-ins show the page again with the error in words and a
// status scripts can read: 401 (one message for an unknown email and a
// wrong password), 423 locked, 429 rate limited, 400 missing fields.
func TestLoginFailures(t *testing.T) {
	e := newEnv(t, func(o *authcore.Options) { o.LockoutAttempts = 2 })
	b := e.browser(t)
	wrong := b.login("alice@example.com", "Wrong-Horse-1", "/app/")
	wrong.want(t, http.StatusUnauthorized, `<p class="error" role="alert">The email or password is incorrect.</p>`,
		`value="alice@example.com"`, `name="return" value="/app/"`)
	if strings.Contains(wrong.body, "Wrong-Horse-1") {
		t.Error("the page shows the password")
	}
	unknown := b.login("nobody@example.com", "Wrong-Horse-1", "/app/")
	unknown.want(t, http.StatusUnauthorized, "The email or password is incorrect.")
	b.login("alice@example.com", "Wrong-Horse-1", "/app/")
	b.login("alice@example.com", password, "/app/").want(t, http.StatusLocked, "locked")
	page := b.loginPage("/")
	b.post("/auth/login", url.Values{"csrf": {page.csrf(t)}, "email": {"bob@example.com"}}).
		want(t, http.StatusBadRequest, "Enter your email and your password.")
	if b.cookie("__Host-authgate") != "" {
		t.Error("a failed sign-in set a session cookie")
	}

	limited := newEnv(t, func(o *authcore.Options) {
		o.RateLimits = map[string]authcore.RateLimit{authcore.LimitLogin: {Limit: 1, Window: time.Minute}}
	})
	lb := limited.browser(t)
	lb.login("bob@example.com", "Wrong-Horse-1", "/")
	over := lb.login("bob@example.com", password, "/")
	over.want(t, http.StatusTooManyRequests, "Too many attempts")
	if over.header.Get("Retry-After") == "" || over.header.Get("x-ratelimit-limit") != "1" {
		t.Errorf("429 headers: %v", over.header)
	}
}

// The return path is kept only when it can only be a path of this site.
func TestReturnIsSanitised(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ in, want string }{
		{"/app/", "/app/"},
		{"/app/x?a=1&b=%2F", "/app/x?a=1&b=%2F"},
		{"/", "/"},
		{"", "/"},
		{"//evil.example", "/"},
		{"/\\evil.example", "/"},
		{"/app\\..\\x", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"app/x", "/"},
		{"/app/\r\nSet-Cookie: x=1", "/"},
		{"/app/\tx", "/"},
		{"/app/\x00", "/"},
		{"/app/%0d%0aSet-Cookie:%20x=1", "/"},
		{"/app/%0A", "/"},
		{"/app/%09", "/"},
		{"/app/%00", "/"},
		{"/app/%5cevil", "/"},
		{"/app/%zz", "/"},
		{"/app/ é", "/"},
		{"/" + strings.Repeat("a", 3000), "/"},
	} {
		b := e.browser(t)
		r := b.login("alice@example.com", password, tc.in)
		if got := r.header.Get("Location"); r.status != http.StatusSeeOther || got != tc.want {
			t.Errorf("return %q: %d Location %q, want %q", tc.in, r.status, got, tc.want)
		}
	}
}

// Forms without the right CSRF token, or sent from another site, are
// refused with 403 and change nothing.
func TestCSRFAndCrossSiteFormsAreRefused(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	page := b.loginPage("/")
	good := url.Values{"csrf": {page.csrf(t)}, "email": {"alice@example.com"}, "password": {password}, "return": {"/"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vs := range good {
			f[key] = vs
		}
		f.Set(k, v)
		return f
	}
	for name, tc := range map[string]struct {
		form    url.Values
		headers []string
	}{
		"missing csrf":           {with("csrf", ""), nil},
		"wrong csrf":             {with("csrf", strings.Repeat("A", 43)), nil},
		"cross-site Origin":      {good, []string{"Origin", "https://evil.example"}},
		"null Origin":            {good, []string{"Origin", "null"}},
		"Sec-Fetch-Site":         {good, []string{"Sec-Fetch-Site", "cross-site"}},
		"Origin on another port": {good, []string{"Origin", "http://127.0.0.1:1"}},
	} {
		b.post("/auth/login", tc.form, tc.headers...).want(t, http.StatusForbidden)
		if b.cookie("__Host-authgate") != "" {
			t.Fatalf("%s: signed in", name)
		}
	}
	// The token of another pre-session does not do either.
	other := e.browser(t).loginPage("/")
	b.post("/auth/login", with("csrf", other.csrf(t))).want(t, http.StatusForbidden)
	// A same-origin form, with the browser's headers, passes.
	b.post("/auth/login", good, "Origin", e.srv.URL, "Sec-Fetch-Site", "same-origin").wantRedirect(t, "/")

	// Once signed in, the forms are bound to the session.
	ret := "/app/pay/"
	stepUp := b.stepUpPage(ret)
	mallory := e.browser(t)
	mallory.signIn("bob@example.com", "/")
	for name, csrf := range map[string]string{
		"missing":           "",
		"wrong":             strings.Repeat("B", 43),
		"the pre-session's": page.csrf(t),
		"another session's": mallory.stepUpPage(ret).csrf(t),
	} {
		r := b.post("/auth/stepup", url.Values{"csrf": {csrf}, "return": {ret}, "action": {"send-sms"}})
		r.want(t, http.StatusForbidden)
		if !strings.Contains(r.body, "expired or was not sent from this site") {
			t.Errorf("%s csrf: %s", name, r.body)
		}
	}
	b.post("/auth/logout", url.Values{"csrf": {"x"}}).want(t, http.StatusForbidden)
	b.post("/auth/password", url.Values{"csrf": {"x"}, "old_password": {password}, "new_password": {"N3w-Horse!"}}).
		want(t, http.StatusForbidden)
	b.post("/auth/stepup", url.Values{"csrf": {stepUp.csrf(t)}, "action": {"send-sms"}}, "Sec-Fetch-Site", "cross-site").
		want(t, http.StatusForbidden)
	if got := b.admitted(e, accessRoute); got != authcore.NotRefused {
		t.Errorf("a refused logout ended the session: %v", got)
	}
}

// Step-up by SMS code: the page says who is signed in and offers the
// user's factors; a code is sent, a wrong one is refused in words, the
// right one steps the session up and goes back.
func TestStepUpBySMSCode(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	ret := "/app/pay/?x=1"
	b.get("/auth/stepup?return="+url.QueryEscape(ret)).wantRedirect(t, "login?return=%2Fapp%2Fpay%2F%3Fx%3D1")
	b.signIn("alice@example.com", ret)
	page := b.stepUpPage(ret)
	page.want(t, http.StatusOK, `<p id="signed-in-as">Signed in as alice@example.com</p>`,
		`<form id="logout" method="post" action="logout">`, `<form id="sms-send" method="post" action="stepup">`,
		`name="action" value="send-sms"`, `name="max_age" value="300"`, `<form id="push-start" method="post" action="stepup">`,
		`name="action" value="push"`, `name="channel" value="AUTHY"`)
	if strings.Contains(page.body, `id="sms-verify"`) {
		t.Error("a code form before any code was sent")
	}
	sent := b.stepUp(ret, "send-sms")
	sent.want(t, http.StatusOK, `<form id="sms-verify" method="post" action="stepup">`, `name="action" value="verify-sms"`,
		`<input name="code" id="code" inputmode="numeric" autocomplete="one-time-code"`, `id="sms-verify-submit"`,
		`<label for="code">`, "We sent a code by text message.")
	b.stepUp(ret, "verify-sms", "code", "000000").want(t, http.StatusConflict, `id="sms-verify"`,
		"That code is not right. Check the message and try again.")
	if got := b.admitted(e, &authcore.GuardPolicy{Token: authcore.GuardAccess, StepUp: true}); got != authcore.RefusedStepUpRequired {
		t.Fatalf("stepped up by a wrong code: %v", got)
	}
	b.stepUp(ret, "verify-sms", "code", authcore.SandboxCode).wantRedirect(t, ret)
	if got := b.admitted(e, &authcore.GuardPolicy{Token: authcore.GuardAccess, StepUp: true, MaxAge: time.Minute}); got != authcore.NotRefused {
		t.Fatalf("not stepped up: %v", got)
	}
	wantLog(t, e, "stepup", map[string]string{"method": "otp", "result": "success", "credentials_id": "1001"})
}

// Every code error of SPEC §5 is said in plain words.
func TestStepUpCodeErrorsInPlainWords(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	ret := "/app/pay/"
	b.signIn("alice@example.com", ret)
	b.stepUp(ret, "verify-sms", "code", "123456").want(t, http.StatusConflict, "There is no code to check yet. Send a code first.")
	b.stepUp(ret, "send-sms")
	b.stepUp(ret, "send-sms").want(t, http.StatusConflict, "Wait 15 seconds before asking for another one.")
	b.stepUp(ret, "verify-sms").want(t, http.StatusBadRequest, "Enter the code from the text message.")
	for _, want := range []string{
		"That code is not right.", "That code is not right.", "That code is not right.",
		"That code is not right. You have one more try.", "Too many wrong codes. Sign in again to try once more.",
		"Too many wrong codes. Sign in again to try once more.",
	} {
		b.stepUp(ret, "verify-sms", "code", "000000").want(t, http.StatusConflict, want)
	}
	e.clk.Advance(16 * time.Second)
	b.stepUp(ret, "send-sms").want(t, http.StatusConflict, "You have asked for too many codes.")

	fresh := e.browser(t)
	fresh.signIn("alice@example.com", ret)
	fresh.stepUp(ret, "send-sms")
	e.clk.Advance(authcore.DefaultCodeTTL + time.Second)
	fresh.stepUp(ret, "verify-sms", "code", authcore.SandboxCode).want(t, http.StatusConflict, "That code has expired. Send a new one.")

	bob := e.browser(t)
	bob.signIn("bob@example.com", ret)
	bob.stepUpPage(ret).want(t, http.StatusOK, "has no way to confirm it is you")
	bob.stepUp(ret, "send-sms").want(t, http.StatusConflict, "not set up for your account")
	bob.stepUp(ret, "dance").want(t, http.StatusBadRequest)
}

// Push step-up: the waiting page polls, and continues by itself (or with
// the button) once the push is approved; the status is its own session's.
func TestStepUpByPush(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	ret := "/app/pay/"
	b.signIn("alice@example.com", ret)
	started := b.stepUp(ret, "push", "channel", "AUTHY")
	if started.status != http.StatusSeeOther || !strings.HasPrefix(started.header.Get("Location"), "stepup/push?id=") {
		t.Fatalf("push start: %d Location %q", started.status, started.header.Get("Location"))
	}
	loc, _ := url.Parse(started.header.Get("Location"))
	id := loc.Query().Get("id")
	if loc.Query().Get("return") != ret || loc.Query().Get("max_age") != "300" || id == "" {
		t.Fatalf("push start Location %q", loc)
	}
	wait := b.get("/auth/" + loc.String())
	wait.want(t, http.StatusOK, `id="push-status"`, `data-challenge-id="`+id+`"`, `data-status="PENDING"`,
		"Approve the request on your phone", `src="../assets/portal.js"`, `<form id="push-continue" method="post" action="../stepup">`,
		`name="action" value="push-continue"`, `name="id" value="`+id+`"`, `id="signed-in-as"`, `action="../logout"`)
	status := func(bb *browser) reply {
		return bb.get("/auth/stepup/push/status?id="+id, "Accept", "application/json")
	}
	wantStatus(t, status(b), "PENDING")
	other := e.browser(t)
	other.signIn("alice@example.com", ret)
	status(other).want(t, http.StatusNotFound)
	status(e.browser(t)).want(t, http.StatusNotFound)

	cont := url.Values{"csrf": {wait.csrf(t)}, "return": {ret}, "action": {"push-continue"}, "id": {id}}
	b.post("/auth/stepup", cont).want(t, http.StatusOK, "has not been approved yet", `data-status="PENDING"`)
	if _, err := e.gw.StepUp.SimulatePush(t.Context(), "1001", id, authcore.SimulateSuccess); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, status(b), "VERIFIED")
	b.post("/auth/stepup", cont).wantRedirect(t, ret)
	b.get("/auth/"+loc.String()).wantRedirect(t, ret)
	if got := b.admitted(e, &authcore.GuardPolicy{Token: authcore.GuardAccess, StepUp: true}); got != authcore.NotRefused {
		t.Fatalf("not stepped up by the push: %v", got)
	}
	b.get("/auth/stepup/push?id=999&return=%2F").want(t, http.StatusNotFound, "That request is no longer known.")

	declined := e.browser(t)
	declined.signIn("alice@example.com", ret)
	r := declined.stepUp(ret, "push", "channel", "AUTHY")
	dloc, _ := url.Parse(r.header.Get("Location"))
	if _, err := e.gw.StepUp.SimulatePush(t.Context(), "1001", dloc.Query().Get("id"), authcore.SimulateInvalid); err != nil {
		t.Fatal(err)
	}
	declined.get("/auth/"+dloc.String()).want(t, http.StatusOK, `data-status="DECLINED"`, "The request was declined on your phone.")
	b.stepUp(ret, "push", "channel", "AUTHY").want(t, http.StatusConflict, "already approved in this session")
}

func wantStatus(t *testing.T, r reply, status string) {
	t.Helper()
	var body struct {
		Status string `json:"status"`
	}
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &body) != nil || body.Status != status {
		t.Fatalf("push status %d %s, want %s", r.status, r.body, status)
	}
}

// An expired password: the sign-in goes to the password page, nothing
// else takes the session, the policy is said in words, and a change gives
// a fresh session that goes back.
func TestExpiredPassword(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	ret := "/app/"
	b.login("carol@example.com", password, ret).wantRedirect(t, "password?return=%2Fapp%2F")
	old := b.cookie("__Host-authgate")
	if got := b.admitted(e, accessRoute); got != authcore.RefusedPasswordUpdateToken {
		t.Fatalf("the guard on a password-update session: %v", got)
	}
	b.get("/auth/stepup?return=%2Fapp%2F").wantRedirect(t, "password?return=%2Fapp%2F")
	page := b.get("/auth/password?return=%2Fapp%2F")
	page.want(t, http.StatusOK, `<form id="password" method="post" action="password">`,
		`type="password" name="old_password" id="old_password" autocomplete="current-password"`,
		`type="password" name="new_password" id="new_password" autocomplete="new-password"`,
		`<label for="old_password">`, `<label for="new_password">`, `id="password-submit"`,
		"Your password has expired.", `Signed in as carol@example.com`)
	change := func(oldPassword, newPassword string) reply {
		return b.post("/auth/password", url.Values{"csrf": {page.csrf(t)}, "return": {ret},
			"old_password": {oldPassword}, "new_password": {newPassword}})
	}
	for _, tc := range []struct{ old, new, want string }{
		{password, "Sh0rt!", "too short"},
		{password, "Much-Too-Long-Password-12345678", "too long"},
		{password, "alllowercase1!", "needs a lower-case letter, an upper-case letter, a digit and a symbol"},
		{"Wrong-Horse-1", "Brand-New-Pass-2", "Your current password is not right."},
		{password, password, "among your last 5"},
	} {
		change(tc.old, tc.new).want(t, http.StatusConflict, tc.want)
	}
	change("", "").want(t, http.StatusBadRequest, "Enter your current password and a new one.")
	done := change(password, "Brand-New-Pass-2")
	done.wantRedirect(t, ret)
	wantCookieAttributes(t, done.setCookie(t, "__Host-authgate"))
	if fresh := b.cookie("__Host-authgate"); fresh == old || b.admitted(e, accessRoute) != authcore.NotRefused {
		t.Fatal("no fresh, working session after the change")
	}
	if d := e.gw.Guard.DecideBrowser(t.Context(), old, accessRoute); d.Refusal != authcore.RefusedInvalidToken {
		t.Fatalf("the old cookie after the change: %v", d.Refusal)
	}
	wantLog(t, e, "password changed", map[string]string{"credentials_id": "1003"})
}

// Signing out ends the session, clears the cookie and shows the sign-in
// page with a notice.
func TestLogout(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.signIn("alice@example.com", "/app/")
	cookie := b.cookie("__Host-authgate")
	r := b.post("/auth/logout", url.Values{"csrf": {b.stepUpPage("/").csrf(t)}})
	r.wantRedirect(t, "login?signed_out=1")
	line := r.setCookie(t, "__Host-authgate")
	wantCookieAttributes(t, line)
	if !strings.Contains(line, "Max-Age=0") {
		t.Errorf("logout cookie %q does not clear it", line)
	}
	if d := e.gw.Guard.DecideBrowser(t.Context(), cookie, accessRoute); d.Refusal != authcore.RefusedInvalidToken {
		t.Fatalf("the session after logout: %v", d.Refusal)
	}
	b.get("/auth/login?signed_out=1").want(t, http.StatusOK, `<p class="notice" role="status">You have signed out.</p>`)
	wantLog(t, e, "logout", map[string]string{"credentials_id": "1001", "api": "portal"})
	// Without a session there is nothing to end; it still lands on the page.
	e.browser(t).post("/auth/logout", url.Values{}).wantRedirect(t, "login?signed_out=1")
}

// The cookie is no bearer token: the Multi API refuses it.
func TestCookieIsNoBearerTokenOnTheMultiAPI(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.signIn("alice@example.com", "/")
	cookie := b.cookie("__Host-authgate")
	for _, path := range []string{"/multi/identities", "/multi/authentication_factors"} {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+cookie)
		b.do(req).want(t, http.StatusUnauthorized)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/multi/logout", nil)
	req.Header.Set("Authorization", "Bearer "+cookie)
	b.do(req).want(t, http.StatusUnauthorized)
	if got := b.admitted(e, accessRoute); got != authcore.NotRefused {
		t.Errorf("the browser session after the refused calls: %v", got)
	}
}

// On two nodes of one Redis, a browser session is one session: either
// node serves it, and a sign-out on one, or a password change through the
// Multi API on the other, ends it on both by the time it answers.
func TestBrowserSessionsEndOnEveryNode(t *testing.T) {
	a, bNode := newRedisNodes(t)
	b := a.browser(t)
	b.signIn("alice@example.com", "/app/")
	for _, n := range []*env{a, bNode} {
		if got := b.admitted(n, accessRoute); got != authcore.NotRefused {
			t.Fatalf("%s refuses the session: %v", n.srv.URL, got)
		}
	}
	cookie := b.cookie("__Host-authgate")
	b.on(bNode).post("/auth/logout", url.Values{"csrf": {b.on(bNode).stepUpPage("/").csrf(t)}}).wantRedirect(t, "login?signed_out=1")
	for _, n := range []*env{a, bNode} {
		if d := n.gw.Guard.DecideBrowser(t.Context(), cookie, accessRoute); d.Refusal != authcore.RefusedInvalidToken {
			t.Fatalf("%s after the sign-out: %v", n.srv.URL, d.Refusal)
		}
	}

	b.signIn("alice@example.com", "/app/")
	cookie = b.cookie("__Host-authgate")
	for _, n := range []*env{a, bNode} {
		if got := b.admitted(n, accessRoute); got != authcore.NotRefused {
			t.Fatalf("%s refuses the new session: %v", n.srv.URL, got)
		}
	}
	res, err := bNode.gw.Sessions.Login(t.Context(), "alice@example.com", password)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, bNode.srv.URL+"/multi/passwords/update",
		strings.NewReader(`{"oldPassword":{"value":"`+password+`"},"newPassword":{"value":"Brand-New-Pass-2"}}`))
	req.Header.Set("Authorization", "Bearer "+res.Token)
	b.do(req).want(t, http.StatusOK)
	for _, n := range []*env{a, bNode} {
		if d := n.gw.Guard.DecideBrowser(t.Context(), cookie, accessRoute); d.Refusal != authcore.RefusedInvalidToken {
			t.Fatalf("%s after the password change: %v", n.srv.URL, d.Refusal)
		}
	}
	b.get("/auth/stepup?return=%2Fapp%2F").wantRedirect(t, "login?return=%2Fapp%2F")
}

// A store that does not answer is a 503 page, never a sign-in.
func TestStoreOutageIsA503Page(t *testing.T) {
	opts, err := redisstore.Parse("redis://127.0.0.1:1/0")
	if err != nil {
		t.Fatal(err)
	}
	store := redisstore.Open(opts, "down:")
	t.Cleanup(func() { store.Close() })
	e := newNode(t, store, authtest.NewClock(time.Now()))
	b := e.browser(t)
	r := b.login("alice@example.com", password, "/")
	r.want(t, http.StatusServiceUnavailable, "unavailable right now")
	if r.header.Get("Retry-After") != "1" || b.cookie("__Host-authgate") != "" {
		t.Errorf("503 Retry-After %q, cookie %q", r.header.Get("Retry-After"), b.cookie("__Host-authgate"))
	}
	u, _ := url.Parse(e.srv.URL)
	b.jar.SetCookies(u, []*http.Cookie{{Name: "__Host-authgate", Value: strings.Repeat("a", 22) + "." + strings.Repeat("b", 22), Path: "/"}})
	b.get("/auth/stepup?return=%2F").want(t, http.StatusServiceUnavailable, "unavailable right now")
	b.get("/auth/stepup/push/status?id=1").want(t, http.StatusServiceUnavailable)
}
