package portal_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/authtest"
	"github.com/authgate/authgate/authcore/multiapi"
	"github.com/authgate/authgate/authcore/portal"
	"github.com/authgate/authgate/authcore/store/memory"
	redisstore "github.com/authgate/authgate/authcore/store/redis"
	"github.com/authgate/authgate/authcore/store/storetest"
)

const password = "Correct-Horse-1"

// testHashParams make the password hashes cheap: they are in the work of
// every login.
var testHashParams = authcore.HashParams{Scheme: authcore.SchemeArgon2id, Memory: 64, Time: 1, Threads: 1, KeyLen: 32}

func testUsers(t testing.TB) *authcore.StaticUsers {
	t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	users, err := authcore.NewStaticUsers([]authcore.User{
		{ID: "1001", CredentialsType: "ROOT", Email: "alice@example.com", Password: string(hash), TextNumber: "+35699000001",
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2001"}, {Type: "CORPORATE", ID: "3001"}},
			Factors:    authcore.Factors{OTP: []string{"SMS"}, Push: []string{"AUTHY"}}},
		{ID: "1002", CredentialsType: "USER", Email: "bob@example.com", Password: string(hash),
			Identities: []authcore.Identity{{Type: "CORPORATE", ID: "3001"}}},
		{ID: "1003", CredentialsType: "ROOT", Email: "carol@example.com", Password: string(hash), PasswordExpires: &past,
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2003"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return users
}

// env is one gateway node: the portal under /auth/ and the Multi API
// under /multi/, as the demo mounts them, over its own services.
type env struct {
	gw   *authcore.Services
	clk  *authtest.Clock
	srv  *httptest.Server
	logs *observer.ObservedLogs
}

// newEnv is a node on a memory store in sandbox mode (every code is
// 123456), without rate limits unless tune sets them.
func newEnv(t *testing.T, tune ...func(*authcore.Options)) *env {
	t.Helper()
	clk := authtest.NewClock(time.Now())
	store := memory.New(clk.Now)
	t.Cleanup(func() { store.Close() })
	return newNode(t, store, clk, tune...)
}

// newRedisNodes are two nodes on one throwaway Redis, each with its own
// client (and session cache), as two gateways would be.
func newRedisNodes(t *testing.T, tune ...func(*authcore.Options)) (*env, *env) {
	t.Helper()
	srv := storetest.StartRedis(t)
	clk := authtest.NewClock(time.Now())
	open := func() authcore.Store {
		opts, err := redisstore.Parse("redis://" + srv.Addr() + "/0")
		if err != nil {
			t.Fatal(err)
		}
		s := redisstore.Open(opts, "portal:")
		t.Cleanup(func() { s.Close() })
		return s
	}
	realTime := func(o *authcore.Options) { o.Now = nil }
	tune = append([]func(*authcore.Options){realTime}, tune...)
	return newNode(t, open(), clk, tune...), newNode(t, open(), clk, tune...)
}

func newNode(t *testing.T, store authcore.Store, clk *authtest.Clock, tune ...func(*authcore.Options)) *env {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	logger := zap.New(core)
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	opts := authcore.Options{Store: store, Users: testUsers(t), Tokens: authcore.NewTokens("test", key, clk.Now),
		Now: clk.Now, SessionIdle: 15 * time.Minute, Sandbox: true, PasswordHash: testHashParams, Logger: logger,
		CodeKey: key.Derive("codes"), CSRFKey: key.Derive("csrf"), RateLimits: map[string]authcore.RateLimit{}}
	for _, f := range tune {
		f(&opts)
	}
	if opts.Now == nil {
		opts.Tokens = authcore.NewTokens("test", key, time.Now)
	}
	gw, err := authcore.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", http.StripPrefix("/auth", portal.New(portal.Options{Sessions: gw.Sessions, Accounts: gw.Accounts,
		Passwords: gw.Passwords, StepUp: gw.StepUp, CSRF: gw.CSRF, Passkeys: gw.Passkeys, Outage: gw.Outage, Logger: logger,
		RequestURI: func(r *http.Request) string { return "/auth" + r.URL.RequestURI() }})))
	mux.Handle("/multi/", http.StripPrefix("/multi", multiapi.New(multiapi.Options{Sessions: gw.Sessions, Accounts: gw.Accounts,
		Passwords: gw.Passwords, StepUp: gw.StepUp, Tokens: gw.Tokens, Logger: logger})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{gw: gw, clk: clk, srv: srv, logs: logs}
}

// browser is a client with a cookie jar that does not follow redirects,
// so that each answer can be checked.
type browser struct {
	t    *testing.T
	e    *env
	jar  *cookiejar.Jar
	http *http.Client
}

func (e *env) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, e: e, jar: jar, http: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// on is the same browser talking to another node (cookies are per host,
// and every node here is on 127.0.0.1, so the jar is shared).
func (b *browser) on(e *env) *browser {
	other := *b
	other.e = e
	return &other
}

// reply is an answer as the test reads it.
type reply struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) reply {
	b.t.Helper()
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(body)}
}

// get requests a path of the node; headers are name, value pairs.
func (b *browser) get(path string, headers ...string) reply {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

// post sends a form to a path of the node.
func (b *browser) post(path string, form url.Values, headers ...string) reply {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

// cookie is the value of a cookie the browser holds for the node.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the page's forms.
func (r reply) csrf(t *testing.T) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no csrf field in:\n%s", r.body)
	}
	return m[1]
}

// want checks the status and that the body shows every part.
func (r reply) want(t *testing.T, status int, parts ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d:\n%s", r.status, status, r.body)
	}
	for _, p := range parts {
		if !strings.Contains(r.body, p) {
			t.Fatalf("the page lacks %q:\n%s", p, r.body)
		}
	}
}

// wantRedirect checks a 303 to location.
func (r reply) wantRedirect(t *testing.T, location string) {
	t.Helper()
	if r.status != http.StatusSeeOther || r.header.Get("Location") != location {
		t.Fatalf("%d Location %q, want 303 to %q:\n%s", r.status, r.header.Get("Location"), location, r.body)
	}
}

// setCookie is the Set-Cookie header line of a cookie.
func (r reply) setCookie(t *testing.T, name string) string {
	t.Helper()
	for _, line := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(line, name+"=") {
			return line
		}
	}
	t.Fatalf("no Set-Cookie for %s in %v", name, r.header.Values("Set-Cookie"))
	return ""
}

// loginPage opens the sign-in page with a return path.
func (b *browser) loginPage(ret string) reply {
	b.t.Helper()
	r := b.get("/auth/login?return=" + url.QueryEscape(ret))
	r.want(b.t, http.StatusOK, `<form id="login"`)
	return r
}

// login signs in from the sign-in page and returns the answer.
func (b *browser) login(email, pw, ret string) reply {
	b.t.Helper()
	page := b.loginPage(ret)
	return b.post("/auth/login", url.Values{"csrf": {page.csrf(b.t)}, "return": {ret}, "email": {email}, "password": {pw}})
}

// signIn signs in and expects to land on ret.
func (b *browser) signIn(email, ret string) {
	b.t.Helper()
	b.login(email, password, ret).wantRedirect(b.t, ret)
}

// stepUpPage opens the step-up page.
func (b *browser) stepUpPage(ret string) reply {
	b.t.Helper()
	r := b.get("/auth/stepup?return=" + url.QueryEscape(ret) + "&max_age=300")
	r.want(b.t, http.StatusOK, `id="signed-in-as"`)
	return r
}

// stepUp posts a step-up action from the step-up page.
func (b *browser) stepUp(ret, action string, fields ...string) reply {
	b.t.Helper()
	form := url.Values{"csrf": {b.stepUpPage(ret).csrf(b.t)}, "return": {ret}, "max_age": {"300"}, "action": {action}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	return b.post("/auth/stepup", form)
}

// admitted reports whether node e's guard admits the browser's session
// cookie on a route with policy.
func (b *browser) admitted(e *env, policy *authcore.GuardPolicy) authcore.Refusal {
	d := e.gw.Guard.DecideBrowser(b.t.Context(), b.cookie("__Host-authgate"), policy)
	return d.Refusal
}

var accessRoute = &authcore.GuardPolicy{Token: authcore.GuardAccess}
