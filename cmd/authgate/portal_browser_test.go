package main

// The browser portal end to end (SPEC §12): a real headless Chromium, driven
// with chromedp, signs in, steps up and signs out through the built binary.
// Every check reads what the page shows, by the element ids the portal's
// pages promise; every page visited is saved as a full-page screenshot in
// the test's artifact directory (kept with `go test -artifacts`).

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// portalConfig mounts the portal on /auth and guards /app/* behind it;
// /app/pay/* also needs a step-up within 5 minutes. The sandbox takes the
// code 123456 and runs the push simulator.
func portalConfig(users, app string) string {
	return strings.Replace(gatewayConfig("memory", users, app, "sandbox"), "\thandle /api/* {", `	handle_path /auth/* {
		authgate_portal
	}
	handle /app/pay/* {
		authgate_protect {
			portal /auth
			stepup 5m
		}
		reverse_proxy `+app+`
	}
	handle /app/* {
		authgate_protect {
			portal /auth
		}
		reverse_proxy `+app+`
	}
	handle /api/* {`, 1)
}

// appPage is what the HTML backend behind the portal shows: the identity
// headers the guard set and the Cookie header that reached it.
var appPage = template.Must(template.New("app").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>app</title></head><body>
<h1 id="whoami">Signed in as credentials {{.Get "X-Authgate-Credentials-Id"}} ({{.Get "X-Authgate-Identity-Type"}} {{.Get "X-Authgate-Identity-Id"}})</h1>
<p id="stepped-up">stepped up: {{.Get "X-Authgate-Stepped-Up"}}</p>
<p id="cookie">cookie: {{.Get "Cookie"}}</p>
</body></html>
`))

// newAppBackend starts the HTML backend and returns its host:port. It sets
// a cookie of its own, which the guard must pass on while it removes the
// portal's.
func newAppBackend(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "app", Value: "kept", Path: "/"})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = appPage.Execute(w, r.Header)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// crossSitePage is another site's page that posts alice's credentials to
// the portal's login as soon as it loads (login CSRF).
const crossSitePage = `<!doctype html>
<html><head><meta charset="utf-8"><title>elsewhere</title></head>
<body onload="document.forms[0].submit()">
<form method="post" action="%s">
<input name="email" value="alice@example.com">
<input name="password" value="%s">
<input name="csrf" value="forged">
<input name="return" value="/app/">
</form></body></html>
`

// newCrossSite serves crossSitePage from an origin other than the
// gateway's, and returns that page's URL.
func newCrossSite(t *testing.T, loginURL string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, crossSitePage, loginURL, demoPassword)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// chromiumPath finds the distribution's chromium. Without one the test
// skips, so that a developer can run the suite, but CI must have it
// (.ci/run installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs chromium for the browser test (.ci/run installs it): %v", err)
		}
		t.Skipf("no chromium on PATH (%v); install the chromium package to run the browser test", err)
	}
	return path
}

// browser is one headless Chromium with a profile of its own (so cookies of
// its own) on one gateway, whose pages it addresses by path.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string // http://localhost:<port>: a secure context, so __Host- cookies work on plain HTTP
	dir   string
	shots int
}

func newBrowser(t *testing.T, chromium, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The browser lives as long as the context of its first run: start it
	// here, without the bound that each later step gets.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	return &browser{t: t, ctx: ctx, base: base, dir: t.ArtifactDir()}
}

// attempt runs a chromedp action, bounded so that a page that never comes
// fails the test instead of hanging it.
func attempt[T any](b *browser, action chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, hangBound)
	defer cancel()
	return chromedp.Run(ctx, action)
}

// must runs a chromedp action and fails the test, saying what it was
// doing, when the action fails.
func must[T any](b *browser, what string, action chromedp.Action[T]) T {
	b.t.Helper()
	v, err := attempt(b, action)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// navigate runs steps that load a new page, waits until it has loaded, and
// saves its screenshot.
func (b *browser) navigate(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, hangBound)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	b.shot(what)
}

// open loads a path of the gateway (with its query, if any).
func (b *browser) open(path string) {
	b.t.Helper()
	b.navigate("open "+path, chromedp.Navigate(b.base+path))
}

// fill sets the value of the field sel.
func (b *browser) fill(sel, value string) {
	b.t.Helper()
	b.element(sel, "el.tagName")
	must(b, "filling "+sel, chromedp.SetValue(chromedp.CSS(sel), value))
}

// submit clicks the submit button of the form sel, as a person would, and
// waits for the page that answers.
func (b *browser) submit(form string) {
	b.t.Helper()
	button := form + ` [type="submit"]`
	b.element(button, "el.tagName")
	b.navigate("submit "+form, chromedp.Click(chromedp.CSS(button)))
}

// text is what the element sel shows, trimmed.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(b.element(sel, "el.innerText"))
}

// attr is the attribute name of the element sel.
func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	return b.element(sel, "el.getAttribute("+jsString(name)+")")
}

// element evaluates expr on the first element that matches sel (as el),
// and fails, saying what the page shows instead, when none does.
func (b *browser) element(sel, expr string) string {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const el = document.querySelector(%s); return el && String(%s); })()`, jsString(sel), expr)
	v := must(b, "reading "+sel, chromedp.Evaluate[*string](js))
	if v == nil {
		b.t.Fatalf("%s (status %d) has no %s; it shows:\n%s", b.location(), b.status(), sel, b.pageText())
	}
	return *v
}

// wantText fails unless the element sel shows exactly want.
func (b *browser) wantText(sel, want string) {
	b.t.Helper()
	if got := b.text(sel); got != want {
		b.t.Fatalf("%s on %s shows %q, want %q", sel, b.location(), got, want)
	}
}

// pageText is all the text the page shows.
func (b *browser) pageText() string {
	b.t.Helper()
	return must(b, "reading the page", chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
}

// status is the HTTP status of the page shown (0 when no response made it).
func (b *browser) status() int {
	b.t.Helper()
	return must(b, "reading the status", chromedp.Evaluate[int](`(performance.getEntriesByType("navigation")[0] || {}).responseStatus || 0`))
}

// location is the URL of the page shown.
func (b *browser) location() *url.URL {
	b.t.Helper()
	loc := must(b, "reading the location", chromedp.Location())
	u, err := url.Parse(loc)
	if err != nil {
		b.t.Fatalf("the browser's location %q: %v", loc, err)
	}
	return u
}

// on reports whether u is path on the gateway.
func (b *browser) on(u *url.URL, path string) bool {
	return u.Scheme+"://"+u.Host == b.base && u.Path == path
}

// at fails unless the page shown is path on the gateway, loaded with
// status; it returns the page's query.
func (b *browser) at(path string, status int) url.Values {
	b.t.Helper()
	u := b.location()
	if !b.on(u, path) {
		b.t.Fatalf("the browser is at %s (status %d), want %s%s", u, b.status(), b.base, path)
	}
	if got := b.status(); got != status {
		b.t.Fatalf("%s answered %d, want %d; it shows:\n%s", u, got, status, b.pageText())
	}
	return u.Query()
}

// waitFor waits until a page that moves on by itself (script, auto-submit)
// has loaded path on the gateway, and saves its screenshot.
func (b *browser) waitFor(path string) {
	b.t.Helper()
	waitUntil(b.t, "the browser to reach "+path, func() bool {
		// Between two pages the old document's context may be gone: a
		// failed look is one more poll, not a failure.
		loc, err := attempt(b, chromedp.Evaluate[string](`document.readyState === "complete" ? location.href : ""`))
		if err != nil {
			return false
		}
		u, err := url.Parse(loc)
		return err == nil && b.on(u, path)
	})
	b.shot("reached " + path)
}

// shot saves a full-page screenshot of the page shown, named after the step
// that led there, and logs where.
func (b *browser) shot(name string) {
	b.t.Helper()
	png := must(b, "taking a screenshot", chromedp.FullScreenshot(100))
	b.shots++
	file := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.shots, strings.Trim(unsafeFileChars.ReplaceAllString(name, "-"), "-")))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("%s (status %d): %s", b.location(), b.status(), file)
}

// unsafeFileChars are the characters of a step's name that stay out of a
// screenshot's file name.
var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// login signs in through the login page shown.
func (b *browser) login(email, password string) {
	b.t.Helper()
	b.fill("#email", email)
	b.fill("#password", password)
	b.submit("#login")
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

func TestPortalInABrowser(t *testing.T) {
	chromium := chromiumPath(t)
	g := startGateway(t, portalConfig(lhUsersFile(t, demoHash), newAppBackend(t)))
	base := strings.Replace(g.URL, "127.0.0.1", "localhost", 1)

	t.Run("login, SMS step-up, sign out", func(t *testing.T) {
		b := newBrowser(t, chromium, base)
		b.open("/app/")
		if q := b.at("/auth/login", 200); q.Get("return") != "/app/" {
			t.Fatalf("the guard sent the browser to login with return %q, want /app/", q.Get("return"))
		}
		b.login("alice@example.com", demoPassword)
		b.at("/app/", 200)
		b.wantText("#whoami", "Signed in as credentials 1001 (CONSUMER 2001)")
		b.wantText("#stepped-up", "stepped up: false")
		if c := must(b, "reading document.cookie", chromedp.Evaluate[string]("document.cookie")); strings.Contains(c, "authgate") {
			t.Fatalf("a script can read the portal's cookie: %q", c)
		}

		b.open("/app/pay/")
		if q := b.at("/auth/stepup", 200); q.Get("return") != "/app/pay/" || q.Get("max_age") != "300" {
			t.Fatalf("the guard sent the browser to step up with return %q and max_age %q, want /app/pay/ and 300", q.Get("return"), q.Get("max_age"))
		}
		b.wantText("#signed-in-as", "Signed in as alice@example.com")
		b.submit("#sms-send")
		b.at("/auth/stepup", 200)
		b.fill("#code", "123456")
		b.submit("#sms-verify")
		b.at("/app/pay/", 200)
		b.wantText("#whoami", "Signed in as credentials 1001 (CONSUMER 2001)")
		b.wantText("#stepped-up", "stepped up: true")
		if c := b.text("#cookie"); !strings.Contains(c, "app=kept") || strings.Contains(c, "authgate") {
			t.Fatalf("the backend received %q: want its own cookie and not the portal's", c)
		}

		b.open("/auth/stepup?return=/app/")
		b.submit("#logout")
		b.at("/auth/login", 200)
		b.wantText("p.notice", "You have signed out.")
		b.open("/app/")
		b.at("/auth/login", 200)
	})

	t.Run("push step-up approved on the phone", func(t *testing.T) {
		b := newBrowser(t, chromium, base)
		b.open("/app/pay/")
		b.at("/auth/login", 200)
		b.login("alice@example.com", demoPassword)
		b.at("/auth/stepup", 200)
		b.submit("#push-start")
		q := b.at("/auth/stepup/push", 200)
		id := b.attr("#push-status", "data-challenge-id")
		if id == "" || id != q.Get("id") || b.attr("#push-status", "data-status") != "PENDING" {
			t.Fatalf("waiting page: challenge %q (URL id %q), status %q", id, q.Get("id"), b.attr("#push-status", "data-status"))
		}
		r := request(t, "POST", g.URL+"/multi/simulate/api/factors/1001/challenges/"+url.PathEscape(id)+"/verify_success", "")
		if r.Status != 200 || r.str("code") != "COMPLETED" {
			t.Fatalf("simulator: %d %s", r.Status, r.Body)
		}
		b.waitFor("/app/pay/")
		b.at("/app/pay/", 200)
		b.wantText("#stepped-up", "stepped up: true")
	})

	t.Run("expired password", func(t *testing.T) {
		b := newBrowser(t, chromium, base)
		b.open("/app/")
		b.at("/auth/login", 200)
		b.login("carol@example.com", demoPassword)
		if q := b.at("/auth/password", 200); q.Get("return") != "/app/" {
			t.Fatalf("the password page has return %q, want /app/", q.Get("return"))
		}
		b.fill("#old_password", demoPassword)
		b.fill("#new_password", "carolpassword")
		b.submit("#password")
		if u := b.location(); u.Path != "/auth/password" {
			t.Fatalf("a too simple password moved on to %s", u)
		}
		// In words: a sentence, not an error code such as PASSWORD_TOO_SIMPLE.
		if msg := b.text(`p.error[role="alert"]`); !strings.Contains(msg, " ") || regexp.MustCompile(`[A-Z]+_[A-Z]+`).MatchString(msg) {
			t.Fatalf("the policy error reads %q: want it in words", msg)
		}
		b.fill("#old_password", demoPassword)
		b.fill("#new_password", "Carol-New-Pass-31!")
		b.submit("#password")
		b.at("/app/", 200)
		b.wantText("#whoami", "Signed in as credentials 1003 (CONSUMER 2003)")
	})

	t.Run("cross-site POST, wrong password, open redirect", func(t *testing.T) {
		b := newBrowser(t, chromium, base)
		// The other site's page leaves by itself as soon as it has loaded.
		must(b, "opening another site's page", chromedp.Navigate(newCrossSite(t, base+"/auth/login")))
		b.waitFor("/auth/login")
		b.at("/auth/login", 403)
		b.open("/app/")
		b.at("/auth/login", 200)

		b.login("alice@example.com", "Not-Her-Pass-1!")
		b.at("/auth/login", 401)
		b.wantText(`p.error[role="alert"]`, "The email or password is incorrect.")

		b.open("/auth/login?return=" + url.QueryEscape("//evil.example"))
		b.login("alice@example.com", demoPassword)
		b.at("/", 200)
	})
}
