package main

// The abuse rules of SPEC §8 through the built binary: rehash at login,
// five wrong codes per round across a resend, and the Manage API's limits.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// demoArgonSmall is an argon2id hash of demoPassword with other
// parameters than the default (m=1024, t=1).
const demoArgonSmall = "$argon2id$v=19$m=1024,t=1,p=1$Bbe6eqdixWveQDcSyv1KWw$LsXBgePcAlH4CCW7CuMttAPqWrwMHB7T3NrAXhn2QLQ"

// abuseUsersFile writes alice (bcrypt, SMS step-up and SMS MFA) and bob
// (argon2id with other parameters than the default), both demoPassword.
func abuseUsersFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.json")
	data := `{"users":[
	 {"id":"1001","credentialsType":"ROOT","email":"alice@example.com","userName":"alice","password":"` + demoHash + `",
	  "identities":[{"type":"CONSUMER","id":"2001"}],"factors":{"otp":["SMS"]},"textNumber":"+35699000001","mfa":"SMS"},
	 {"id":"1002","credentialsType":"USER","email":"bob@example.com","userName":"bob","password":"` + demoArgonSmall + `",
	  "identities":[{"type":"CORPORATE","id":"3001"}]}
	]}`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// abuseConfig serves the Multi API on /multi/ and the Manage API on
// /manage/ in sandbox mode (every code 123456).
func abuseConfig(store, users string, global ...string) string {
	return `{
	admin 127.0.0.1:{ADMIN}
	auto_https off
	authgate {
		store ` + store + `
		signing_key ` + testSigningKey + `
		users_file ` + users + `
		sandbox
		service_client crm ` + demoHash + ` manage.user.read
		` + strings.Join(global, "\n\t\t") + `
	}
}
:{PORT} {
	handle_path /multi/* {
		authgate_api
	}
	handle_path /manage/* {
		authgate_manage
	}
}
`
}

func TestLoginRehashesToArgon2idInRedisThroughTheBinary(t *testing.T) {
	redis := storetest.StartRedis(t)
	g := startGateway(t, abuseConfig("redis redis://"+redis.Addr()+"/0", abuseUsersFile(t)))
	first := loginAs(t, g, "alice@example.com")

	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr()})
	defer rdb.Close()
	account, err := rdb.Get(context.Background(), "authgate:a:{1001}").Result()
	if err != nil {
		t.Fatalf("no account data after the login: %v", err)
	}
	if !strings.Contains(account, `"$argon2id$v=19$m=19456,t=2,p=1$`) || strings.Contains(account, demoHash) {
		t.Fatalf("account data after the login: %s, want an argon2id rehash and no bcrypt hash", account)
	}
	ttl, err := rdb.PTTL(context.Background(), "authgate:a:{1001}").Result()
	if err != nil || ttl <= 0 {
		t.Fatalf("account data TTL %v, %v", ttl, err)
	}
	// The same password logs in again; the first session lives on.
	loginAs(t, g, "alice@example.com")
	if r := request(t, "GET", g.URL+"/multi/identities", "", bearerH(first)...); r.Status != 200 {
		t.Fatalf("the first session after the rehash: %d %s", r.Status, r.Body)
	}
	r := request(t, "POST", g.URL+"/multi/login_with_password", `{"email":"alice@example.com","password":{"value":"Demo-Pass-124"}}`)
	if r.Status != 403 {
		t.Fatalf("a wrong password after the rehash: %d %s", r.Status, r.Body)
	}
}

func TestFiveWrongCodesAcrossAResendThroughTheBinary(t *testing.T) {
	g := startGateway(t, abuseConfig("memory", abuseUsersFile(t)))
	auth := bearerH(loginAs(t, g, "alice@example.com"))
	issue := g.URL + "/multi/stepup/challenges/otp/SMS"
	verify := func(code string) response {
		return request(t, "POST", issue+"/verify", `{"verificationCode":"`+code+`"}`, auth...)
	}
	wantMulti := func(r response, code string) {
		t.Helper()
		if r.Status != 409 || r.str("errorCode") != code {
			t.Fatalf("got %d %s, want 409 %s", r.Status, r.Body, code)
		}
	}
	validate := g.URL + "/manage/v2/user/alice/validate/password"
	crm := []string{"Authorization", basicAuth("crm"), "clientIp", "203.0.113.20"}
	manage := func(session, code string) response {
		return request(t, "POST", validate, `{"password":"`+demoPassword+`","sessionToken":"`+session+`","token":"`+code+`"}`, crm...)
	}
	begin := func() string {
		t.Helper()
		r := request(t, "POST", validate, `{"password":"`+demoPassword+`"}`, crm...)
		if r.Status != 200 || r.str("sessionToken") == "" {
			t.Fatalf("manage MFA: %d %s", r.Status, r.Body)
		}
		return r.str("sessionToken")
	}

	// Four wrong codes of the first round, on both APIs.
	if r := request(t, "POST", issue, "", auth...); r.Status != 204 {
		t.Fatalf("step-up code: %d %s", r.Status, r.Body)
	}
	for _, want := range []string{"VERIFICATION_CODE_INVALID", "VERIFICATION_CODE_INVALID", "VERIFICATION_CODE_INVALID", "ONE_CHALLENGE_LIMIT_REMAINING"} {
		wantMulti(verify("000000"), want)
	}
	session := begin()
	for range 4 {
		if r := manage(session, "000000"); r.Status != 401 || manageError(t, r) != 1006 {
			t.Fatalf("manage wrong code: %d %s", r.Status, r.Body)
		}
	}

	// The resend is allowed 15 s after the first code and does not reset
	// the count: the fifth wrong code ends the round, the right one
	// after it is refused.
	time.Sleep(authcore.DefaultResendInterval + 500*time.Millisecond)
	if r := request(t, "POST", issue, "", auth...); r.Status != 204 {
		t.Fatalf("the resend: %d %s", r.Status, r.Body)
	}
	wantMulti(verify("000000"), "CHALLENGE_LIMIT_EXCEEDED")
	wantMulti(verify(authcore.SandboxCode), "STATE_INVALID")

	session = begin()
	if r := manage(session, "000000"); r.Status != 403 || manageError(t, r) != 1008 {
		t.Fatalf("manage fifth wrong code: %d %s", r.Status, r.Body)
	}
	if r := manage(session, authcore.SandboxCode); r.Status != 403 || manageError(t, r) != 1008 {
		t.Fatalf("manage right code after five wrong: %d %s", r.Status, r.Body)
	}
}

func TestManageLimitsKeyOnClientIPAndUserNameThroughTheBinary(t *testing.T) {
	g := startGateway(t, abuseConfig("memory", abuseUsersFile(t), "rate_limit login 2 1m"))
	multi := func() int {
		return request(t, "POST", g.URL+"/multi/login_with_password", `{"email":"nobody@example.com","password":{"value":"x"}}`).Status
	}
	manage := func(user, clientIP string) response {
		return request(t, "POST", g.URL+"/manage/v2/user/"+user+"/validate/password", `{"password":"Wrong-Pass-1"}`,
			"Authorization", basicAuth("crm"), "clientIp", clientIP)
	}
	for _, want := range []int{403, 403, 429} {
		if got := multi(); got != want {
			t.Fatalf("multi login from 127.0.0.1: %d, want %d", got, want)
		}
	}
	for i, step := range []struct {
		user, ip string
		want     float64
	}{
		{"bob", "203.0.113.1", 1004},   // a bucket apart from the Multi API's
		{"bob", "203.0.113.2", 1004},   // bob's second
		{"BOB", "203.0.113.3", 1010},   // bob's limit, from a fresh address
		{"alice", "203.0.113.3", 1004}, // another user from that address
		{"alice", "203.0.113.3", 1010}, // that address's limit
	} {
		if got := manageError(t, manage(step.user, step.ip)); got != step.want {
			t.Fatalf("step %d: %s from %s: %v, want %v", i+1, step.user, step.ip, got, step.want)
		}
	}
	// The audit lines carry the address the limits used.
	logs := g.logs.String()
	for _, ip := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"} {
		if !strings.Contains(logs, `"client_ip":"`+ip+`"`) {
			t.Errorf("no audit line carries client_ip %s", ip)
		}
	}
}
