package manageapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/authtest"
	"github.com/authgate/authgate/authcore/httpapi"
	"github.com/authgate/authgate/authcore/manageapi"
	"github.com/authgate/authgate/authcore/multiapi"
	"github.com/authgate/authgate/authcore/store/memory"
	redisstore "github.com/authgate/authgate/authcore/store/redis"
	"github.com/authgate/authgate/authcore/store/storetest"
)

const (
	password      = "Correct-Horse-1"
	backendSecret = "backend-secret"
	totpSecret    = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	codeTTL       = 600 * time.Millisecond
	resend        = 200 * time.Millisecond
)

// clock and recordingSender are the core's shared test fakes.
type (
	clock           = authtest.Clock
	recordingSender = authtest.RecordingSender
)

// storeKind makes the store of one test: memory on the test clock, or a
// client of a throwaway Redis, whose TTLs run on real time.
type storeKind struct {
	name     string
	realTime bool
	open     func(t testing.TB, clk *clock) authcore.Store
}

func memoryKind() storeKind {
	return storeKind{name: "memory", open: func(t testing.TB, clk *clock) authcore.Store {
		s := memory.New(clk.Now)
		t.Cleanup(func() { s.Close() })
		return s
	}}
}

// forEachStore runs fn on the memory store and on Redis.
func forEachStore(t *testing.T, fn func(t *testing.T, kind storeKind)) {
	t.Run("memory", func(t *testing.T) { fn(t, memoryKind()) })
	t.Run("redis", func(t *testing.T) {
		srv := storetest.StartRedis(t)
		fn(t, storeKind{name: "redis", realTime: true, open: func(t testing.TB, _ *clock) authcore.Store {
			opts, err := redisstore.ParseURL("redis://" + srv.Addr() + "/0")
			if err != nil {
				t.Fatal(err)
			}
			s := redisstore.New(goredis.NewUniversalClient(opts), fmt.Sprintf("t%d:", time.Now().UnixNano()))
			t.Cleanup(func() { s.Close() })
			return s
		}})
	})
}

// testHashParams make the gateway's password hashes cheap: they are in the
// work of every password check.
var testHashParams = authcore.HashParams{Scheme: authcore.SchemeArgon2id, Memory: 64, Time: 1, Threads: 1, KeyLen: 32}

// countingHasher counts password-hash verifications.
type countingHasher struct{ n *atomic.Int64 }

func (c countingHasher) Verify(hash, pw string) bool {
	c.n.Add(1)
	return authcore.VerifyPassword(hash, pw)
}

func (c countingHasher) Hash(pw string, p authcore.HashParams) (string, error) {
	return authcore.DefaultHasher.Hash(pw, p)
}

// env is a Manage API (and a Multi API on the same gateway) over one store.
type env struct {
	handler       *manageapi.Handler
	manage, multi *httptest.Server
	gw            *authcore.Services
	store         authcore.Store
	clk           *clock
	sms, mail     *recordingSender
	realTime      bool
	// userChecks and clientChecks count password-hash verifications of
	// users' passwords and of service-client secrets.
	userChecks, clientChecks atomic.Int64
}

func (e *env) wait(d time.Duration) {
	e.clk.Advance(d)
	if e.realTime {
		time.Sleep(d)
	}
}

func hash(t testing.TB, secret string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// testUserList: alice (SMS), bob (no MFA), erin (EMAIL), tom (TOTP) and
// dave, whose SMS MFA has no number to go to.
func testUserList(t testing.TB) []authcore.User {
	t.Helper()
	h := hash(t, password)
	past := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	id := []authcore.Identity{{Type: "CONSUMER", ID: "2001"}}
	return []authcore.User{
		{ID: "1001", CredentialsType: "ROOT", Email: "alice@example.com", UserName: "alice", Password: h,
			FirstName: "Alice", LastName: "Agius", NickName: "ali", Phone: "+35699000001", TextNumber: "+35699000001",
			PhoneCountryCode: "356", TextCountryCode: "356", UUID: "6f1c2a52-0d3e-4c61-9a57-3b1f6f8f1001",
			PasswordExpires: &past, Identities: id, MFA: "SMS"},
		{ID: "1002", CredentialsType: "USER", Email: "bob@example.com", UserName: "bob", Password: h, Identities: id},
		{ID: "1003", CredentialsType: "USER", Email: "erin@example.com", UserName: "erin", Password: h, Identities: id, MFA: "EMAIL"},
		{ID: "1004", CredentialsType: "USER", Email: "tom@example.com", UserName: "tom", Password: h, Identities: id,
			MFA: "TOTP", TOTPSecret: totpSecret},
		{ID: "1005", CredentialsType: "USER", Email: "dave@example.com", UserName: "dave", Password: h, Identities: id, MFA: "SMS"},
	}
}

func testUsers(t testing.TB) *authcore.StaticUsers {
	t.Helper()
	users, err := authcore.NewStaticUsers(testUserList(t))
	if err != nil {
		t.Fatal(err)
	}
	return users
}

// newEnv serves both APIs on one gateway; tune adjusts the gateway options.
func newEnv(t testing.TB, kind storeKind, tune ...func(*authcore.Options)) *env {
	t.Helper()
	e := &env{clk: authtest.NewClock(time.Now()), sms: &recordingSender{}, mail: &recordingSender{}, realTime: kind.realTime}
	users := testUsers(t)
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	e.store = kind.open(t, e.clk)
	opts := authcore.Options{
		Store: e.store, Users: users, Tokens: authcore.NewTokens("test", key, e.clk.Now), Now: e.clk.Now,
		OTPSender: e.sms, EmailSender: e.mail, CodeKey: key.Derive("codes"), CodeTTL: codeTTL, ResendInterval: resend,
		PasswordHash: testHashParams, RateLimits: map[string]authcore.RateLimit{},
		Hasher: countingHasher{&e.userChecks},
	}
	for _, f := range tune {
		f(&opts)
	}
	gw, err := authcore.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.gw = gw
	e.handler, err = manageapi.New(manageapi.Options{
		ManageMFA: gw.ManageMFA, Sessions: gw.Sessions, Accounts: gw.Accounts, Passwords: gw.Passwords, Logger: gw.Logger, Metrics: opts.Metrics, Outage: gw.Outage,
		Clients: []manageapi.ServiceClient{
			{Name: "backend", Hash: hash(t, backendSecret), Scopes: []string{"manage.user.read", "manage.user.write", "manage.otp.verify", "manage.otp.send",
				"token.introspect", "token.revoke", "manage.session.admin"}},
			{Name: "reader", Hash: hash(t, "reader-secret"), Scopes: []string{"manage.user.read"}},
		},
		// Tests may pin the id to compare whole bodies.
		RequestRef: func(r *http.Request) string {
			if ref := r.Header.Get("X-Test-Ref"); ref != "" {
				return ref
			}
			return httpapi.NewRequestRef()
		},
		Hasher: countingHasher{&e.clientChecks},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.manage = httptest.NewServer(e.handler)
	t.Cleanup(e.manage.Close)
	e.multi = httptest.NewServer(multiapi.New(multiapi.Options{Sessions: gw.Sessions, Accounts: gw.Accounts, Passwords: gw.Passwords,
		StepUp: gw.StepUp, Tokens: gw.Tokens, Logger: gw.Logger}))
	t.Cleanup(e.multi.Close)
	return e
}

// reply is an answer of the Manage API.
type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func basic(user, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+secret))
}

// call sends a request as the backend client unless headers set
// Authorization (to "" for none).
func (e *env) call(t *testing.T, method, path, body string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, e.manage.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", basic("backend", backendSecret))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Del("Authorization")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %s", method, path, raw)
		}
		if path == "/introspect" && resp.StatusCode == http.StatusOK {
			return r // RFC 7662's shape, not the envelope
		}
		if r.body["apiRequestId"] == "" || r.body["apiRequestId"] != resp.Header.Get("request-ref") {
			t.Fatalf("%s %s: apiRequestId %v, request-ref %q", method, path, r.body["apiRequestId"], resp.Header.Get("request-ref"))
		}
		for _, k := range []string{"errors", "warnings"} {
			if _, ok := r.body[k].([]any); !ok {
				t.Fatalf("%s %s: no %s list in %s", method, path, k, raw)
			}
		}
	}
	return r
}

// validate posts to validate/password for userName.
func (e *env) validate(t *testing.T, userName string, fields map[string]any, headers ...string) reply {
	t.Helper()
	if _, ok := fields["password"]; !ok {
		fields["password"] = password
	}
	body, _ := json.Marshal(fields)
	return e.call(t, "POST", "/v2/user/"+userName+"/validate/password", string(body), headers...)
}

func (r reply) str(key string) string { s, _ := r.body[key].(string); return s }

// wantError checks a failure: its status and its one numbered error.
func (r reply) wantError(t *testing.T, c manageapi.ErrorCode) {
	t.Helper()
	errs, _ := r.body["errors"].([]any)
	if r.status != c.Status || len(errs) != 1 {
		t.Fatalf("got %d %s, want %d with error %d", r.status, r.raw, c.Status, c.Code)
	}
	e := errs[0].(map[string]any)
	if e["errorCode"] != float64(c.Code) || e["errorTitle"] != c.Title || e["errorMessage"] == "" {
		t.Fatalf("got error %v, want %d %s", e, c.Code, c.Title)
	}
}

// wantOK checks a success: 200 and no errors.
func (r reply) wantOK(t *testing.T) {
	t.Helper()
	if errs, _ := r.body["errors"].([]any); r.status != 200 || len(errs) != 0 {
		t.Fatalf("got %d %s, want 200", r.status, r.raw)
	}
}

// smtpStandIn is just enough of an SMTP server (EHLO, MAIL, RCPT, DATA,
// QUIT; no TLS, no auth) on 127.0.0.1 to catch the codes mailed to users.
type smtpStandIn struct {
	addr  string
	mu    sync.Mutex
	mails []string // "rcpt\n\ndata"
}

func startSMTP(t *testing.T) *smtpStandIn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpStandIn{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(conn) })
		}
	})
	return s
}

func (s *smtpStandIn) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(conn)
	_ = tp.PrintfLine("220 stand-in ESMTP")
	var rcpt string
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			_ = tp.PrintfLine("250 stand-in")
		case "MAIL":
			_ = tp.PrintfLine("250 ok")
		case "RCPT":
			_, addr, _ := strings.Cut(arg, ":")
			rcpt = strings.Trim(addr, "<> ")
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			_ = tp.PrintfLine("354 go on")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.mails = append(s.mails, rcpt+"\n\n"+string(data))
			s.mu.Unlock()
			_ = tp.PrintfLine("250 queued")
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("250 ok")
		}
	}
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

// lastCode returns the recipient and the code of the last mail.
func (s *smtpStandIn) lastCode(t *testing.T) (string, string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mails) == 0 {
		t.Fatal("no mail was sent")
	}
	rcpt, data, _ := strings.Cut(s.mails[len(s.mails)-1], "\n\n")
	_, text, _ := strings.Cut(data, "\n\n")
	return rcpt, sixDigits.FindString(text)
}
