package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/authgate/authgate/authcore"
)

// Log hygiene (SPEC §9): the real binary, at debug level, runs every flow
// of the Multi API and the guard, and then no password, code, token,
// signing key, hash, webhook secret or api-key may appear anywhere in its
// output.

const (
	lhSigningKeyText = "loghygiene-signing-key-of-at-least-32-bytes!"
	lhAPIKey         = "lh-api-key-5f0c9e2b7a41"
	lhSMSSecret      = "lh-sms-hook-secret-8d21c4"
	lhPushSecret     = "lh-push-hook-secret-3e97ab"
	lhWrongPassword  = "Wrong-Pass-456-zq"
	lhBadJSONPass    = "Trunc-Pass-789-xy"
	lhCarolNew       = "Carol-New-Pass-31!"
	lhAliceNew       = "Alice-New-Pass-47!"
)

// lhSecret is a value that must not be logged, and what it is.
type lhSecret struct{ kind, value string }

// lhEnv is the running gateway and what the test must look for.
type lhEnv struct {
	t       *testing.T
	g       *gateway
	secrets []lhSecret
	tokens  []lhSecret
	codes   []lhSecret
}

func (e *lhEnv) secret(kind, value string) {
	if value != "" {
		e.secrets = append(e.secrets, lhSecret{kind, value})
	}
}

func (e *lhEnv) token(kind, value string) string {
	e.t.Helper()
	if value == "" {
		e.t.Fatalf("no %s token", kind)
	}
	e.tokens = append(e.tokens, lhSecret{kind, value})
	return value
}

// multi calls the Multi API with the api-key and, if set, a bearer token.
func (e *lhEnv) multi(method, path, body, tok string, want int) response {
	e.t.Helper()
	h := []string{"api-key", lhAPIKey}
	if tok != "" {
		h = append(h, bearerH(tok)...)
	}
	r := request(e.t, method, e.g.URL+"/multi"+path, body, h...)
	if r.Status != want {
		e.t.Fatalf("%s %s: %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

func (e *lhEnv) login(email, password string, want int) response {
	e.t.Helper()
	return e.multi("POST", "/login_with_password",
		fmt.Sprintf(`{"email":%q,"password":{"value":%q}}`, email, password), "", want)
}

// lhUsersFile writes alice (bcrypt, SMS and AUTHY enrolled), bob (argon2id,
// a phone, no factors) and carol (bcrypt, expired password).
func lhUsersFile(t *testing.T, argonHash string) string {
	t.Helper()
	data := `{"users":[
	 {"id":"1001","credentialsType":"ROOT","email":"alice@example.com","password":"` + demoHash + `",
	  "identities":[{"type":"CONSUMER","id":"2001","name":"Alice"},{"type":"CORPORATE","id":"3001","name":"Acme"}],
	  "factors":{"otp":["SMS"],"push":["AUTHY"]},"phone":"+35699000001"},
	 {"id":"1002","credentialsType":"USER","email":"bob@example.com","password":"` + argonHash + `",
	  "phone":"+35699000002","identities":[{"type":"CORPORATE","id":"3002","name":"Bob Ltd"}]},
	 {"id":"1003","credentialsType":"USER","email":"carol@example.com","password":"` + demoHash + `",
	  "passwordExpires":"2020-01-01T00:00:00Z","identities":[{"type":"CONSUMER","id":"2003","name":"Carol"}]}
	]}`
	path := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// lhConfig logs everything Caddy and authgate log: the debug level, and
// the access log, which production sites commonly turn on.
func lhConfig(users, backend, sms, push string) string {
	key := base64.StdEncoding.EncodeToString([]byte(lhSigningKeyText))
	// The log filters are the README's: Caddy itself redacts only
	// Authorization, Cookie and their kin, so the api-key and the push
	// signature headers must be filtered wherever Caddy logs requests.
	return `{
	debug
	log default {
		format filter {
			wrap json
			fields {
				request>headers>Api-Key replace REDACTED
				request>headers>Signature replace REDACTED
			}
		}
	}
	admin 127.0.0.1:{ADMIN}
	auto_https off
	authgate {
		store memory
		signing_key ` + key + `
		issuer https://auth.test
		users_file ` + users + `
		api_key ` + lhAPIKey + `
		otp_sender webhook ` + sms + ` ` + lhSMSSecret + `
		push_sender webhook ` + push + ` ` + lhPushSecret + `
	}
}
:{PORT} {
	log {
		format filter {
			wrap json
			fields {
				request>headers>Api-Key replace REDACTED
				request>headers>Signature replace REDACTED
			}
		}
	}
	handle_path /multi/* {
		authgate_api
	}
	handle /api/* {
		authgate_protect
		reverse_proxy ` + backend + `
	}
	handle /pay/* {
		authgate_protect {
			stepup 10m
		}
		reverse_proxy ` + backend + `
	}
}
`
}

// lhNextCode waits for webhook body number n+1 of rcv and returns its code.
func lhNextCode(t *testing.T, rcv *webhookReceiver, n int) string {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for {
		rcv.mu.Lock()
		var msg map[string]any
		if len(rcv.bodies) > n {
			msg = rcv.bodies[n]
		}
		bad := rcv.badSig
		rcv.mu.Unlock()
		if bad > 0 {
			t.Fatal("a webhook arrived with a bad signature")
		}
		if msg != nil {
			code, _ := msg["code"].(string)
			if len(code) != 6 {
				t.Fatalf("webhook body %d has no 6-digit code", n+1)
			}
			return code
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook body %d did not arrive", n+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNoSecretInLogs(t *testing.T) {
	argonHash, err := authcore.HashPassword(demoPassword)
	if err != nil {
		t.Fatal(err)
	}
	be := newBackend(t)
	sms := newWebhookReceiver(t, lhSMSSecret)
	push := newWebhookReceiver(t, lhPushSecret)
	e := &lhEnv{t: t}
	e.g = startGateway(t, lhConfig(lhUsersFile(t, argonHash), be.Addr, sms.URL, push.URL))

	keyB64 := base64.StdEncoding.EncodeToString([]byte(lhSigningKeyText))
	e.secret("signing key (base64)", keyB64)
	e.secret("signing key (base64, unpadded)", strings.TrimRight(keyB64, "="))
	e.secret("signing key (bytes)", lhSigningKeyText)
	e.secret("api-key", lhAPIKey)
	e.secret("SMS webhook secret", lhSMSSecret)
	e.secret("push webhook secret", lhPushSecret)
	e.secret("bcrypt hash", demoHash)
	e.secret("bcrypt hash digest", demoHash[len(demoHash)-31:])
	e.secret("argon2id hash", argonHash)
	e.secret("argon2id hash digest", argonHash[strings.LastIndexByte(argonHash, '$')+1:])
	e.secret("argon2id hash salt", strings.Split(argonHash, "$")[4])
	for _, p := range []string{demoPassword, lhWrongPassword, lhBadJSONPass, lhCarolNew, lhAliceNew} {
		e.secret("password", p)
	}

	// Failed logins: wrong password, unknown email, a malformed body that
	// carries a password, a missing api-key.
	e.login("alice@example.com", lhWrongPassword, 403)
	e.login("nobody@example.com", demoPassword, 403)
	e.login("bob@example.com", lhWrongPassword, 403) // argon2id user
	e.multi("POST", "/login_with_password", `{"email":"alice@example.com","password":{"value":"`+lhBadJSONPass+`"}`, "", 400)
	e.multi("POST", "/login_with_password", `{"email":"alice@example.com","password":{"value":["`+lhBadJSONPass+`"]}}`, "", 400)
	if r := request(t, "POST", e.g.URL+"/multi/login_with_password",
		`{"email":"alice@example.com","password":{"value":"`+demoPassword+`"}}`, "api-key", "wrong-api-key-0000"); r.Status != 401 {
		t.Fatalf("wrong api-key: %d", r.Status)
	}

	// Logins, expired password and its update.
	auth := e.token("AUTH", e.login("alice@example.com", demoPassword, 200).str("token"))
	bobAuth := e.token("AUTH", e.login("bob@example.com", demoPassword, 200).str("token"))
	pwUpdate := e.token("PASSWORD_UPDATE", e.login("carol@example.com", demoPassword, 409).str("token"))
	e.multi("GET", "/identities", "", pwUpdate, 401)
	e.multi("POST", "/passwords/update",
		`{"oldPassword":{"value":"`+lhWrongPassword+`"},"newPassword":{"value":"`+lhCarolNew+`"}}`, pwUpdate, 409)
	carolAuth := e.token("AUTH", e.multi("POST", "/passwords/update",
		`{"oldPassword":{"value":"`+demoPassword+`"},"newPassword":{"value":"`+lhCarolNew+`"}}`, pwUpdate, 200).str("token"))
	e.login("carol@example.com", lhCarolNew, 200)

	// Access tokens and guarded calls.
	e.multi("GET", "/identities", "", auth, 200)
	access := e.token("ACCESS", e.multi("POST", "/access_token", `{"identity":{"type":"CONSUMER","id":"2001"}}`, auth, 200).str("token"))
	e.multi("POST", "/access_token", `{"identity":{"type":"CONSUMER","id":"9999"}}`, auth, 403)
	if r := request(t, "GET", e.g.URL+"/api/accounts", "", bearerH(access)...); r.Status != 200 {
		t.Fatalf("guarded call: %d %s", r.Status, r.Body)
	}
	if r := request(t, "GET", e.g.URL+"/api/accounts", "", bearerH(auth)...); r.Status != 403 {
		t.Fatalf("guarded call with an AUTH token: %d %s", r.Status, r.Body)
	}
	if r := request(t, "GET", e.g.URL+"/pay/p1", "", bearerH(access)...); r.Status != 403 {
		t.Fatalf("step-up route before step-up: %d %s", r.Status, r.Body)
	}

	// Step-up by SMS: issue, a wrong code, the right one.
	e.multi("POST", "/stepup/challenges/otp/SMS", "", access, 204)
	code := lhNextCode(t, sms, 0)
	wrong := fmt.Sprintf("%06d", (mustAtoi(t, code)+1)%1000000)
	e.codes = append(e.codes, lhSecret{"OTP code (step-up)", code}, lhSecret{"OTP code (wrong guess)", wrong})
	e.multi("POST", "/stepup/challenges/otp/SMS/verify", `{"verificationCode":"`+wrong+`"}`, access, 409)
	e.multi("POST", "/stepup/challenges/otp/SMS/verify", `{"verificationCode":"`+code+`"}`, access, 204)
	if r := request(t, "GET", e.g.URL+"/pay/p1", "", bearerH(access)...); r.Status != 200 {
		t.Fatalf("step-up route after step-up: %d %s", r.Status, r.Body)
	}

	// Step-up by push, resolved by the provider's signed callback.
	auth2 := e.token("AUTH", e.login("alice@example.com", demoPassword, 200).str("token"))
	access2 := e.token("ACCESS", e.multi("POST", "/access_token", `{"identity":{"type":"CORPORATE","id":"3001"}}`, auth2, 200).str("token"))
	id := e.multi("POST", "/stepup/challenges/push/AUTHY", "", access2, 200).str("id")
	push.last(t)
	resolve := e.g.URL + "/multi/stepup/challenges/push/AUTHY/" + id + "/resolve"
	body := `{"status":"VERIFIED"}`
	badSig := authcore.SignHMAC([]byte(body), []byte("not-the-push-secret"))
	if r := request(t, "POST", resolve, body, "signature", badSig); r.Status != 401 {
		t.Fatalf("badly signed resolve: %d %s", r.Status, r.Body)
	}
	sig := authcore.SignHMAC([]byte(body), []byte(lhPushSecret))
	e.secret("push resolve signature", sig)
	if r := request(t, "POST", resolve, body, "signature", sig); r.Status != 204 {
		t.Fatalf("resolve: %d %s", r.Status, r.Body)
	}
	if r := e.multi("GET", "/stepup/challenges/push/AUTHY/"+id, "", access2, 200); r.str("status") != "VERIFIED" {
		t.Fatalf("push status: %s", r.Body)
	}

	// Factors: listing, and bob enrols SMS (a wrong code, the right one).
	e.multi("GET", "/authentication_factors", "", access, 200)
	e.multi("POST", "/authentication_factors/otp/SMS", "", bobAuth, 204)
	enrol := lhNextCode(t, sms, 1)
	wrongEnrol := fmt.Sprintf("%06d", (mustAtoi(t, enrol)+1)%1000000)
	e.codes = append(e.codes, lhSecret{"OTP code (enrolment)", enrol}, lhSecret{"OTP code (wrong guess)", wrongEnrol})
	e.multi("POST", "/authentication_factors/otp/SMS/verify", `{"verificationCode":"`+wrongEnrol+`"}`, bobAuth, 409)
	e.multi("POST", "/authentication_factors/otp/SMS/verify", `{"verificationCode":"`+enrol+`"}`, bobAuth, 204)

	// Alice changes her password (every old session ends), then logs out.
	e.multi("POST", "/passwords/update",
		`{"oldPassword":{"value":"`+lhWrongPassword+`"},"newPassword":{"value":"`+lhAliceNew+`"}}`, auth, 409)
	newAuth := e.token("AUTH", e.multi("POST", "/passwords/update",
		`{"oldPassword":{"value":"`+demoPassword+`"},"newPassword":{"value":"`+lhAliceNew+`"}}`, auth, 200).str("token"))
	if r := request(t, "GET", e.g.URL+"/api/accounts", "", bearerH(access)...); r.Status != 401 {
		t.Fatalf("guarded call with a token of an ended session: %d %s", r.Status, r.Body)
	}
	e.multi("POST", "/logout", "", newAuth, 204)
	e.multi("POST", "/logout", "", carolAuth, 204)
	e.multi("POST", "/logout", "", bobAuth, 204)
	e.multi("GET", "/identities", "", newAuth, 401)

	// Tokens that do not verify: tampered, and cut short.
	parts := strings.Split(access2, ".")
	tampered := parts[0] + "." + parts[1] + "." + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, parts[2])
	e.token("tampered ACCESS", tampered)
	for _, tok := range []string{tampered, parts[0] + "." + parts[1]} {
		if r := request(t, "GET", e.g.URL+"/api/accounts", "", bearerH(tok)...); r.Status != 401 {
			t.Fatalf("guarded call with a bad token: %d %s", r.Status, r.Body)
		}
	}

	e.g.stop() // flush every line before reading the output
	lhAssertClean(t, e, e.g.logs.String())
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			t.Fatalf("not a number: %q", s)
		}
		n = n*10 + int(r-'0')
	}
	return n
}

// lhWindow is the length of the token substrings looked for: longer than
// anything a log line could share with a token by chance.
const lhWindow = 21

func lhAssertClean(t *testing.T, e *lhEnv, logs string) {
	t.Helper()
	if !strings.Contains(logs, `"level":"debug"`) {
		t.Fatalf("the gateway logged no debug line: is the debug option on?\n%.2000s", logs)
	}
	leaks := map[string]bool{}
	leak := func(kind string, at int) {
		if msg := kind + " leaked, in " + lhWhere(logs, at); !leaks[msg] {
			leaks[msg] = true
			t.Error(msg)
		}
	}
	for _, s := range e.secrets {
		for from := 0; ; {
			i := strings.Index(logs[from:], s.value)
			if i < 0 {
				break
			}
			leak(s.kind, from+i)
			from += i + 1
		}
	}
	// Codes are six digits: look for them standing alone (not inside a
	// longer number, and not as the fraction of a timestamp or duration).
	for _, c := range e.codes {
		for from := 0; ; {
			i := strings.Index(logs[from:], c.value)
			if i < 0 {
				break
			}
			i += from
			from = i + 1
			before, after := byte(' '), byte(' ')
			if i > 0 {
				before = logs[i-1]
			}
			if j := i + len(c.value); j < len(logs) {
				after = logs[j]
			}
			if unicode.IsDigit(rune(before)) || unicode.IsDigit(rune(after)) || before == '.' {
				continue
			}
			leak(c.kind, i)
		}
	}
	// Tokens: neither whole nor any lhWindow-long piece of one (such as
	// its signature segment).
	windows := make(map[string][]int, len(logs))
	for i := 0; i+lhWindow <= len(logs); i++ {
		windows[logs[i:i+lhWindow]] = append(windows[logs[i:i+lhWindow]], i)
	}
	for _, tok := range e.tokens {
		for i := 0; i+lhWindow <= len(tok.value); i++ {
			if ats := windows[tok.value[i:i+lhWindow]]; len(ats) > 0 {
				for _, at := range ats {
					leak(fmt.Sprintf("piece of an %s token (from character %d of %d)", tok.kind, i, len(tok.value)), at)
				}
				break // the first leaked piece of a token is enough
			}
		}
	}
	if t.Failed() {
		t.Logf("the output had %d lines; the secrets themselves are not shown", strings.Count(logs, "\n"))
	}
}

// lhWhere names the log line holding offset i by its level, logger,
// message and field, without quoting the line (which holds the secret).
func lhWhere(logs string, i int) string {
	start := strings.LastIndexByte(logs[:i], '\n') + 1
	end := strings.IndexByte(logs[i:], '\n')
	if end < 0 {
		end = len(logs)
	} else {
		end += i
	}
	line := logs[start:end]
	var entry struct {
		Level  string `json:"level"`
		Logger string `json:"logger"`
		Msg    string `json:"msg"`
	}
	if json.Unmarshal([]byte(line), &entry) != nil {
		return fmt.Sprintf("a non-JSON line (column %d)", i-start)
	}
	field := "?"
	// The JSON key whose value holds the secret: the last "key": before it.
	if k := strings.LastIndex(line[:i-start], `":`); k >= 0 {
		if q := strings.LastIndexByte(line[:k], '"'); q >= 0 {
			field = line[q+1 : k]
		}
	}
	return fmt.Sprintf("%s lines of logger %q with msg %q, field %q", entry.Level, entry.Logger, entry.Msg, field)
}
