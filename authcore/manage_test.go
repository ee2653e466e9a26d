package authcore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/authcore"
)

// manageTOTPSecret is the TOTP secret of the test user tom.
const manageTOTPSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

// manageResend is the resend interval of these tests: long enough that
// two calls meant to fall inside it do so on a loaded machine.
const manageResend = 500 * time.Millisecond

// manageEnv is a gateway with Manage API users, recording senders, a
// counted password hash and a settable clock (see stepUpEnv for how the
// clock and Redis TTLs agree).
type manageEnv struct {
	gw        *authcore.Services
	clk       *clock
	sms, mail *recordingSender
	realTime  bool
	checks    *countingHasher
}

func (e *manageEnv) wait(d time.Duration) {
	e.clk.Advance(d)
	if e.realTime {
		time.Sleep(d)
	}
}

func manageUsers(t *testing.T) *authcore.StaticUsers {
	t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	id := []authcore.Identity{{Type: "CONSUMER", ID: "2001"}}
	users, err := authcore.NewStaticUsers([]authcore.User{
		{ID: "1001", CredentialsType: "ROOT", Email: "alice@example.com", UserName: "alice", Password: string(hash),
			TextNumber: "+35699000001", Identities: id, MFA: "SMS"},
		{ID: "1002", CredentialsType: "USER", Email: "bob@example.com", UserName: "Bob", Password: string(hash), Identities: id},
		{ID: "1003", CredentialsType: "USER", Email: "erin@example.com", UserName: "erin", Password: string(hash), Identities: id, MFA: "EMAIL"},
		{ID: "1004", CredentialsType: "USER", Email: "tom@example.com", UserName: "tom", Password: string(hash), Identities: id,
			MFA: "TOTP", TOTPSecret: manageTOTPSecret},
		{ID: "1005", CredentialsType: "USER", Email: "dave@example.com", UserName: "dave", Password: string(hash), Identities: id, MFA: "SMS"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return users
}

func newManageEnv(t *testing.T, newStores nodeStores, realTime bool, clk *clock) *manageEnv {
	t.Helper()
	e := &manageEnv{clk: clk, sms: &recordingSender{}, mail: &recordingSender{}, realTime: realTime, checks: &countingHasher{}}
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	users := manageUsers(t)
	store, _ := newStores()
	gw, err := authcore.New(authcore.Options{
		Store: store, Users: users, Tokens: authcore.NewTokens("test", key, clk.Now), Now: clk.Now,
		OTPSender: e.sms, EmailSender: e.mail, CodeKey: key.Derive("codes"),
		CodeTTL: testCodeTTL, ResendInterval: manageResend, Hasher: e.checks, PasswordHash: testHashParams,
		RateLimits: map[string]authcore.RateLimit{},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.gw = gw
	return e
}

func (e *manageEnv) validate(req authcore.ValidatePasswordRequest) (*authcore.ValidatePasswordResult, error) {
	if req.Password == "" {
		req.Password = testPassword
	}
	return e.gw.ManageMFA.ValidatePassword(context.Background(), req)
}

// begin validates the password of an MFA user and returns the sessionToken.
func (e *manageEnv) begin(t *testing.T, userName string) string {
	t.Helper()
	res, err := e.validate(authcore.ValidatePasswordRequest{UserName: userName})
	if err != nil || !res.MFARequired || res.SessionToken == "" {
		t.Fatalf("begin MFA for %s: %+v, %v", userName, res, err)
	}
	return res.SessionToken
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func TestManageUnknownUserAndWrongPasswordCostTheSame(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		e := newManageEnv(t, newStores, realTime, clk)
		_, errUnknown := e.validate(authcore.ValidatePasswordRequest{UserName: "nobody", Password: "x"})
		unknown := e.checks.count()
		_, errWrong := e.validate(authcore.ValidatePasswordRequest{UserName: "alice", Password: "x"})
		wrong := e.checks.count() - unknown
		wantErr(t, errUnknown, authcore.ErrInvalidCredentials)
		wantErr(t, errWrong, authcore.ErrInvalidCredentials)
		// One hash per parameter set: the users' bcrypt and the default.
		if unknown != 2 || wrong != 2 {
			t.Fatalf("password-hash verifications: unknown user %d, wrong password %d; want 2 each", unknown, wrong)
		}
	})
}

func TestManageUserWithoutMFAIsDone(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		e := newManageEnv(t, newStores, realTime, clk)
		res, err := e.validate(authcore.ValidatePasswordRequest{UserName: "bob"}) // userName is case-insensitive
		if err != nil || res.MFARequired || res.MFABypassed || res.User.ID != "1002" || res.SessionToken != "" {
			t.Fatalf("%+v, %v", res, err)
		}
	})
}

func TestManageSMSSequenceWithRememberedDevice(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		e := newManageEnv(t, newStores, realTime, clk)
		ctx := context.Background()
		res, err := e.validate(authcore.ValidatePasswordRequest{UserName: "alice"})
		if err != nil || !res.MFARequired || res.MFAType != "SMS" || res.SessionToken == "" {
			t.Fatalf("step 5: %+v, %v", res, err)
		}
		m := e.sms.Last(t)
		if m.To != "+35699000001" || m.Channel != "SMS" || m.Purpose != authcore.PurposeLogin || len(m.Code) != 6 {
			t.Fatalf("sent %+v", m)
		}
		session := res.SessionToken

		// A wrong code leaves the session usable; the right one ends it.
		_, err = e.validate(authcore.ValidatePasswordRequest{UserName: "alice", SessionToken: session, Code: "000000"})
		wantErr(t, err, authcore.ErrInvalidOTP)
		res, err = e.validate(authcore.ValidatePasswordRequest{UserName: "alice", SessionToken: session, Code: m.Code, RememberDevice: true})
		if err != nil || res.MFARequired || res.User.ID != "1001" || res.RememberToken == "" {
			t.Fatalf("step 4: %+v, %v", res, err)
		}
		remember := res.RememberToken
		_, err = e.validate(authcore.ValidatePasswordRequest{UserName: "alice", SessionToken: session, Code: m.Code})
		wantErr(t, err, authcore.ErrMFASessionInvalid)

		// The remember token bypasses MFA, for alice only, until revoked.
		sent := e.sms.Count()
		res, err = e.validate(authcore.ValidatePasswordRequest{UserName: "alice", RememberToken: remember})
		if err != nil || res.MFARequired || !res.MFABypassed || res.MFABypassReason != "REMEMBERED_DEVICE" || e.sms.Count() != sent {
			t.Fatalf("step 3: %+v, %v", res, err)
		}
		if _, err := e.validate(authcore.ValidatePasswordRequest{UserName: "alice", Password: "wrong", RememberToken: remember}); !errors.Is(err, authcore.ErrInvalidCredentials) {
			t.Fatalf("a remember token must not stand in for the password: %v", err)
		}
		res, err = e.validate(authcore.ValidatePasswordRequest{UserName: "dave", RememberToken: remember})
		if err == nil && res.MFABypassed {
			t.Fatal("alice's remember token bypassed dave's MFA")
		}
		if err := e.gw.ManageMFA.ForgetDevice(ctx, "alice", remember); err != nil {
			t.Fatal(err)
		}
		e.wait(manageResend)
		res, err = e.validate(authcore.ValidatePasswordRequest{UserName: "alice", RememberToken: remember})
		if err != nil || !res.MFARequired {
			t.Fatalf("revoked token: %+v, %v", res, err)
		}
	})
}

func TestManageForgetAllDevices(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		e := newManageEnv(t, newStores, realTime, clk)
		var tokens []string
		for range 2 {
			session := e.begin(t, "alice")
			res, err := e.validate(authcore.ValidatePasswordRequest{UserName: "alice", SessionToken: session,
				Code: e.sms.Last(t).Code, RememberDevice: true})
			if err != nil {
				t.Fatal(err)
			}
			tokens = append(tokens, res.RememberToken)
			e.wait(manageResend)
		}
		e.wait(time.Millisecond)
		if err := e.gw.ManageMFA.ForgetAllDevices(context.Background(), "alice"); err != nil {
			t.Fatal(err)
		}
		e.wait(time.Millisecond)
		var res *authcore.ValidatePasswordResult
		for _, tok := range tokens {
			var err error
			res, err = e.validate(authcore.ValidatePasswordRequest{UserName: "alice", RememberToken: tok})
			if err != nil || res.MFABypassed || !res.MFARequired {
				t.Fatalf("a revoked token still bypasses: %+v, %v", res, err)
			}
			e.wait(manageResend)
		}
		// Devices remembered after the revocation work.
		res, err := e.validate(authcore.ValidatePasswordRequest{UserName: "alice", SessionToken: res.SessionToken,
			Code: e.sms.Last(t).Code, RememberDevice: true})
		if err != nil {
			t.Fatal(err)
		}
		if res, err = e.validate(authcore.ValidatePasswordRequest{UserName: "alice", RememberToken: res.RememberToken}); err != nil || !res.MFABypassed {
			t.Fatalf("a new token after revocation: %+v, %v", res, err)
		}
	})
}

func TestManageSessionTokenIsBoundToItsUser(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		e := newManageEnv(t, newStores, realTime, clk)
		session := e.begin(t, "alice")
		code := e.sms.Last(t).Code
		_, err := e.validate(authcore.ValidatePasswordRequest{UserName: "erin", SessionToken: session, EmailCode: code})
		wantErr(t, err, authcore.ErrMFASessionInvalid)
		_, err = e.validate(authcore.ValidatePasswordRequest{UserName: "alice", Code: code})
		wantErr(t, err, authcore.ErrMFASessionInvalid)
		_, err = e.validate(authcore.ValidatePasswordRequest{UserName: "alice", SessionToken: "made-up", Code: code})
		wantErr(t, err, authcore.ErrMFASessionInvalid)
	})
}

func TestManageEmailCodes(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		e := newManageEnv(t, newStores, realTime, clk)
		res, err := e.validate(authcore.ValidatePasswordRequest{UserName: "erin"})
		if err != nil || res.MFAType != "EMAIL" {
			t.Fatalf("%+v, %v", res, err)
		}
		m := e.mail.Last(t)
		if m.To != "erin@example.com" || m.Channel != "EMAIL" || e.sms.Count() != 0 {
			t.Fatalf("sent %+v (sms %d)", m, e.sms.Count())
		}
		_, err = e.validate(authcore.ValidatePasswordRequest{UserName: "erin", SessionToken: res.SessionToken, Code: m.Code})
		wantErr(t, err, authcore.ErrCodeField)
		res, err = e.validate(authcore.ValidatePasswordRequest{UserName: "erin", SessionToken: res.SessionToken, EmailCode: m.Code})
		if err != nil || res.MFARequired || res.User.ID != "1003" {
			t.Fatalf("%+v, %v", res, err)
		}
	})
}

func TestManageCodeLimitsAndExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		e := newManageEnv(t, newStores, realTime, clk)
		session := e.begin(t, "alice")
		code := e.sms.Last(t).Code
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		try := func(c string) error {
			_, err := e.validate(authcore.ValidatePasswordRequest{UserName: "alice", SessionToken: session, Code: c})
			return err
		}
		for i := 1; i <= 4; i++ {
			wantErr(t, try(wrong), authcore.ErrInvalidOTP)
		}
		wantErr(t, try(wrong), authcore.ErrOTPAttemptsExceeded)
		wantErr(t, try(code), authcore.ErrOTPAttemptsExceeded)
		// The round's tries are used up: no resend brings more.
		e.wait(manageResend)
		_, err := e.validate(authcore.ValidatePasswordRequest{UserName: "alice"})
		wantErr(t, err, authcore.ErrOTPAttemptsExceeded)

		// A resend within the interval sends nothing: the last code stands.
		e.begin(t, "erin")
		code = e.mail.Last(t).Code
		res, err := e.validate(authcore.ValidatePasswordRequest{UserName: "erin"})
		if err != nil || !res.CodeNotResent || e.mail.Last(t).Code != code || e.mail.Count() != 1 {
			t.Fatalf("quick resend: %+v, %v", res, err)
		}
		e.wait(manageResend)
		session = e.begin(t, "erin") // the resend
		code = e.mail.Last(t).Code
		// A third code in the round is refused.
		e.wait(manageResend)
		_, err = e.validate(authcore.ValidatePasswordRequest{UserName: "erin"})
		wantErr(t, err, authcore.ErrOTPAttemptsExceeded)

		e.wait(testCodeTTL)
		_, err = e.validate(authcore.ValidatePasswordRequest{UserName: "erin", SessionToken: session, EmailCode: code})
		wantErr(t, err, authcore.ErrOTPExpired)
	})
}

func TestManageTOTP(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		e := newManageEnv(t, newStores, realTime, clk)
		at := func(d time.Duration) string {
			c, err := totp.GenerateCode(manageTOTPSecret, clk.Now().Add(d))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		res, err := e.validate(authcore.ValidatePasswordRequest{UserName: "tom"})
		if err != nil || res.MFAType != "TOTP" || e.sms.Count()+e.mail.Count() != 0 {
			t.Fatalf("step 5 sent something or failed: %+v, %v", res, err)
		}
		try := func(code string) error {
			session := e.begin(t, "tom")
			_, err := e.validate(authcore.ValidatePasswordRequest{UserName: "tom", SessionToken: session, Code: code})
			return err
		}
		// A six-digit code that no step around now has.
		wrong := "000000"
		for strings.Contains(at(-authcore.TOTPPeriod)+at(0)+at(authcore.TOTPPeriod), wrong) {
			wrong = authcore.RandomDigits(6)
		}
		// One step of drift either way is accepted, each step once.
		wantErr(t, try(at(-authcore.TOTPPeriod)), nil)
		wantErr(t, try(at(0)), nil)
		wantErr(t, try(at(authcore.TOTPPeriod)), nil)
		wantErr(t, try(at(0)), authcore.ErrInvalidOTP)
		wantErr(t, try(at(3*authcore.TOTPPeriod)), authcore.ErrInvalidOTP)
		wantErr(t, try(at(-3*authcore.TOTPPeriod)), authcore.ErrInvalidOTP)
		wantErr(t, try("12345"), authcore.ErrInvalidOTP)
		wantErr(t, try(wrong), authcore.ErrOTPAttemptsExceeded)
		e.clk.Advance(2 * authcore.TOTPPeriod)
		wantErr(t, try(at(0)), authcore.ErrOTPAttemptsExceeded)
	})
}

func TestManageMisconfiguredMFA(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		e := newManageEnv(t, newStores, realTime, clk)
		_, err := e.validate(authcore.ValidatePasswordRequest{UserName: "dave"})
		wantErr(t, err, authcore.ErrMFAMisconfigured)
	})
}

func TestManageLockoutIsSharedWithMultiLogin(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		e := newManageEnv(t, newStores, realTime, clk)
		ctx := context.Background()
		for range authcore.DefaultLockoutAttempts {
			_, err := e.validate(authcore.ValidatePasswordRequest{UserName: "alice", Password: "wrong"})
			wantErr(t, err, authcore.ErrInvalidCredentials)
		}
		_, err := e.gw.Sessions.Login(ctx, "alice@example.com", testPassword)
		wantErr(t, err, authcore.ErrLocked)

		for range authcore.DefaultLockoutAttempts {
			_, err := e.gw.Sessions.Login(ctx, "bob@example.com", "wrong")
			wantErr(t, err, authcore.ErrInvalidCredentials)
		}
		_, err = e.validate(authcore.ValidatePasswordRequest{UserName: "bob"})
		wantErr(t, err, authcore.ErrLocked)
	})
}

func TestManageOTPByPhoneNumber(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		e := newManageEnv(t, newStores, realTime, clk)
		ctx := context.Background()
		if err := e.gw.ManageMFA.SendOTP(authcore.WithRequestInfo(ctx, "", "192.0.2.1"), "alice", "+356 (9900) 00-01"); err != nil {
			t.Fatal(err)
		}
		m := e.sms.Last(t)
		if m.To != "+35699000001" || m.Purpose != authcore.PurposeVerification {
			t.Fatalf("sent %+v", m)
		}
		_, err := e.gw.ManageMFA.ValidateOTP(authcore.WithRequestInfo(ctx, "", "192.0.2.1"), "alice", "+35699000002", m.Code)
		wantErr(t, err, authcore.ErrInvalidOTP)
		_, err = e.gw.ManageMFA.ValidateOTP(authcore.WithRequestInfo(ctx, "", "192.0.2.1"), "alice", "0035699000001", m.Code)
		wantErr(t, err, authcore.ErrBadPhoneNumber)
		_, err = e.gw.ManageMFA.ValidateOTP(authcore.WithRequestInfo(ctx, "", "192.0.2.1"), "nobody", "+35699000001", m.Code)
		wantErr(t, err, authcore.ErrInvalidOTP)
		u, err := e.gw.ManageMFA.ValidateOTP(authcore.WithRequestInfo(ctx, "", "192.0.2.1"), "ALICE", "+356 9900 0001", m.Code)
		if err != nil || u.ID != "1001" {
			t.Fatalf("%+v, %v", u, err)
		}
		_, err = e.gw.ManageMFA.ValidateOTP(authcore.WithRequestInfo(ctx, "", "192.0.2.1"), "alice", "+35699000001", m.Code)
		wantErr(t, err, authcore.ErrInvalidOTP) // single use

		// A quick resend is rate limited; an unknown user gets no code, silently.
		e.wait(manageResend)
		if err := e.gw.ManageMFA.SendOTP(authcore.WithRequestInfo(ctx, "", "192.0.2.1"), "alice", "+35699000001"); err != nil {
			t.Fatal(err)
		}
		var rl *authcore.RateLimited
		if err := e.gw.ManageMFA.SendOTP(authcore.WithRequestInfo(ctx, "", "192.0.2.1"), "alice", "+35699000001"); !errors.As(err, &rl) {
			t.Fatalf("quick resend: %v", err)
		}
		sent := e.sms.Count()
		if err := e.gw.ManageMFA.SendOTP(authcore.WithRequestInfo(ctx, "", "192.0.2.1"), "nobody", "+35699000001"); err != nil || e.sms.Count() != sent {
			t.Fatalf("unknown user: %v, sent %d", err, e.sms.Count()-sent)
		}
	})
}

func TestNormalizeE164(t *testing.T) {
	for in, want := range map[string]string{
		"+35699000001": "+35699000001", "+356 9900 0001": "+35699000001", "+1 (415) 555-0100": "+14155550100",
		"35699000001": "", "+0123456789": "", "+356 99x0 0001": "", "": "", "+1234": "",
	} {
		got, ok := authcore.NormalizeE164(in)
		if (want == "") == ok || (ok && got != want) {
			t.Errorf("NormalizeE164(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// The Manage MFA round takes five wrong codes in all, across the resend.
func TestManageWrongCodesCountAcrossTheResend(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, realTime bool, clk *clock) {
		e := newManageEnv(t, newStores, realTime, clk)
		try := func(session, code string) error {
			_, err := e.validate(authcore.ValidatePasswordRequest{UserName: "alice", SessionToken: session, Code: code})
			return err
		}
		session := e.begin(t, "alice")
		wrong := otherCode(e.sms.Last(t).Code)
		for range 4 {
			wantErr(t, try(session, wrong), authcore.ErrInvalidOTP)
		}
		e.wait(manageResend)
		session = e.begin(t, "alice") // the resend
		code := e.sms.Last(t).Code
		wantErr(t, try(session, otherCode(code)), authcore.ErrOTPAttemptsExceeded)
		wantErr(t, try(session, code), authcore.ErrOTPAttemptsExceeded)
	})
}
