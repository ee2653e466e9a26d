package authcore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
)

// A browser login opens a store session of kind browser whose cookie is
// the session id and a secret the store keeps only as a digest; the
// cookie authenticates it, and only it.
func TestBrowserLoginOpensACookieSession(t *testing.T) {
	gw, _, store := newTestServices(t)
	ctx := authcore.WithUserAgent(authcore.WithRequestInfo(context.Background(), "ref", "203.0.113.9"), "Test/1.0\x01 Browser")
	res, err := gw.Sessions.LoginBrowser(ctx, "alice@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	id, secret, ok := strings.Cut(res.Cookie, ".")
	if !ok || id != res.Session.ID || len(secret) != 22 {
		t.Fatalf("cookie %q: want <session id>.<22-character secret>", res.Cookie)
	}
	stored, err := store.TouchSession(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Kind != authcore.KindBrowser || stored.ClientIP != "203.0.113.9" || stored.UserAgent != "Test/1.0 Browser" {
		t.Errorf("stored kind %q, client %q, user agent %q", stored.Kind, stored.ClientIP, stored.UserAgent)
	}
	if stored.SecretHash == "" || strings.Contains(stored.SecretHash, secret) {
		t.Errorf("stored secret hash %q: want a digest, not the secret", stored.SecretHash)
	}
	sess, err := gw.Sessions.AuthenticateBrowser(ctx, res.Cookie)
	if err != nil || sess.ID != id || sess.CredentialsID != "1001" {
		t.Fatalf("AuthenticateBrowser = %v, %v", sess, err)
	}
	for name, cookie := range map[string]string{
		"empty":          "",
		"no secret":      id,
		"wrong secret":   id + "." + strings.Repeat("A", 22),
		"short secret":   id + ".abc",
		"unknown id":     strings.Repeat("B", 22) + "." + secret,
		"a JWT":          "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
		"odd characters": id + "." + strings.Repeat("{", 22),
	} {
		if _, err := gw.Sessions.AuthenticateBrowser(ctx, cookie); !errors.Is(err, authcore.ErrInvalidToken) {
			t.Errorf("%s: error %v, want ErrInvalidToken", name, err)
		}
	}
}

// API and browser sessions do not stand in for each other: an API
// session's id with any secret is no cookie.
func TestAnAPISessionIsNoBrowserSession(t *testing.T) {
	gw, _, _ := newTestServices(t)
	ctx := context.Background()
	res, err := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if res.Session.Kind != authcore.KindAPI {
		t.Errorf("API login kind %q", res.Session.Kind)
	}
	if _, err := gw.Sessions.AuthenticateBrowser(ctx, res.Session.ID+"."+strings.Repeat("A", 22)); !errors.Is(err, authcore.ErrInvalidToken) {
		t.Errorf("an API session as a cookie: %v, want ErrInvalidToken", err)
	}
}

// A browser session keeps the idle window and the absolute lifetime of
// every session.
func TestBrowserSessionExpiresLikeAnyOther(t *testing.T) {
	gw, clk, _ := newTestServices(t)
	ctx := context.Background()
	res, err := gw.Sessions.LoginBrowser(ctx, "alice@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 { // 20 × 4m = 80m: past session_max (1h), never idle 5m
		clk.Advance(4 * time.Minute)
		if _, err := gw.Sessions.AuthenticateBrowser(ctx, res.Cookie); err != nil {
			if clk.Now().Sub(res.Session.Created) < time.Hour {
				t.Fatalf("ended after %s: %v", clk.Now().Sub(res.Session.Created), err)
			}
			if !errors.Is(err, authcore.ErrInvalidToken) {
				t.Fatalf("past session_max: %v, want ErrInvalidToken", err)
			}
			break
		}
		if clk.Now().Sub(res.Session.Created) >= time.Hour {
			t.Fatal("admitted past session_max")
		}
	}
	idle, err := gw.Sessions.LoginBrowser(ctx, "alice@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(5*time.Minute + time.Second)
	if _, err := gw.Sessions.AuthenticateBrowser(ctx, idle.Cookie); !errors.Is(err, authcore.ErrInvalidToken) {
		t.Fatalf("after the idle window: %v, want ErrInvalidToken", err)
	}
}

// An expired password opens a password-update-only browser session: only
// the password pages take it, and a change gives a fresh browser session
// (a cookie, no token) and ends the old one.
func TestBrowserLoginWithAnExpiredPassword(t *testing.T) {
	gw, _, _ := newTestServices(t)
	ctx := context.Background()
	res, err := gw.Sessions.LoginBrowser(ctx, "carol@example.com", testPassword)
	if err != nil || !res.Session.PasswordUpdateOnly {
		t.Fatalf("LoginBrowser = %+v, %v; want a password-update-only session", res, err)
	}
	if _, err := gw.Sessions.AuthenticateBrowser(ctx, res.Cookie); !errors.Is(err, authcore.ErrPasswordUpdateSession) {
		t.Fatalf("AuthenticateBrowser: %v, want ErrPasswordUpdateSession", err)
	}
	sess, err := gw.Sessions.AuthenticateBrowserPasswordUpdate(ctx, res.Cookie)
	if err != nil {
		t.Fatal(err)
	}
	change, err := gw.Passwords.Change(ctx, sess, testPassword, "New-Horse-2!")
	if err != nil {
		t.Fatal(err)
	}
	if change.Cookie == "" || change.Token != "" || change.Session.Kind != authcore.KindBrowser {
		t.Fatalf("change = cookie %q, token %q, kind %q; want a browser session", change.Cookie, change.Token, change.Session.Kind)
	}
	if _, err := gw.Sessions.AuthenticateBrowser(ctx, change.Cookie); err != nil {
		t.Fatalf("the fresh cookie: %v", err)
	}
	if _, err := gw.Sessions.AuthenticateBrowserPasswordUpdate(ctx, res.Cookie); !errors.Is(err, authcore.ErrInvalidToken) {
		t.Fatalf("the old cookie after the change: %v, want ErrInvalidToken", err)
	}
}

// The guard admits a browser session as an ACCESS token of its login
// identity, with the route's step-up and type demands.
func TestGuardDecidesFromTheBrowserCookie(t *testing.T) {
	gw, clk, _ := newTestServices(t)
	ctx := context.Background()
	res, err := gw.Sessions.LoginBrowser(ctx, "alice@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	access := &authcore.GuardPolicy{Token: authcore.GuardAccess}
	d := gw.Guard.DecideBrowser(ctx, res.Cookie, access)
	if !d.Admitted() || d.Claims.Subject != "1001" || d.Claims.TokenType != authcore.TokenAccess ||
		d.Claims.Identity != (authcore.IdentityRef{Type: "CONSUMER", ID: "2001"}) || d.SteppedUp() {
		t.Fatalf("decision %+v, claims %+v", d, d.Claims)
	}
	for name, tc := range map[string]struct {
		cookie string
		policy *authcore.GuardPolicy
		want   authcore.Refusal
	}{
		"no cookie":      {"", access, authcore.RefusedNoToken},
		"forged cookie":  {res.Session.ID + "." + strings.Repeat("x", 22), access, authcore.RefusedInvalidToken},
		"step-up":        {res.Cookie, &authcore.GuardPolicy{Token: authcore.GuardAccess, StepUp: true, MaxAge: time.Minute}, authcore.RefusedStepUpRequired},
		"corporate only": {res.Cookie, &authcore.GuardPolicy{Token: authcore.GuardAccess, IdentityType: "CORPORATE"}, authcore.RefusedInsufficientPermissions},
	} {
		if d := gw.Guard.DecideBrowser(ctx, tc.cookie, tc.policy); d.Refusal != tc.want {
			t.Errorf("%s: %v, want %v", name, d.Refusal, tc.want)
		}
	}
	expired, _ := gw.Sessions.LoginBrowser(ctx, "carol@example.com", testPassword)
	if d := gw.Guard.DecideBrowser(ctx, expired.Cookie, access); d.Refusal != authcore.RefusedPasswordUpdateToken {
		t.Errorf("expired password: %v, want RefusedPasswordUpdateToken", d.Refusal)
	}
	clk.Advance(time.Hour)
	if d := gw.Guard.DecideBrowser(ctx, res.Cookie, access); d.Refusal != authcore.RefusedInvalidToken {
		t.Errorf("after session_max: %v, want RefusedInvalidToken", d.Refusal)
	}
}

// CSRF tokens are bound to what they were made for and compared in full.
func TestCSRFTokensAreBound(t *testing.T) {
	a := authcore.NewCSRF([]byte(strings.Repeat("a", 32)))
	b := authcore.NewCSRF([]byte(strings.Repeat("b", 32)))
	s1, s2 := &authcore.Session{ID: "one"}, &authcore.Session{ID: "two"}
	pre := a.NewPreSession()
	if !a.ValidPreSession(pre) || a.ValidPreSession("x") {
		t.Fatal("pre-session values are not recognised")
	}
	for name, tc := range map[string]struct {
		expected, submitted string
		want                bool
	}{
		"same session":          {a.ForSession(s1), a.ForSession(s1), true},
		"another node, one key": {a.ForSession(s1), authcore.NewCSRF([]byte(strings.Repeat("a", 32))).ForSession(s1), true},
		"other session":         {a.ForSession(s1), a.ForSession(s2), false},
		"other key":             {a.ForSession(s1), b.ForSession(s1), false},
		"pre-session":           {a.ForPreSession(pre), a.ForPreSession(pre), true},
		"session for pre":       {a.ForPreSession(s1.ID), a.ForSession(s1), false},
		"empty":                 {a.ForSession(s1), "", false},
		"prefix":                {a.ForSession(s1), a.ForSession(s1)[:10], false},
	} {
		if got := a.Valid(tc.expected, tc.submitted); got != tc.want {
			t.Errorf("%s: Valid = %v, want %v", name, got, tc.want)
		}
	}
}

// Portal logins count under their own label.
func TestMetricsCountPortalLogins(t *testing.T) {
	m := &recordingMetrics{}
	gw, _, _ := newTestServicesWith(t, func(o *authcore.Options) { o.Metrics = m })
	ctx := context.Background()
	_, _ = gw.Sessions.LoginBrowser(ctx, "alice@example.com", "wrong")
	_, _ = gw.Sessions.LoginBrowser(ctx, "alice@example.com", testPassword)
	_, _ = gw.Sessions.LoginBrowser(ctx, "carol@example.com", testPassword)
	_, _ = gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	for k, want := range map[string]int{
		"login:portal:invalid_credentials": 1, "login:portal:success": 1, "login:portal:password_expired": 1,
		"login:multi:success": 1,
	} {
		if got := m.counts[k]; got != want {
			t.Errorf("%s = %d, want %d (all: %v)", k, got, want, m.counts)
		}
	}
}

// Sessions stored before kinds were recorded (format s1) still load, as
// API sessions.
func TestSessionsOfTheFormerFormatStillLoad(t *testing.T) {
	s, err := authcore.UnmarshalSession("id", []byte("s1|1001|ROOT|CONSUMER|2001|1000|2000|3000|0||false"))
	if err != nil {
		t.Fatal(err)
	}
	if s.CredentialsID != "1001" || s.Kind != "" || s.Expires.UnixMilli() != 3000 {
		t.Errorf("decoded %+v", s)
	}
	for _, bad := range []string{
		"s1|1001|ROOT|CONSUMER|2001|1000|2000|3000|0||false|browser",
		"s2|1001|ROOT|CONSUMER|2001|1000|2000|3000|0||false",
		"s2|1001|ROOT|CONSUMER|2001|1000|2000|3000|0||false|robot|||",
		"s3|1001|ROOT|CONSUMER|2001|1000|2000|3000|0||false|api|||",
	} {
		if _, err := authcore.UnmarshalSession("id", []byte(bad)); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}
