package authcore

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// MFA methods a user may have (the users_file field mfa), as the Manage
// API reports them in mfaType.
const (
	MFASMS   = "SMS"
	MFAEmail = "EMAIL"
	MFATOTP  = "TOTP"
)

// ChannelEmail is the channel of EMAIL codes, as senders receive it.
const ChannelEmail = "EMAIL"

// Purposes of the Manage API's codes, as senders receive them.
const (
	// PurposeLogin: the second factor of a password validation.
	PurposeLogin = "login"
	// PurposeVerification: a code a trusted backend asked for with
	// send/otp, to check that the user holds a phone number.
	PurposeVerification = "verification"
)

// Lifetimes of the Manage API's MFA state.
const (
	// RememberDeviceTTL is how long a userMFARememberMeToken bypasses MFA.
	RememberDeviceTTL = 30 * 24 * time.Hour
	// MFASessionTTL is how long a sessionToken waits for its code.
	MFASessionTTL = 5 * time.Minute
	// TOTPPeriod is the RFC 6238 time step; codes have 6 digits (SHA-1),
	// as authenticator apps make them, and one step either side of now is
	// accepted for clock drift.
	TOTPPeriod = 30 * time.Second
)

// MFABypassRememberedDevice is the mfaBypassReason of a remembered device.
const MFABypassRememberedDevice = "REMEMBERED_DEVICE"

// Errors of the Manage API's one-time codes; the HTTP layer maps them to
// its numbered codes.
var (
	// ErrInvalidOTP: a wrong, used or unknown code (or an unknown user on
	// validate/otp, indistinguishably).
	ErrInvalidOTP = errors.New("invalid one-time code")
	// ErrOTPExpired: the right challenge, past its time.
	ErrOTPExpired = errors.New("one-time code expired")
	// ErrOTPAttemptsExceeded: the challenge took its last try, or no more
	// codes may be issued in this round.
	ErrOTPAttemptsExceeded = errors.New("one-time code attempts exceeded")
	// ErrMFASessionInvalid: the sessionToken is missing, unknown, expired,
	// used, or another user's.
	ErrMFASessionInvalid = errors.New("mfa session invalid")
	// ErrCodeField: a code in the field of the other method (emailToken
	// holds EMAIL codes, token SMS and TOTP ones).
	ErrCodeField = errors.New("the code is in the wrong field for the user's mfa")
	// ErrMFAMisconfigured: the user's mfa cannot be served (no number for
	// SMS, no email, no or a bad totpSecret). An operator must fix the user.
	ErrMFAMisconfigured = errors.New("mfa misconfigured for this user")
)

// ValidatePasswordRequest is a Manage API password validation: the
// password always, and the MFA fields of the step the caller is at.
type ValidatePasswordRequest struct {
	// UserName names the user (case-insensitive).
	UserName string
	// Password is the password to check.
	Password string
	// Code is an SMS or TOTP code (the API's token).
	Code string
	// EmailCode is an EMAIL code (the API's emailToken).
	EmailCode string
	// RememberToken is a userMFARememberMeToken from an earlier success.
	RememberToken string
	// SessionToken is the sessionToken of the MFA step that sent the code.
	SessionToken string
	// RememberDevice asks for a new RememberToken when MFA completes.
	RememberDevice bool
}

// ValidatePasswordResult is a right password and where MFA stands.
type ValidatePasswordResult struct {
	// User is the user, for the caller's records; the API shows it only
	// once MFA is done.
	User *User
	// MFARequired: a code must follow, with SessionToken.
	MFARequired bool
	// MFABypassed: MFA was skipped, for MFABypassReason.
	MFABypassed bool
	// MFABypassReason is MFABypassRememberedDevice.
	MFABypassReason string
	// MFAType is the user's mfa, when MFARequired.
	MFAType string
	// SessionToken carries the MFA step to the code, when MFARequired.
	SessionToken string
	// CodeNotResent: a code went out less than the resend interval ago,
	// so none was sent now; the earlier one still works.
	CodeNotResent bool
	// RememberToken is a new userMFARememberMeToken (RememberDevice).
	RememberToken string
}

// ManageMFA serves the Manage API: a trusted backend validates a user's
// password and walks the MFA steps (codes by SMS or EMAIL, TOTP,
// remembered devices), or checks that the user holds a phone number. Its
// state lives under Keys.ManageScope, Keys.MFASession, Keys.TOTPTries,
// Keys.TOTPUsed, Keys.RememberedDevice and Keys.DevicesRevoked. Every call
// counts against the Manage API's limits of the end-user address in ctx
// (WithRequestInfo) and of the user name.
type ManageMFA struct {
	deps
	accounts    *Accounts
	passwords   *Passwords
	limits      *Limits
	delivery    *delivery
	otpSender   Sender
	emailSender Sender
}

// ValidatePassword checks a user's password for a trusted backend and
// walks the MFA steps: a wrong password or unknown user is
// ErrInvalidCredentials (same cost, through the lockout shared with the
// Multi API, ErrLocked once locked); a user without mfa is done; a valid
// remember token bypasses MFA; a sessionToken with the code completes it;
// anything else sends a code (none for TOTP) and returns a sessionToken.
// Every call counts against the Manage API's login limits of the end-user
// address in ctx and req.UserName, a sent code against its code_issue
// limits and a checked one against code_verify (*RateLimited); the
// password check counts in the login metrics under LoginAPIManage.
func (m *ManageMFA) ValidatePassword(ctx context.Context, req ValidatePasswordRequest) (*ValidatePasswordResult, error) {
	if err := m.limits.allowManage(ctx, LimitLogin, req.UserName); err != nil {
		m.metrics.Login(LoginAPIManage, loginResult(err))
		return nil, err
	}
	user, err := m.accounts.UserByName(ctx, req.UserName)
	if errors.Is(err, ErrUserNotFound) {
		user = nil
	} else if err != nil {
		m.metrics.Login(LoginAPIManage, loginResult(err))
		return nil, err
	}
	err = m.passwords.Check(ctx, user, req.UserName, req.Password)
	m.metrics.Login(LoginAPIManage, loginResult(err))
	if err != nil {
		return nil, err
	}
	if user.MFA == "" {
		return &ValidatePasswordResult{User: user}, nil
	}
	if req.RememberToken != "" {
		ok, err := m.rememberedDevice(ctx, user, req.RememberToken)
		if err != nil {
			return nil, err
		}
		if ok {
			return &ValidatePasswordResult{User: user, MFABypassed: true, MFABypassReason: MFABypassRememberedDevice}, nil
		}
	}
	code, other := req.Code, req.EmailCode
	if user.MFA == MFAEmail {
		code, other = req.EmailCode, req.Code
	}
	switch {
	case code == "" && other != "":
		return nil, ErrCodeField
	case code != "" && req.SessionToken == "":
		return nil, ErrMFASessionInvalid
	case code != "":
		return m.completeMFA(ctx, user, req, code)
	}
	return m.beginMFA(ctx, user)
}

// mfaRecord is a sessionToken's state.
type mfaRecord struct {
	MFA string `json:"m"`
}

// beginMFA sends the user a code (SMS, EMAIL) and opens an MFA session.
func (m *ManageMFA) beginMFA(ctx context.Context, u *User) (*ValidatePasswordResult, error) {
	res := &ValidatePasswordResult{User: u, MFARequired: true, MFAType: u.MFA}
	switch u.MFA {
	case MFATOTP:
		if err := checkTOTPSecret(u); err != nil {
			return nil, err
		}
	case MFASMS, MFAEmail:
		sent, err := m.sendMFACode(ctx, u)
		if err != nil {
			return nil, err
		}
		res.CodeNotResent = !sent
	default:
		return nil, fmt.Errorf("%w: unknown mfa %q", ErrMFAMisconfigured, u.MFA)
	}
	token := randomToken()
	data, _ := json.Marshal(mfaRecord{MFA: u.MFA})
	if err := m.store.Set(ctx, Keys.MFASession(u.ID, token), data, MFASessionTTL); err != nil {
		return nil, storeError(err)
	}
	res.SessionToken = token
	return res, nil
}

// sendMFACode issues and sends an MFA code to the user's number or
// email. It reports false, and sends nothing, when a code went out less
// than the resend interval ago: that code is still the one to type.
func (m *ManageMFA) sendMFACode(ctx context.Context, u *User) (bool, error) {
	to, channel, sender := smsNumber(u), ChannelSMS, m.otpSender
	if u.MFA == MFAEmail {
		to, channel, sender = u.Email, ChannelEmail, m.emailSender
	}
	if to == "" {
		return false, fmt.Errorf("%w: no %s address", ErrMFAMisconfigured, channel)
	}
	if err := m.limits.allowManage(ctx, LimitCodeIssue, u.UserName); err != nil {
		return false, err
	}
	err := m.issueAndSend(ctx, Keys.ManageScope(u.ID, "mfa"), sender, Message{To: to, Channel: channel, Purpose: PurposeLogin})
	var ce *ChallengeError
	if errors.As(err, &ce) && ce.Code == CodeRetryIn15Sec {
		return false, nil
	}
	return err == nil, err
}

// issueAndSend issues a code under scope and sends m with it. The
// challenge's record outlives the code by an MFA session's life, so that
// a late answer is told expired rather than unknown.
func (m *ManageMFA) issueAndSend(ctx context.Context, scope string, sender Sender, msg Message) error {
	err := m.delivery.issueAndSend(ctx, scope, sender, msg, m.delivery.codes.ttl()+MFASessionTTL)
	var ce *ChallengeError
	if errors.As(err, &ce) && ce.Code == CodeChallengeLimitExceeded {
		return ErrOTPAttemptsExceeded
	}
	return err
}

// completeMFA checks the code of an MFA session; the session ends with
// the first right code.
func (m *ManageMFA) completeMFA(ctx context.Context, u *User, req ValidatePasswordRequest, code string) (*ValidatePasswordResult, error) {
	if err := m.limits.allowManage(ctx, LimitCodeVerify, req.UserName); err != nil {
		return nil, err
	}
	key := Keys.MFASession(u.ID, req.SessionToken)
	data, err := m.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrMFASessionInvalid
	} else if err != nil {
		return nil, storeError(err)
	}
	var rec mfaRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.MFA != u.MFA {
		return nil, ErrMFASessionInvalid
	}
	if u.MFA == MFATOTP {
		err = m.verifyTOTP(ctx, u, code)
	} else {
		err = m.verifyCode(ctx, Keys.ManageScope(u.ID, "mfa"), code)
	}
	if err != nil {
		return nil, err
	}
	// Of concurrent right answers, one wins; a used session is spent.
	if _, err := m.store.TakeOnce(ctx, key); errors.Is(err, ErrNotFound) {
		return nil, ErrMFASessionInvalid
	} else if err != nil {
		return nil, storeError(err)
	}
	res := &ValidatePasswordResult{User: u}
	if req.RememberDevice {
		if res.RememberToken, err = m.rememberDevice(ctx, u); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// verifyCode checks a code with the limits of §5 and answers in the
// Manage API's terms.
func (m *ManageMFA) verifyCode(ctx context.Context, scope, code string) error {
	_, err := m.delivery.codes.Verify(ctx, scope, code)
	var ce *ChallengeError
	if !errors.As(err, &ce) {
		return err
	}
	switch ce.Code {
	case CodeVerificationCodeExpired:
		return ErrOTPExpired
	case CodeChallengeLimitExceeded:
		return ErrOTPAttemptsExceeded
	case CodeStateInvalid:
		if ce.Exhausted {
			return ErrOTPAttemptsExceeded
		}
	}
	return ErrInvalidOTP
}

// verifyTOTP checks an RFC 6238 code of the user's secret, one step of
// drift either way, MaxCodeAttempts wrong codes per user per
// MFASessionTTL (what a sent code's tries are per its session), and each
// time step accepted once.
func (m *ManageMFA) verifyTOTP(ctx context.Context, u *User, code string) error {
	if err := checkTOTPSecret(u); err != nil {
		return err
	}
	attempts := Keys.TOTPTries(u.ID)
	n, err := m.store.Incr(ctx, attempts, MFASessionTTL)
	if err != nil {
		return storeError(err)
	}
	if n > MaxCodeAttempts {
		return ErrOTPAttemptsExceeded
	}
	now := uint64(m.now().Unix()) / uint64(TOTPPeriod/time.Second)
	var step uint64
	matched := false
	// Every step is computed, so the time taken says nothing about which
	// one (if any) matched.
	for _, s := range []uint64{now - 1, now, now + 1} {
		ok, _ := hotp.ValidateCustom(code, s, u.TOTPSecret, totpOpts)
		if ok && !matched {
			step, matched = s, true
		}
	}
	if !matched {
		if n == MaxCodeAttempts {
			return ErrOTPAttemptsExceeded
		}
		return ErrInvalidOTP
	}
	// A code seen once (over a shoulder, in a log) is worthless after.
	used := Keys.TOTPUsed(u.ID, step)
	fresh, err := m.store.SetNX(ctx, used, []byte{1}, 4*TOTPPeriod)
	if err != nil {
		return storeError(err)
	}
	if !fresh {
		return ErrInvalidOTP
	}
	if err := m.store.Delete(ctx, attempts); err != nil {
		return storeError(err)
	}
	return nil
}

var totpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// checkTOTPSecret reports a missing or malformed totpSecret.
func checkTOTPSecret(u *User) error {
	if u.TOTPSecret == "" {
		return fmt.Errorf("%w: TOTP without totpSecret", ErrMFAMisconfigured)
	}
	if _, err := hotp.GenerateCodeCustom(u.TOTPSecret, 0, totpOpts); err != nil {
		return fmt.Errorf("%w: totpSecret is not base32", ErrMFAMisconfigured)
	}
	return nil
}

// rememberRecord is a remembered device. Password binds it to the
// password it was earned with: a password change forgets every device.
type rememberRecord struct {
	Issued   int64  `json:"i"`
	Password string `json:"p"`
}

// passwordTag is a short keyed digest of the user's password hash (the
// one it was rehashed from, when it was): it tells a changed password
// without keeping the hash anywhere else, and a rehash is no change.
func (m *ManageMFA) passwordTag(u *User) string {
	hash := u.Password
	if u.passwordOrigin != "" {
		hash = u.passwordOrigin
	}
	mac := hmac.New(sha256.New, m.delivery.codes.Key)
	mac.Write([]byte("remember-device\x00"))
	mac.Write([]byte(hash))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:12])
}

// rememberDevice issues a userMFARememberMeToken for the user.
func (m *ManageMFA) rememberDevice(ctx context.Context, u *User) (string, error) {
	token := randomToken()
	data, _ := json.Marshal(rememberRecord{Issued: m.now().UnixMilli(), Password: m.passwordTag(u)})
	if err := m.store.Set(ctx, Keys.RememberedDevice(u.ID, token), data, RememberDeviceTTL); err != nil {
		return "", storeError(err)
	}
	return token, nil
}

// rememberedDevice reports whether token is a live remember token of u.
func (m *ManageMFA) rememberedDevice(ctx context.Context, u *User, token string) (bool, error) {
	data, err := m.store.Get(ctx, Keys.RememberedDevice(u.ID, token))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, storeError(err)
	}
	var rec rememberRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return false, nil
	}
	if !hmac.Equal([]byte(rec.Password), []byte(m.passwordTag(u))) {
		return false, nil
	}
	revoked, err := m.store.Get(ctx, Keys.DevicesRevoked(u.ID))
	switch {
	case errors.Is(err, ErrNotFound):
		return true, nil
	case err != nil:
		return false, storeError(err)
	}
	before, _ := strconv.ParseInt(string(revoked), 10, 64)
	return rec.Issued > before, nil
}

// ForgetDevice revokes one userMFARememberMeToken of the user; an unknown
// user or token is no error.
func (m *ManageMFA) ForgetDevice(ctx context.Context, userName, token string) error {
	u, err := m.accounts.UserByName(ctx, userName)
	if errors.Is(err, ErrUserNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if err := m.store.Delete(ctx, Keys.RememberedDevice(u.ID, token)); err != nil {
		return storeError(err)
	}
	return nil
}

// ForgetAllDevices revokes every userMFARememberMeToken of the user issued
// until now, on every node; an unknown user is no error.
func (m *ManageMFA) ForgetAllDevices(ctx context.Context, userName string) error {
	u, err := m.accounts.UserByName(ctx, userName)
	if errors.Is(err, ErrUserNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	// Tokens issued before this instant die; the mark lives as long as
	// they could have.
	mark := []byte(strconv.FormatInt(m.now().UnixMilli(), 10))
	if err := m.store.Set(ctx, Keys.DevicesRevoked(u.ID), mark, RememberDeviceTTL); err != nil {
		return storeError(err)
	}
	return nil
}

// SendOTP sends a code to phone (E.164, any common spacing) for the user,
// for ValidateOTP to check. An unknown or disabled user gets no code and
// no error, so the answer does not tell whether the user exists.
func (m *ManageMFA) SendOTP(ctx context.Context, userName, phone string) error {
	number, ok := NormalizeE164(phone)
	if !ok {
		return ErrBadPhoneNumber
	}
	if err := m.limits.allowManage(ctx, LimitCodeIssue, userName); err != nil {
		return err
	}
	u, err := m.accounts.UserByName(ctx, userName)
	if errors.Is(err, ErrUserNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if u.Disabled {
		return nil
	}
	err = m.issueAndSend(ctx, Keys.ManageScope(u.ID, "otp:"+number), m.otpSender,
		Message{To: number, Channel: ChannelSMS, Purpose: PurposeVerification})
	var ce *ChallengeError
	if errors.As(err, &ce) && ce.Code == CodeRetryIn15Sec {
		return &RateLimited{Limit: 1, Reset: m.delivery.codes.resend()}
	}
	return err
}

// ValidateOTP checks the code last sent to the user at phone, with the
// attempt limits and expiry of step-up codes. An unknown or disabled user
// is ErrInvalidOTP, like a wrong code.
func (m *ManageMFA) ValidateOTP(ctx context.Context, userName, phone, code string) (*User, error) {
	number, ok := NormalizeE164(phone)
	if !ok {
		return nil, ErrBadPhoneNumber
	}
	if err := m.limits.allowManage(ctx, LimitCodeVerify, userName); err != nil {
		return nil, err
	}
	u, err := m.accounts.UserByName(ctx, userName)
	if errors.Is(err, ErrUserNotFound) {
		return nil, ErrInvalidOTP
	} else if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, ErrInvalidOTP
	}
	if err := m.verifyCode(ctx, Keys.ManageScope(u.ID, "otp:"+number), code); err != nil {
		return nil, err
	}
	return u, nil
}

// ErrBadPhoneNumber: a phone number that is not E.164 after spacing,
// dashes and parentheses are removed.
var ErrBadPhoneNumber = errors.New("phone number is not E.164")

// NormalizeE164 returns s as E.164 ("+35699000001") with the spaces,
// dashes and parentheses people write numbers with removed, and whether
// the result is E.164 at all.
func NormalizeE164(s string) (string, bool) {
	n := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '(', ')':
			return -1
		}
		return r
	}, s)
	return n, e164.MatchString(n)
}

// randomToken is an opaque bearer secret: 256 random bits, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenDigest names a bearer secret in store keys without storing it.
func tokenDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
