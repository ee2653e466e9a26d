package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// portalFlowConfig is the contract's browser setup: the portal under
// /auth, /app/* behind it and /app/pay/* with a step-up, in sandbox mode.
func portalFlowConfig(users, app string) string {
	return `{
	admin 127.0.0.1:{ADMIN}
	auto_https off
	authgate {
		store memory
		signing_key ` + testSigningKey + `
		users_file ` + users + `
		sandbox
	}
}
:{PORT} {
	handle_path /multi/* {
		authgate_api
	}
	handle_path /auth/* {
		authgate_portal
	}
	handle /app/pay/* {
		authgate_protect {
			portal /auth
			stepup 5m
		}
		reverse_proxy ` + app + `
	}
	handle /app/* {
		authgate_protect {
			portal /auth
		}
		reverse_proxy ` + app + `
	}
}
`
}

// portalFlowBackend is the tiny HTML backend: it says who the identity
// headers say you are, and keeps the Cookie header it was sent.
type portalFlowBackend struct {
	addr    string
	mu      sync.Mutex
	cookies []string
}

func newPortalFlowBackend(t *testing.T) *portalFlowBackend {
	b := &portalFlowBackend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.cookies = append(b.cookies, strings.Join(r.Header.Values("Cookie"), "|"))
		b.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<h1 id="whoami">Signed in as credentials %s (%s %s)</h1><p id="stepped-up">stepped up: %s</p>`,
			r.Header.Get("X-Authgate-Credentials-Id"), r.Header.Get("X-Authgate-Identity-Type"),
			r.Header.Get("X-Authgate-Identity-Id"), r.Header.Get("X-Authgate-Stepped-Up"))
	}))
	t.Cleanup(srv.Close)
	b.addr = strings.TrimPrefix(srv.URL, "http://")
	return b
}

func (b *portalFlowBackend) cookieHeaders() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.cookies...)
}

// portalFlowPage is where a browser landed after following redirects.
type portalFlowPage struct {
	url    *url.URL
	status int
	body   string
}

// portalFlowBrowser is a plain HTTP client with a cookie jar that follows
// redirects and asks for HTML, as a browser's navigations do.
type portalFlowBrowser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (b *portalFlowBrowser) do(method, path string, form url.Values) portalFlowPage {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.base+path, body)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.base)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return portalFlowPage{url: resp.Request.URL, status: resp.StatusCode, body: string(data)}
}

// at checks that the browser shows path, with status, and every part in
// the page.
func (p portalFlowPage) at(t *testing.T, status int, path string, parts ...string) portalFlowPage {
	t.Helper()
	if p.status != status || p.url.Path != path {
		t.Fatalf("at %s (%d), want %s (%d):\n%s", p.url, p.status, path, status, p.body)
	}
	for _, part := range parts {
		if !strings.Contains(p.body, part) {
			t.Fatalf("%s lacks %q:\n%s", p.url, part, p.body)
		}
	}
	return p
}

var portalFlowCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (p portalFlowPage) csrf(t *testing.T) string {
	t.Helper()
	m := portalFlowCSRF.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf field on %s:\n%s", p.url, p.body)
	}
	return m[1]
}

// A person in a browser, through the built binary: a guarded page sends
// them to sign in and back; a page that needs a step-up sends them to the
// step-up page, where an SMS code lets them through; signing out ends it.
// The backend sees the identity headers and never authgate's cookies.
func TestPortalCookieFlowThroughTheBinary(t *testing.T) {
	app := newPortalFlowBackend(t)
	g := startGateway(t, portalFlowConfig(usersFile(t), app.addr))
	jar, _ := cookiejar.New(nil)
	base, _ := url.Parse(g.URL)
	jar.SetCookies(base, []*http.Cookie{{Name: "theme", Value: "dark", Path: "/"}})
	b := &portalFlowBrowser{t: t, base: g.URL, c: &http.Client{Jar: jar}}

	login := b.do("GET", "/app/", nil).at(t, http.StatusOK, "/auth/login", `<form id="login"`, `name="return" value="/app/"`)
	home := b.do("POST", "/auth/login", url.Values{"csrf": {login.csrf(t)}, "return": {"/app/"},
		"email": {"alice@example.com"}, "password": {demoPassword}})
	home.at(t, http.StatusOK, "/app/", `<h1 id="whoami">Signed in as credentials 1001 (CONSUMER 2001)</h1>`, `stepped up: false`)

	stepUp := b.do("GET", "/app/pay/", nil).at(t, http.StatusOK, "/auth/stepup", `<p id="signed-in-as">Signed in as alice@example.com</p>`)
	if q := stepUp.url.Query(); q.Get("return") != "/app/pay/" || q.Get("max_age") != "300" {
		t.Fatalf("step-up page query %q", stepUp.url.RawQuery)
	}
	carry := func(action string, more ...string) url.Values {
		f := url.Values{"csrf": {stepUp.csrf(t)}, "return": {"/app/pay/"}, "max_age": {"300"}, "action": {action}}
		for i := 0; i+1 < len(more); i += 2 {
			f.Set(more[i], more[i+1])
		}
		return f
	}
	b.do("POST", "/auth/stepup", carry("send-sms")).at(t, http.StatusOK, "/auth/stepup", `<form id="sms-verify"`)
	b.do("POST", "/auth/stepup", carry("verify-sms", "code", "000000")).
		at(t, http.StatusConflict, "/auth/stepup", "That code is not right.")
	b.do("POST", "/auth/stepup", carry("verify-sms", "code", "123456")).
		at(t, http.StatusOK, "/app/pay/", `Signed in as credentials 1001 (CONSUMER 2001)`, `stepped up: true`)

	for _, header := range app.cookieHeaders() {
		if header != "theme=dark" {
			t.Errorf("the backend got Cookie %q, want only its own theme=dark", header)
		}
	}

	b.do("POST", "/auth/logout", url.Values{"csrf": {stepUp.csrf(t)}}).
		at(t, http.StatusOK, "/auth/login", `<p class="notice" role="status">You have signed out.</p>`)
	b.do("GET", "/app/", nil).at(t, http.StatusOK, "/auth/login", `<form id="login"`)
	if got := len(app.cookieHeaders()); got != 2 {
		t.Errorf("the backend was called %d times, want twice (home and payments)", got)
	}
}
