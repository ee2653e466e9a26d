package main

// Passkeys in a real browser (SPEC §14): headless Chromium with a DevTools
// virtual authenticator (the WebAuthn domain) enrols a passkey in the
// portal and steps up with it on a `stepup 5m passkey` route, which an
// SMS step-up does not open. The authenticator is a platform one with
// user verification, as a phone's or a laptop's would be.

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// passkeyPortalConfig is portalConfig with the passkeys option for the
// gateway's own origin and a transfers route that counts only a passkey
// step-up, as in Caddyfile.example.
func passkeyPortalConfig(users, app string) string {
	cfg := portalConfig(users, app)
	cfg = strings.Replace(cfg, "\t\tsandbox\n", "\t\tsandbox\n\t\tpasskeys localhost http://localhost:{PORT}\n", 1)
	return strings.Replace(cfg, "\thandle /app/pay/* {", `	handle /api/transfers/* {
		authgate_protect {
			portal /auth
			stepup 5m passkey
		}
		reverse_proxy `+app+`
	}
	handle /app/pay/* {`, 1)
}

// virtualAuthenticator gives the browser's tab a platform authenticator
// that verifies its user, and returns its id.
func (b *browser) virtualAuthenticator() webauthn.AuthenticatorID {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		b.t.Fatalf("WebAuthn.enable: %v", err)
	}
	res, err := chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
			IsUserVerified: true, AutomaticPresenceSimulation: true,
		}})
	if err != nil {
		b.t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return res.AuthenticatorID
}

// credentials are the passkeys the virtual authenticator holds.
func (b *browser) credentials(id webauthn.AuthenticatorID) []*webauthn.Credential {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		b.t.Fatalf("WebAuthn.getCredentials: %v", err)
	}
	return res.Credentials
}

// click clicks the element sel (a button that runs a script, not a form
// submit).
func (b *browser) click(sel string) {
	b.t.Helper()
	b.element(sel, "el.tagName")
	must(b, "clicking "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// waitForText waits until the element sel shows want, and saves a
// screenshot.
func (b *browser) waitForText(sel, want string) {
	b.t.Helper()
	js := `(() => { const el = document.querySelector(` + jsString(sel) + `); return el ? el.innerText.trim() : ""; })()`
	waitUntil(b.t, sel+" to show "+want, func() bool {
		got, err := attempt(b, chromedp.Evaluate[string](js))
		return err == nil && got == want
	})
	b.shot(sel + " shows " + want)
}

func TestPasskeyInABrowser(t *testing.T) {
	chromium := chromiumPath(t)
	g := startGateway(t, passkeyPortalConfig(lhUsersFile(t, demoHash), newAppBackend(t)))
	base := strings.Replace(g.URL, "127.0.0.1", "localhost", 1)
	b := newBrowser(t, chromium, base)
	auth := b.virtualAuthenticator()

	// A transfer needs a passkey, and alice has none yet: the step-up page
	// says so and offers no SMS code or push, which would not count.
	b.open("/api/transfers/1")
	b.at("/auth/login", 200)
	b.login("alice@example.com", demoPassword)
	q := b.at("/auth/stepup", 200)
	if q.Get("return") != "/api/transfers/1" || q.Get("max_age") != "300" || q.Get("methods") != "passkey" {
		t.Fatalf("the guard sent the browser to step up with %v, want return /api/transfers/1, max_age 300, methods passkey", q)
	}
	b.wantText(`p.error[role="alert"]`, "This page needs you to confirm it is you with a passkey, and your account has none yet.")
	if strings.Contains(b.pageText(), "text message") {
		t.Fatalf("the passkey-only step-up page offers an SMS code:\n%s", b.pageText())
	}

	// Adding one needs a step-up, by SMS here, which comes back to the
	// passkeys page.
	b.navigate("add a passkey", chromedp.Click(chromedp.CSS("#passkey-add-link")))
	if u, err := url.Parse(b.at("/auth/stepup", 200).Get("return")); err != nil || u.Path != "/auth/passkeys" ||
		u.Query().Get("return") != "/api/transfers/1" {
		t.Fatalf("the passkeys page sent the browser to step up with return %v (%v)", u, err)
	}
	b.submit("#sms-send")
	b.fill("#code", "123456")
	b.submit("#sms-verify")
	b.at("/auth/passkeys", 200)
	b.wantText("#passkey-none", "You have no passkey yet.")
	b.click("#passkey-start")
	b.waitForText("p.notice", "Passkey added. You can use it to confirm it is you.")
	creds := b.credentials(auth)
	if len(creds) != 1 || creds[0].RpID != "localhost" {
		t.Fatalf("the authenticator holds %d credentials (%+v), want one for localhost", len(creds), creds)
	}
	b.element("#passkey-list li", "el.tagName")

	// The SMS step-up did not open the transfer; the passkey does.
	b.navigate("continue", chromedp.Click(chromedp.CSS("#continue")))
	b.at("/auth/stepup", 200)
	b.wantText("#intro", "This page needs you to confirm it is you with a passkey.")
	b.click("#passkey-start")
	b.waitFor("/api/transfers/1")
	b.at("/api/transfers/1", 200)
	b.wantText("#whoami", "Signed in as credentials 1001 (CONSUMER 2001)")
	b.wantText("#stepped-up", "stepped up: true")
	if creds := b.credentials(auth); len(creds) != 1 || creds[0].SignCount < 1 {
		t.Fatalf("after the step-up the authenticator holds %+v, want one credential used at least once", creds)
	}

}
