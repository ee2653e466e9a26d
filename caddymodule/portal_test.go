package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/portal"
	"github.com/authgate/authgate/authcore/store/memory"
)

const portalTestPassword = "Portal-Pass-1"

// portalGuard is an authgate_protect of a route behind the portal
// mounted at /auth, over a core with one user, and the cookie values of
// a fresh browser session and of an expired password's.
func portalGuard(t *testing.T, c GuardConfig) (*Guard, *authcore.Services) {
	t.Helper()
	store := memory.New(nil)
	t.Cleanup(func() { store.Close() })
	hash, _ := bcrypt.GenerateFromPassword([]byte(portalTestPassword), bcrypt.MinCost)
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	users, _ := authcore.NewStaticUsers([]authcore.User{
		{ID: "1001", CredentialsType: "ROOT", Email: "a@example.com", Password: string(hash),
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2001"}}},
		{ID: "1003", CredentialsType: "ROOT", Email: "c@example.com", Password: string(hash), PasswordExpires: &past,
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2003"}}},
	})
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	gw, err := authcore.New(authcore.Options{Store: store, Users: users, Tokens: authcore.NewTokens("t", key, time.Now),
		RateLimits: map[string]authcore.RateLimit{}})
	if err != nil {
		t.Fatal(err)
	}
	g := &Guard{GuardConfig: c}
	g.app = &App{services: gw}
	g.policy = authcore.GuardPolicy{Token: authcore.GuardAccess, StepUp: c.StepUp, MaxAge: time.Duration(c.StepUpMaxAge),
		StepUpMethods: c.StepUpMethods}
	g.headers = authcore.NewIdentityHeaders(authcore.DefaultHeaderPrefix)
	g.logger = caddy.Log()
	g.portal, g.cookies = c.Portal, portal.NewCookies("")
	return g, gw
}

func browserCookie(t *testing.T, gw *authcore.Services, email string) string {
	t.Helper()
	res, err := gw.Sessions.LoginBrowser(context.Background(), email, portalTestPassword)
	if err != nil {
		t.Fatal(err)
	}
	return res.Cookie
}

// guarded is what a request through the guard came to: the answer, and
// the request the backend got (nil when it was not called).
type guarded struct {
	rec     *httptest.ResponseRecorder
	backend *http.Request
}

func serveGuard(t *testing.T, g *Guard, r *http.Request) guarded {
	t.Helper()
	var out guarded
	out.rec = httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		out.backend = r
		return nil
	})
	if err := g.ServeHTTP(out.rec, r, next); err != nil {
		t.Fatal(err)
	}
	return out
}

func navigation(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	return r
}

// With portal, browser navigations that cannot pass go to the portal's
// pages, coming back to where they were; everything else keeps the
// guard's API answers.
func TestGuardSendsBrowsersToThePortal(t *testing.T) {
	g, gw := portalGuard(t, GuardConfig{Portal: "/auth", StepUp: true, StepUpMaxAge: caddy.Duration(5 * time.Minute)})
	fresh := browserCookie(t, gw, "a@example.com")
	expired := browserCookie(t, gw, "c@example.com")
	api, _ := gw.Sessions.Login(context.Background(), "a@example.com", portalTestPassword)
	access, _ := gw.Sessions.AccessToken(context.Background(), api.Session, authcore.IdentityRef{Type: "CONSUMER", ID: "2001"})
	withCookie := func(r *http.Request, v string) *http.Request {
		r.AddCookie(&http.Cookie{Name: "__Host-authgate", Value: v})
		return r
	}
	json := func(r *http.Request) *http.Request {
		r.Header.Set("Accept", "application/json")
		return r
	}
	bearer := func(r *http.Request, tok string) *http.Request {
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	for name, tc := range map[string]struct {
		req      *http.Request
		status   int
		location string
		body     string
	}{
		"no session":              {navigation("GET", "/app/pay/x?a=1&b=2"), 302, "/auth/login?return=%2Fapp%2Fpay%2Fx%3Fa%3D1%26b%3D2", ""},
		"HEAD":                    {navigation("HEAD", "/app/pay/"), 302, "/auth/login?return=%2Fapp%2Fpay%2F", ""},
		"a dead cookie":           {withCookie(navigation("GET", "/app/pay/"), strings.Repeat("a", 22)+"."+strings.Repeat("b", 22)), 302, "/auth/login?return=%2Fapp%2Fpay%2F", ""},
		"not stepped up":          {withCookie(navigation("GET", "/app/pay/"), fresh), 302, "/auth/stepup?return=%2Fapp%2Fpay%2F&max_age=300", ""},
		"expired password":        {withCookie(navigation("GET", "/app/pay/"), expired), 302, "/auth/password?return=%2Fapp%2Fpay%2F", ""},
		"XHR without session":     {json(httptest.NewRequest("GET", "/app/pay/", nil)), 401, "", `"message"`},
		"XHR not stepped up":      {json(withCookie(httptest.NewRequest("GET", "/app/pay/", nil), fresh)), 403, "", `"STEP_UP_REQUIRED"`},
		"POST without session":    {navigation("POST", "/app/pay/"), 401, "", `"message"`},
		"bearer not stepped up":   {bearer(navigation("GET", "/app/pay/"), access), 403, "", `"STEP_UP_REQUIRED"`},
		"bad bearer, good cookie": {bearer(withCookie(navigation("GET", "/app/pay/"), fresh), "junk"), 401, "", `"message"`},
	} {
		out := serveGuard(t, g, tc.req)
		if out.rec.Code != tc.status || out.rec.Header().Get("Location") != tc.location || !strings.Contains(out.rec.Body.String(), tc.body) {
			t.Errorf("%s: %d Location %q %s, want %d %q %s", name, out.rec.Code, out.rec.Header().Get("Location"),
				out.rec.Body, tc.status, tc.location, tc.body)
		}
		if out.backend != nil {
			t.Errorf("%s: the backend was called", name)
		}
	}
}

// A route that counts only some step-up methods names them to the
// portal's step-up page, which offers only those.
func TestGuardNamesTheStepUpMethodsToThePortal(t *testing.T) {
	g, gw := portalGuard(t, GuardConfig{Portal: "/auth", StepUp: true, StepUpMaxAge: caddy.Duration(5 * time.Minute),
		StepUpMethods: []string{authcore.StepUpPasskey}})
	cookie := browserCookie(t, gw, "a@example.com")
	want := "/auth/stepup?return=%2Fapi%2Ftransfers%2F1&max_age=300&methods=passkey"
	req := navigation("GET", "/api/transfers/1")
	req.AddCookie(&http.Cookie{Name: "__Host-authgate", Value: cookie})
	if out := serveGuard(t, g, req); out.rec.Code != 302 || out.rec.Header().Get("Location") != want {
		t.Fatalf("%d Location %q, want 302 to %q", out.rec.Code, out.rec.Header().Get("Location"), want)
	}
}

// An admitted browser gets the identity headers, and the backend never
// sees authgate's cookies; its own pass untouched.
func TestGuardAdmitsTheCookieAndStripsIt(t *testing.T) {
	g, gw := portalGuard(t, GuardConfig{Portal: "/auth"})
	cookie := browserCookie(t, gw, "a@example.com")
	r := navigation("GET", "/app/")
	r.Header.Add("Cookie", "theme=dark; __Host-authgate="+cookie+"; __Host-authgate-pre=x; lang=en")
	r.Header.Add("Cookie", "__Host-authgate-pre=y")
	r.Header.Set("X-Authgate-Credentials-Id", "9999")
	out := serveGuard(t, g, r)
	if out.backend == nil {
		t.Fatalf("not admitted: %d %s", out.rec.Code, out.rec.Body)
	}
	h := out.backend.Header
	if got := h.Values("Cookie"); len(got) != 1 || got[0] != "theme=dark; lang=en" {
		t.Errorf("the backend got Cookie %q, want only its own cookies", got)
	}
	for name, want := range map[string]string{"X-Authgate-Credentials-Id": "1001", "X-Authgate-Identity-Type": "CONSUMER",
		"X-Authgate-Identity-Id": "2001", "X-Authgate-Credentials-Type": "ROOT", "X-Authgate-Stepped-Up": "false"} {
		if got := h.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	only := navigation("GET", "/app/")
	only.AddCookie(&http.Cookie{Name: "__Host-authgate", Value: cookie})
	if out := serveGuard(t, g, only); out.backend == nil || out.backend.Header["Cookie"] != nil {
		t.Errorf("a Cookie header left empty is kept: %v", out.backend)
	}
}

// Bearer first: a request with a token is decided by the token, whatever
// cookie it carries; and a route without portal reads no cookie.
func TestGuardReadsTheCookieOnlyWithoutABearerOnPortalRoutes(t *testing.T) {
	g, gw := portalGuard(t, GuardConfig{})
	cookie := browserCookie(t, gw, "a@example.com")
	r := navigation("GET", "/api/x")
	r.AddCookie(&http.Cookie{Name: "__Host-authgate", Value: cookie})
	if out := serveGuard(t, g, r); out.rec.Code != http.StatusUnauthorized || out.rec.Header().Get("Location") != "" {
		t.Errorf("a route without portal: %d Location %q, want the 401 of no token", out.rec.Code, out.rec.Header().Get("Location"))
	}
	if err := (&Provider{GuardConfig: GuardConfig{Portal: "/auth"}}).Validate(); err == nil || !strings.Contains(err.Error(), "portal") {
		t.Errorf("the provider with portal: %v", err)
	}
	for _, bad := range []string{"auth", "/auth/", "/a?b", "/a b"} {
		if err := (GuardConfig{Portal: bad}).validate(); err == nil {
			t.Errorf("portal %q accepted", bad)
		}
	}
}
