package manageapi_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/manageapi"
	"github.com/authgate/authgate/authcore/manageapi/pb"
	"github.com/authgate/authgate/authcore/sender"
)

func TestServiceClientCredentials1002And1003(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		path, body := "/v2/user/bob/validate/password", `{"password":"`+password+`"}`
		for name, auth := range map[string]string{
			"missing":        "",
			"wrong secret":   basic("backend", "guess"),
			"unknown client": basic("nobody", backendSecret),
			"not basic":      "Bearer " + backendSecret,
		} {
			e.clientChecks.Store(0)
			r := e.call(t, "POST", path, body, "Authorization", auth)
			r.wantError(t, manageapi.InvalidServiceCredentials)
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("%s: WWW-Authenticate %q", name, r.header.Get("WWW-Authenticate"))
			}
			// An unknown name costs a hash check like a known one.
			if want := int64(1); (name == "wrong secret" || name == "unknown client") && e.clientChecks.Load() != want {
				t.Errorf("%s: %d secret checks, want %d", name, e.clientChecks.Load(), want)
			}
		}
		e.call(t, "POST", path, body, "Authorization", basic("reader", "reader-secret")).wantOK(t)
		e.call(t, "POST", "/v2/user/validate/otp", `{"userName":"bob","phoneNumber":"+35699000002","otp":"123456"}`,
			"Authorization", basic("reader", "reader-secret")).wantError(t, manageapi.ScopeNotGranted)
		e.call(t, "POST", "/v2/user/send/otp", `{"userName":"bob","phoneNumber":"+35699000002"}`,
			"Authorization", basic("reader", "reader-secret")).wantError(t, manageapi.ScopeNotGranted)

		// A secret that checked out is not hashed again.
		e.clientChecks.Store(0)
		e.call(t, "POST", path, body).wantOK(t)
		e.call(t, "POST", path, body).wantOK(t)
		if n := e.clientChecks.Load(); n > 1 {
			t.Errorf("%d secret checks for two calls with the same credentials", n)
		}
	})
}

func TestUnknownRoutesAndMethodsAnswerInTheEnvelope(t *testing.T) {
	e := newEnv(t, memoryKind())
	r := e.call(t, "GET", "/v2/user/bob/validate/password", "")
	if r.status != 405 || r.header.Get("Allow") != "POST" || len(r.body["errors"].([]any)) != 1 {
		t.Fatalf("wrong method: %d %s (Allow %q)", r.status, r.raw, r.header.Get("Allow"))
	}
	for _, p := range []string{"/", "/v2/user/bob", "/v1/user/validate/otp", "/v2/user/bob/validate/otp/extra",
		"/v2/user//validate/password", "/v2/user/./bob/validate/password", "/v2/user/send/otp/"} {
		if r := e.call(t, "POST", p, "{}"); r.status != 404 || len(r.body["errors"].([]any)) != 1 {
			t.Fatalf("%s: %d %s", p, r.status, r.raw)
		}
	}
}

func TestInvalidRequest1001(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		cases := map[string]struct {
			path, body string
			headers    []string
		}{
			"not JSON":           {"/v2/user/bob/validate/password", `{"password":`, nil},
			"no body":            {"/v2/user/bob/validate/password", ``, nil},
			"no password":        {"/v2/user/bob/validate/password", `{"token":"123456"}`, nil},
			"password a number":  {"/v2/user/bob/validate/password", `{"password":12}`, nil},
			"remember not bool":  {"/v2/user/bob/validate/password", `{"password":"x","mfaRememberDevice":"yes"}`, nil},
			"invalid UTF-8":      {"/v2/user/bob/validate/password", "{\"password\":\"\xff\"}", nil},
			"huge number":        {"/v2/user/send/otp", `{"userName":1e999999,"phoneNumber":"+35699000001"}`, nil},
			"no userName":        {"/v2/user/send/otp", `{"phoneNumber":"+35699000001"}`, nil},
			"no otp":             {"/v2/user/validate/otp", `{"userName":"alice","phoneNumber":"+35699000001"}`, nil},
			"not E.164":          {"/v2/user/validate/otp", `{"userName":"alice","phoneNumber":"99000001","otp":"123456"}`, nil},
			"00 prefix":          {"/v2/user/send/otp", `{"userName":"alice","phoneNumber":"00 356 9900 0001"}`, nil},
			"letters in number":  {"/v2/user/send/otp", `{"userName":"alice","phoneNumber":"+356 CALL ME"}`, nil},
			"clientIp not an IP": {"/v2/user/bob/validate/password", `{"password":"x"}`, []string{"clientIp", "10.0.0.300"}},
		}
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				e.call(t, "POST", tc.path, tc.body, tc.headers...).wantError(t, manageapi.InvalidRequest)
			})
		}
		big := `{"password":"` + strings.Repeat("x", manageapi.MaxBodyBytes) + `"}`
		if r := e.call(t, "POST", "/v2/user/bob/validate/password", big); r.status != 413 || r.body["errors"].([]any)[0].(map[string]any)["errorCode"] != 1001.0 {
			t.Fatalf("oversized body: %d %s", r.status, r.raw)
		}
		if e.userChecks.Load() != 0 {
			t.Fatalf("%d password checks for malformed requests", e.userChecks.Load())
		}
	})
}

func TestUnknownUserAnswersExactlyLikeWrongPassword1004(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		unknown := e.validate(t, "nobody", map[string]any{"password": "Wrong-1"}, "X-Test-Ref", "ref-1")
		unknownChecks := e.userChecks.Swap(0)
		wrong := e.validate(t, "alice", map[string]any{"password": "Wrong-1"}, "X-Test-Ref", "ref-1")
		wrongChecks := e.userChecks.Load()
		wrong.wantError(t, manageapi.InvalidUserCredentials)
		if unknown.status != wrong.status || !bytes.Equal(unknown.raw, wrong.raw) {
			t.Fatalf("unknown user %d %s\nwrong password %d %s", unknown.status, unknown.raw, wrong.status, wrong.raw)
		}
		// One hash per parameter set: the users' bcrypt and the default.
		if unknownChecks != 2 || wrongChecks != 2 {
			t.Fatalf("password-hash checks: unknown %d, wrong %d; want 2 each", unknownChecks, wrongChecks)
		}
	})
}

func TestLockoutIsSharedWithTheMultiAPI1005(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		multiLogin := func(email, pw string) int {
			resp, err := http.Post(e.multi.URL+"/login_with_password", "application/json",
				strings.NewReader(`{"email":"`+email+`","password":{"value":"`+pw+`"}}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		// Five wrong passwords through Manage lock the Multi login ...
		for range 5 {
			e.validate(t, "bob", map[string]any{"password": "Wrong-1"}).wantError(t, manageapi.InvalidUserCredentials)
		}
		e.validate(t, "bob", map[string]any{}).wantError(t, manageapi.AccountLocked)
		if got := multiLogin("bob@example.com", password); got != 423 {
			t.Fatalf("Multi login after five Manage failures: %d, want 423", got)
		}
		// ... and five through Multi lock Manage.
		for range 5 {
			if got := multiLogin("erin@example.com", "Wrong-1"); got != 403 {
				t.Fatalf("Multi wrong password: %d", got)
			}
		}
		e.validate(t, "erin", map[string]any{}).wantError(t, manageapi.AccountLocked)
	})
}

func TestMFASequenceWithRememberedDevice(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		// Step 2: a user without mfa is done at once.
		r := e.validate(t, "bob", map[string]any{})
		r.wantOK(t)
		if r.body["mfaRequired"] != false || r.body["mfaBypassed"] != false || r.body["user"].(map[string]any)["userName"] != "bob" {
			t.Fatalf("no mfa: %s", r.raw)
		}

		// Step 5: the password alone sends a code and opens an MFA session.
		r = e.validate(t, "alice", map[string]any{})
		r.wantOK(t)
		session := r.str("sessionToken")
		if r.body["mfaRequired"] != true || r.str("mfaType") != "SMS" || session == "" || r.body["user"] != nil {
			t.Fatalf("mfa required: %s", r.raw)
		}
		code := e.sms.Last(t).Code
		if e.sms.Last(t).To != "+35699000001" {
			t.Fatalf("code sent to %q", e.sms.Last(t).To)
		}

		// Step 4: the code with the session, and the device remembered.
		e.validate(t, "alice", map[string]any{"sessionToken": session, "token": "000000" + code[:0]}).wantError(t, manageapi.InvalidOTP)
		r = e.validate(t, "alice", map[string]any{"sessionToken": session, "token": code, "mfaRememberDevice": true})
		r.wantOK(t)
		remember := r.str("userMFARememberMeToken")
		if r.body["mfaRequired"] != false || remember == "" || r.body["user"].(map[string]any)["userName"] != "alice" {
			t.Fatalf("mfa done: %s", r.raw)
		}
		// The session was single use.
		e.validate(t, "alice", map[string]any{"sessionToken": session, "token": code}).wantError(t, manageapi.MFASessionInvalid)

		// Step 3: the remember token bypasses MFA; nothing is sent.
		sent := e.sms.Count()
		r = e.validate(t, "alice", map[string]any{"userMFARememberMeToken": remember})
		r.wantOK(t)
		if r.body["mfaRequired"] != false || r.body["mfaBypassed"] != true || r.str("mfaBypassReason") != "REMEMBERED_DEVICE" || e.sms.Count() != sent {
			t.Fatalf("bypass: %s", r.raw)
		}
		// Step 1 still comes first.
		e.validate(t, "alice", map[string]any{"password": "Wrong-1", "userMFARememberMeToken": remember}).wantError(t, manageapi.InvalidUserCredentials)

		// Revoked, the token no longer bypasses.
		e.call(t, "DELETE", "/v2/user/alice/rememberedDevices", `{"userMFARememberMeToken":"`+remember+`"}`).wantOK(t)
		e.wait(resend)
		if r := e.validate(t, "alice", map[string]any{"userMFARememberMeToken": remember}); r.body["mfaRequired"] != true {
			t.Fatalf("revoked token: %s", r.raw)
		}
	})
}

func TestMFASessionInvalid1009(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		session := e.validate(t, "alice", map[string]any{}).str("sessionToken")
		code := e.sms.Last(t).Code
		for name, fields := range map[string]map[string]any{
			"made-up session":   {"sessionToken": "not-a-session", "token": code},
			"no session":        {"token": code},
			"another's session": {"sessionToken": session, "emailToken": code},
		} {
			t.Run(name, func(t *testing.T) {
				user := "alice"
				if name == "another's session" {
					user = "erin"
				}
				e.validate(t, user, fields).wantError(t, manageapi.MFASessionInvalid)
			})
		}
		// A code in the other method's field is a malformed request.
		e.validate(t, "alice", map[string]any{"sessionToken": session, "emailToken": code}).wantError(t, manageapi.InvalidRequest)
		e.validate(t, "alice", map[string]any{"sessionToken": session, "token": code}).wantOK(t)
	})
}

func TestOTPErrors1006To1008(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		send := func() string {
			t.Helper()
			e.call(t, "POST", "/v2/user/send/otp", `{"userName":"alice","phoneNumber":"+356 9900 0001"}`).wantOK(t)
			return e.sms.Last(t).Code
		}
		check := func(code string) reply {
			return e.call(t, "POST", "/v2/user/validate/otp", `{"userName":"alice","phoneNumber":"+35699000001","otp":"`+code+`"}`)
		}
		code := send()
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		for range 4 {
			check(wrong).wantError(t, manageapi.InvalidOTP)
		}
		check(wrong).wantError(t, manageapi.OTPAttemptsExceeded)
		check(code).wantError(t, manageapi.OTPAttemptsExceeded)
		// The round's tries are used up: no resend brings more.
		e.wait(resend)
		e.call(t, "POST", "/v2/user/send/otp", `{"userName":"alice","phoneNumber":"+35699000001"}`).wantError(t, manageapi.OTPAttemptsExceeded)

		// Another number is another round.
		e.call(t, "POST", "/v2/user/send/otp", `{"userName":"alice","phoneNumber":"+35699000009"}`).wantOK(t)
		code = e.sms.Last(t).Code
		e.wait(codeTTL)
		e.call(t, "POST", "/v2/user/validate/otp", `{"userName":"alice","phoneNumber":"+35699000009","otp":"`+code+`"}`).wantError(t, manageapi.OTPExpired)

		// Nothing sent to a number: as wrong as a wrong code.
		e.call(t, "POST", "/v2/user/validate/otp", `{"userName":"bob","phoneNumber":"+35699000002","otp":"123456"}`).wantError(t, manageapi.InvalidOTP)
		e.call(t, "POST", "/v2/user/validate/otp", `{"userName":"nobody","phoneNumber":"+35699000002","otp":"123456"}`).wantError(t, manageapi.InvalidOTP)
	})
}

func TestValidateOTPComparesNumbersInE164(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		e.call(t, "POST", "/v2/user/send/otp", `{"userName":"alice","phoneNumber":"+356 9900 0001"}`).wantOK(t)
		code := e.sms.Last(t).Code
		if to := e.sms.Last(t).To; to != "+35699000001" {
			t.Fatalf("sent to %q", to)
		}
		e.call(t, "POST", "/v2/user/validate/otp", `{"userName":"alice","phoneNumber":"+35699000002","otp":"`+code+`"}`).wantError(t, manageapi.InvalidOTP)
		r := e.call(t, "POST", "/v2/user/validate/otp", `{"userName":"alice","phoneNumber":"+356-9900-(0001)","otp":"`+code+`"}`)
		r.wantOK(t)
		if r.body["user"].(map[string]any)["userName"] != "alice" {
			t.Fatalf("%s", r.raw)
		}
		e.call(t, "POST", "/v2/user/validate/otp", `{"userName":"alice","phoneNumber":"+35699000001","otp":"`+code+`"}`).wantError(t, manageapi.InvalidOTP)
	})
}

// TestValidateOTPProtobufMatchesJSON decodes the protobuf answer with the
// generated types and compares it field by field with the JSON answer.
func TestValidateOTPProtobufMatchesJSON(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		answer := func(accept string) reply {
			e.wait(resend)
			e.call(t, "POST", "/v2/user/send/otp", `{"userName":"alice","phoneNumber":"+35699000001"}`).wantOK(t)
			return e.call(t, "POST", "/v2/user/validate/otp",
				`{"userName":"alice","phoneNumber":"+35699000001","otp":"`+e.sms.Last(t).Code+`"}`, "Accept", accept, "X-Test-Ref", "ref-pb")
		}
		js := answer("application/json")
		js.wantOK(t)
		bin := answer("application/json;q=0.5, application/x-protobuf")
		if bin.status != 200 || bin.header.Get("Content-Type") != "application/x-protobuf" {
			t.Fatalf("protobuf answer: %d %q %q", bin.status, bin.header.Get("Content-Type"), bin.raw)
		}
		var msg pb.ValidateOtpResponse
		if err := proto.Unmarshal(bin.raw, &msg); err != nil {
			t.Fatal(err)
		}
		if msg.ApiRequestId != js.str("apiRequestId") || len(msg.Errors) != 0 || len(msg.Warnings) != 0 {
			t.Fatalf("envelope: %v", &msg)
		}
		ju := js.body["user"].(map[string]any)
		pu := msg.User
		fields := map[string]any{
			"firstName": pu.FirstName, "lastName": pu.LastName, "userName": pu.UserName, "email": pu.Email,
			"phone": pu.Phone, "textNumber": pu.TextNumber, "nickName": pu.NickName, "uuid": pu.Uuid,
			"passwordExpires": pu.PasswordExpires, "forcePasswordChange": pu.ForcePasswordChange,
			"latestInviteStatus": pu.LatestInviteStatus, "latestInviteDate": pu.LatestInviteDate,
			"latestInviteUUID": pu.LatestInviteUuid, "isValid": pu.IsValid, "lastLoginTimestamp": pu.LastLoginTimestamp,
			"phoneCountryCode": pu.PhoneCountryCode, "textCountryCode": pu.TextCountryCode, "userRolloutStage": pu.UserRolloutStage,
		}
		if len(fields) != len(ju) {
			t.Fatalf("JSON user has %d fields, protobuf %d: %v", len(ju), len(fields), ju)
		}
		for name, pv := range fields {
			jv, ok := ju[name]
			if !ok {
				t.Errorf("JSON user lacks %s", name)
				continue
			}
			// Unset optional fields are nil pointers in protobuf, null in JSON.
			if rv := reflect.ValueOf(pv); rv.Kind() == reflect.Pointer {
				if rv.IsNil() {
					pv = nil
				} else {
					pv = rv.Elem().Interface()
				}
			}
			if n, isInt := pv.(int64); isInt {
				pv = float64(n)
			}
			if !reflect.DeepEqual(jv, pv) {
				t.Errorf("%s: JSON %#v, protobuf %#v", name, jv, pv)
			}
		}
		if pu.GetPasswordExpires() != "2025-01-01T00:00:00Z" || pu.GetUuid() != "6f1c2a52-0d3e-4c61-9a57-3b1f6f8f1001" || !pu.IsValid {
			t.Fatalf("user %v", pu)
		}

		// Errors stay JSON whatever the Accept header says.
		r := e.call(t, "POST", "/v2/user/validate/otp", `{"userName":"alice","phoneNumber":"+35699000001","otp":"999999"}`, "Accept", "application/x-protobuf")
		if r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("error as %q", r.header.Get("Content-Type"))
		}
	})
}

func TestTOTPCodes(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		r := e.validate(t, "tom", map[string]any{})
		if r.str("mfaType") != "TOTP" || e.sms.Count()+e.mail.Count() != 0 {
			t.Fatalf("%s (sent %d)", r.raw, e.sms.Count()+e.mail.Count())
		}
		code, _ := totp.GenerateCode(totpSecret, e.clk.Now().Add(-authcore.TOTPPeriod))
		e.validate(t, "tom", map[string]any{"sessionToken": r.str("sessionToken"), "token": code}).wantOK(t)
		// The same code again (a replay) is refused.
		r = e.validate(t, "tom", map[string]any{})
		e.validate(t, "tom", map[string]any{"sessionToken": r.str("sessionToken"), "token": code}).wantError(t, manageapi.InvalidOTP)
	})
}

func TestEmailCodesThroughSMTP(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		mail := startSMTP(t)
		e := newEnv(t, kind, func(o *authcore.Options) {
			o.EmailSender = sender.NewSMTP(mail.addr, "authgate <no-reply@example.com>", "", "")
		})
		r := e.validate(t, "erin", map[string]any{})
		if r.str("mfaType") != "EMAIL" {
			t.Fatalf("%s", r.raw)
		}
		rcpt, code := mail.lastCode(t)
		if rcpt != "erin@example.com" || code == "" || e.sms.Count() != 0 {
			t.Fatalf("mailed %q to %q (sms %d)", code, rcpt, e.sms.Count())
		}
		e.validate(t, "erin", map[string]any{"sessionToken": r.str("sessionToken"), "emailToken": code}).wantOK(t)
	})
}

func TestSandboxCodesAre123456AndNothingIsSent(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		for name, tune := range map[string]func(*authcore.Options){
			"sandbox mode":         func(o *authcore.Options) { o.Sandbox = true },
			"sandbox email sender": func(o *authcore.Options) { o.EmailSender = sender.Sandbox{} },
		} {
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, kind, tune)
				r := e.validate(t, "erin", map[string]any{})
				e.validate(t, "erin", map[string]any{"sessionToken": r.str("sessionToken"), "emailToken": "123456"}).wantOK(t)
				if e.mail.Count() != 0 {
					t.Fatalf("%d mails sent", e.mail.Count())
				}
			})
		}
	})
}

func TestWarningWhenACodeWasJustSent(t *testing.T) {
	e := newEnv(t, memoryKind())
	e.validate(t, "alice", map[string]any{}).wantOK(t)
	r := e.validate(t, "alice", map[string]any{})
	r.wantOK(t)
	w := r.body["warnings"].([]any)
	if len(w) != 1 || w[0].(map[string]any)["warningCode"] != float64(manageapi.CodeNotResent.Code) || e.sms.Count() != 1 {
		t.Fatalf("%s (sent %d)", r.raw, e.sms.Count())
	}
	if r.str("sessionToken") == "" {
		t.Fatal("no sessionToken")
	}
}

func TestMisconfiguredUserIsInternal1500(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		e.validate(t, "dave", map[string]any{}).wantError(t, manageapi.Internal)
	})
}

func TestRateLimitsUseTheClientIPHeader(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind, func(o *authcore.Options) {
			o.RateLimits = map[string]authcore.RateLimit{authcore.LimitLogin: {Limit: 2, Window: time.Hour}}
		})
		// Per end-user address: the clientIp header, not the backend's own.
		e.validate(t, "bob", map[string]any{}, "clientIp", "198.51.100.7").wantOK(t)
		e.validate(t, "tom", map[string]any{}, "clientIp", "198.51.100.7").wantOK(t)
		r := e.validate(t, "erin", map[string]any{}, "clientIp", "198.51.100.7")
		r.wantError(t, manageapi.RateLimited)
		if r.header.Get("Retry-After") == "" || r.header.Get("x-ratelimit-limit") != "2" || r.header.Get("x-ratelimit-reset") == "" {
			t.Fatalf("429 headers %v", r.header)
		}
		e.validate(t, "erin", map[string]any{}, "clientIp", "198.51.100.8").wantOK(t)
		// Per user name, whatever the address.
		e.validate(t, "bob", map[string]any{}, "clientIp", "198.51.100.9").wantOK(t)
		e.validate(t, "BOB", map[string]any{}, "clientIp", "198.51.100.10").wantError(t, manageapi.RateLimited)
	})
}

// failingStore answers every key-value read with an outage.
type failingStore struct{ authcore.Store }

func (failingStore) Get(context.Context, string) ([]byte, error) {
	return nil, errors.Join(authcore.ErrUnavailable, errors.New("connection refused"))
}

func TestStoreOutageIsServiceUnavailable1503(t *testing.T) {
	mem := memoryKind()
	kind := storeKind{name: "failing", open: func(t testing.TB, clk *clock) authcore.Store { return failingStore{mem.open(t, clk)} }}
	e := newEnv(t, kind)
	r := e.validate(t, "bob", map[string]any{})
	r.wantError(t, manageapi.ServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

// Every audit line of a Manage call, the core's lockout line included,
// carries the address the limits used: the clientIp header.
func TestAuditLinesCarryTheClientIPTheLimitsUse(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	e := newEnv(t, memoryKind(), func(o *authcore.Options) { o.Logger = zap.New(core) })
	for range 5 {
		e.validate(t, "bob", map[string]any{"password": "Wrong-1"}, "clientIp", "203.0.113.5").wantError(t, manageapi.InvalidUserCredentials)
	}
	lines := logs.All()
	if !slices.ContainsFunc(lines, func(l observer.LoggedEntry) bool { return l.Message == "lockout" }) {
		t.Fatal("no lockout line")
	}
	for _, l := range lines {
		if ip := l.ContextMap()["client_ip"]; ip != "203.0.113.5" {
			t.Errorf("%q line: client_ip %v, want the clientIp header's 203.0.113.5", l.Message, ip)
		}
	}
}
