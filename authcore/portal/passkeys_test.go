package portal_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/authtest"
)

const (
	rpID   = "bank.example"
	origin = "https://bank.example"
)

// withPasskeys is the passkeys option of the tests.
func withPasskeys(o *authcore.Options) {
	o.Passkeys = &authcore.PasskeyConfig{RPID: rpID, Origins: []string{origin}}
}

// passkeyRoute counts only a passkey step-up, as `stepup 5m passkey` does.
var passkeyRoute = &authcore.GuardPolicy{Token: authcore.GuardAccess, StepUp: true, StepUpMethods: []string{authcore.StepUpPasskey}}

// ceremony posts a ceremony's form (the CSRF token of page and fields) to
// path, as passkey.js does, and decodes the JSON answer.
func (b *browser) ceremony(path string, page reply, fields ...string) (reply, map[string]json.RawMessage) {
	b.t.Helper()
	form := url.Values{"csrf": {page.csrf(b.t)}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	r := b.post(path, form, "Accept", "application/json", "Origin", b.e.srv.URL, "Sec-Fetch-Site", "same-origin")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		b.t.Fatalf("%s answered %d with Content-Type %q:\n%s", path, r.status, ct, r.body)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		b.t.Fatalf("%s: %v in %s", path, err, r.body)
	}
	return r, body
}

// wantMessage checks a ceremony's refusal: status and its words.
func wantMessage(t *testing.T, r reply, body map[string]json.RawMessage, status int, words string) {
	t.Helper()
	var msg string
	_ = json.Unmarshal(body["message"], &msg)
	if r.status != status || !strings.Contains(msg, words) {
		t.Fatalf("%d %s, want %d with a message saying %q", r.status, r.body, status, words)
	}
}

// location is where a finished ceremony sends the browser.
func location(t *testing.T, r reply, body map[string]json.RawMessage) string {
	t.Helper()
	var loc string
	if r.status != http.StatusOK || json.Unmarshal(body["location"], &loc) != nil || loc == "" {
		t.Fatalf("%d %s, want 200 with a location", r.status, r.body)
	}
	return loc
}

// The whole browser journey of SPEC §14 on one node, on each store: a
// route that counts only a passkey sends alice, who has none, to add one;
// adding one needs a step-up (by SMS), which does not open the route;
// then her passkey does.
func TestPasskeyInThePortal(t *testing.T) {
	for name, node := range map[string]func(t *testing.T) *env{
		"memory": func(t *testing.T) *env { return newEnv(t, withPasskeys) },
		"redis":  func(t *testing.T) *env { e, _ := newRedisNodes(t, withPasskeys); return e },
	} {
		t.Run(name, func(t *testing.T) {
			e := node(t)
			b := e.browser(t)
			ret := "/api/transfers/1"
			stepUp := "/auth/stepup?return=" + url.QueryEscape(ret) + "&max_age=300&methods=passkey"
			b.signIn("alice@example.com", ret)

			// No passkey yet: the page says so, offers no SMS or push (they
			// would not open the route), and links to the passkeys page.
			page := b.get(stepUp)
			page.want(t, http.StatusOK, "This page needs you to confirm it is you with a passkey, and your account has none yet.",
				`<a id="passkey-add-link" href="passkeys?return=%2fapi%2ftransfers%2f1">Add a passkey</a>`)
			for _, absent := range []string{`id="sms-send"`, `id="push-start"`, `id="passkey-start"`} {
				if strings.Contains(page.body, absent) {
					t.Fatalf("the passkey-only step-up page offers %s:\n%s", absent, page.body)
				}
			}

			// The passkeys page needs a step-up first, and comes back.
			passkeys := "/auth/passkeys?return=" + url.QueryEscape(ret)
			b.get(passkeys).wantRedirect(t, "stepup?return="+url.QueryEscape(passkeys))
			b.stepUp(passkeys, "send-sms")
			b.stepUp(passkeys, "verify-sms", "code", authcore.SandboxCode).wantRedirect(t, passkeys)
			if got := b.admitted(e, passkeyRoute); got != authcore.RefusedStepUpRequired {
				t.Fatalf("an SMS step-up opened a passkey route: %v", got)
			}

			page = b.get(passkeys)
			page.want(t, http.StatusOK, `<p id="passkey-none">You have no passkey yet.</p>`, `data-ceremony="create"`,
				`data-options-url="passkeys/options"`, `data-finish-url="passkeys"`, `<button type="button" id="passkey-start">Add a passkey</button>`,
				`<script src="assets/passkey.js" defer></script>`, `<a id="continue" href="/api/transfers/1">Continue</a>`)
			key := authtest.NewSoftKey(t, rpID, origin)
			r, body := b.ceremony("/auth/passkeys/options", page)
			if r.status != http.StatusOK || body["publicKey"] == nil {
				t.Fatalf("creation options: %d %s", r.status, r.body)
			}
			r, body = b.ceremony("/auth/passkeys", page, "return", ret, "credential", string(key.Attest(t, body["publicKey"])))
			done := location(t, r, body)
			if done != "passkeys?return=%2Fapi%2Ftransfers%2F1&done=added" {
				t.Fatalf("after enrolment the browser goes to %q", done)
			}
			id := authcore.PasskeyID(key.ID)
			b.get("/auth/"+done).want(t, http.StatusOK, "Passkey added.", `<ul id="passkey-list">`, `name="id" value="`+id+`"`)

			// Now the step-up page offers her passkey, and only it.
			page = b.get(stepUp)
			page.want(t, http.StatusOK, `<p id="intro">This page needs you to confirm it is you with a passkey.</p>`,
				`data-ceremony="get"`, `data-options-url="stepup/passkey/options"`, `data-finish-url="stepup/passkey"`,
				`<button type="button" id="passkey-start">Use a passkey</button>`, `<script src="assets/passkey.js" defer></script>`)
			r, body = b.ceremony("/auth/stepup/passkey/options", page)
			if r.status != http.StatusOK || body["publicKey"] == nil {
				t.Fatalf("request options: %d %s", r.status, r.body)
			}
			assertion := string(key.Assert(t, body["publicKey"], "1001"))
			r, body = b.ceremony("/auth/stepup/passkey", page, "return", ret, "credential", assertion)
			if loc := location(t, r, body); loc != ret {
				t.Fatalf("after the step-up the browser goes to %q, want %q", loc, ret)
			}
			if got := b.admitted(e, passkeyRoute); got != authcore.NotRefused {
				t.Fatalf("a passkey step-up did not open the passkey route: %v", got)
			}
			wantLog(t, e, "factor enrolled", map[string]string{"type": "PASSKEY", "channel": id, "credentials_id": "1001"})
			wantLog(t, e, "stepup", map[string]string{"method": "passkey", "result": "success", "credentials_id": "1001"})

			// The same assertion again: its challenge was used.
			r, body = b.ceremony("/auth/stepup/passkey", page, "return", ret, "credential", assertion)
			wantMessage(t, r, body, http.StatusConflict, "expired or was already answered")
		})
	}
}

// Every refusal of a ceremony's POST is JSON in words: no session, a
// forged form, no answer, a wrong answer, no passkeys option.
func TestPasskeyCeremonyRefusals(t *testing.T) {
	e := newEnv(t, withPasskeys)
	b := e.browser(t)
	ret := "/api/transfers/1"
	b.signIn("alice@example.com", ret)
	page := b.stepUpPage(ret)

	r, body := b.ceremony("/auth/passkeys/options", page)
	wantMessage(t, r, body, http.StatusForbidden, "Confirm it is you before you change your passkeys.")
	r, body = b.ceremony("/auth/stepup/passkey/options", page)
	wantMessage(t, r, body, http.StatusConflict, "expired or was already answered")

	forged := reply{body: `name="csrf" value="forged"`}
	r, body = b.ceremony("/auth/stepup/passkey/options", forged)
	wantMessage(t, r, body, http.StatusForbidden, "This form has expired or was not sent from this site.")

	b.stepUp(ret, "send-sms")
	b.stepUp(ret, "verify-sms", "code", authcore.SandboxCode).wantRedirect(t, ret)
	page = b.get("/auth/passkeys?return=" + url.QueryEscape(ret))
	r, body = b.ceremony("/auth/passkeys", page, "return", ret)
	wantMessage(t, r, body, http.StatusBadRequest, "The form could not be read.")
	r, body = b.ceremony("/auth/passkeys", page, "return", ret, "credential", "{}")
	wantMessage(t, r, body, http.StatusConflict, "expired or was already answered")

	// An attestation from another origin (a phishing site's page).
	_, body = b.ceremony("/auth/passkeys/options", page)
	phished := authtest.NewSoftKey(t, rpID, "https://bank.example.evil")
	r, body = b.ceremony("/auth/passkeys", page, "return", ret, "credential", string(phished.Attest(t, body["publicKey"])))
	wantMessage(t, r, body, http.StatusConflict, "That passkey could not be added")

	// Removing an unknown passkey, then a known one.
	form := url.Values{"csrf": {page.csrf(t)}, "return": {ret}, "id": {"nope"}}
	b.post("/auth/passkeys/delete", form).want(t, http.StatusNotFound, "That passkey is not one of yours.")
	key := authtest.NewSoftKey(t, rpID, origin)
	_, body = b.ceremony("/auth/passkeys/options", page)
	r, body = b.ceremony("/auth/passkeys", page, "return", ret, "credential", string(key.Attest(t, body["publicKey"])))
	location(t, r, body)
	form.Set("id", authcore.PasskeyID(key.ID))
	b.post("/auth/passkeys/delete", form).wantRedirect(t, "../passkeys?return=%2Fapi%2Ftransfers%2F1&done=removed")
	b.get("/auth/passkeys?return="+url.QueryEscape(ret)+"&done=removed").want(t, http.StatusOK, "Passkey removed.", `id="passkey-none"`)

	// Signed out: the session has ended.
	b.post("/auth/logout", url.Values{"csrf": {page.csrf(t)}})
	r, body = b.ceremony("/auth/stepup/passkey/options", page)
	wantMessage(t, r, body, http.StatusUnauthorized, "Your session has ended.")

	// Without the passkeys option there is no passkey anywhere.
	plain := newEnv(t)
	pb := plain.browser(t)
	pb.signIn("alice@example.com", ret)
	if p := pb.stepUpPage(ret); strings.Contains(p.body, "passkey") {
		t.Fatalf("a portal without passkeys mentions them:\n%s", p.body)
	}
	pb.get("/auth/passkeys").want(t, http.StatusNotFound, "There is no such page.")
	r, body = pb.ceremony("/auth/stepup/passkey/options", pb.stepUpPage(ret))
	wantMessage(t, r, body, http.StatusNotFound, "There is no such page.")
}
