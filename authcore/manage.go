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
	UserName string
	Password string
	// Code is an SMS or TOTP code (the API's token); EmailCode an EMAIL
	// code (emailToken).
	Code      string
	EmailCode string
	// RememberToken is a userMFARememberMeToken from an earlier success.
	RememberToken string
	// SessionToken is the sessionToken of the MFA step that sent the code.
	SessionToken string
	// RememberDevice asks for a new RememberToken when MFA completes.
	RememberDevice bool
	// ClientIP is the end user's address (the clientIp header, else the
	// connection's), for the rate limits.
	ClientIP string
}

// ValidatePasswordResult is a right password and where MFA stands.
type ValidatePasswordResult struct {
	// User is the user, for the caller's records; the API shows it only
	// once MFA is done.
	User            *User
	MFARequired     bool
	MFABypassed     bool
	MFABypassReason string
	// MFAType and SessionToken are set when MFARequired.
	MFAType      string
	SessionToken string
	// CodeNotResent: a code went out less than the resend interval ago,
	// so none was sent now; the earlier one still works.
	CodeNotResent bool
	// RememberToken is a new userMFARememberMeToken (RememberDevice).
	RememberToken string
}

// ValidatePassword checks a user's password for a trusted backend and
// walks the MFA steps: a wrong password or unknown user is
// ErrInvalidCredentials (same cost, through the lockout shared with the
// Multi API, ErrLocked once locked); a user without mfa is done; a valid
// remember token bypasses MFA; a sessionToken with the code completes it;
// anything else sends a code (none for TOTP) and returns a sessionToken.
// Every call counts against the Manage API's login limits of req.ClientIP
// and req.UserName, a sent code against its code_issue limits and a
// checked one against code_verify (*RateLimited); see allowManage.
func (g *Gateway) ValidatePassword(ctx context.Context, req ValidatePasswordRequest) (*ValidatePasswordResult, error) {
	if err := g.allowManage(ctx, LimitLogin, req.ClientIP, req.UserName); err != nil {
		return nil, err
	}
	user, err := g.UserByName(ctx, req.UserName)
	if errors.Is(err, ErrUserNotFound) {
		user = nil
	} else if err != nil {
		return nil, err
	}
	if err := g.CheckPassword(ctx, user, req.UserName, req.Password); err != nil {
		return nil, err
	}
	if user.MFA == "" {
		return &ValidatePasswordResult{User: user}, nil
	}
	if req.RememberToken != "" {
		ok, err := g.rememberedDevice(ctx, user, req.RememberToken)
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
		return g.completeMFA(ctx, user, req, code)
	}
	return g.beginMFA(ctx, user, req.ClientIP)
}

// mfaRecord is a sessionToken's state.
type mfaRecord struct {
	MFA string `json:"m"`
}

// beginMFA sends the user a code (SMS, EMAIL) and opens an MFA session.
func (g *Gateway) beginMFA(ctx context.Context, u *User, clientIP string) (*ValidatePasswordResult, error) {
	res := &ValidatePasswordResult{User: u, MFARequired: true, MFAType: u.MFA}
	switch u.MFA {
	case MFATOTP:
		if err := checkTOTPSecret(u); err != nil {
			return nil, err
		}
	case MFASMS, MFAEmail:
		sent, err := g.sendManageCode(ctx, u, clientIP)
		if err != nil {
			return nil, err
		}
		res.CodeNotResent = !sent
	default:
		return nil, fmt.Errorf("%w: unknown mfa %q", ErrMFAMisconfigured, u.MFA)
	}
	token := randomToken()
	data, _ := json.Marshal(mfaRecord{MFA: u.MFA})
	if err := g.store.Set(ctx, Keys.MFASession(u.ID, token), data, MFASessionTTL); err != nil {
		return nil, storeError(err)
	}
	res.SessionToken = token
	return res, nil
}

// sendManageCode issues and sends an MFA code to the user's number or
// email. It reports false, and sends nothing, when a code went out less
// than the resend interval ago: that code is still the one to type.
func (g *Gateway) sendManageCode(ctx context.Context, u *User, clientIP string) (bool, error) {
	to, channel, sender := smsNumber(u), ChannelSMS, g.otpSender
	if u.MFA == MFAEmail {
		to, channel, sender = u.Email, ChannelEmail, g.emailSender
	}
	if to == "" {
		return false, fmt.Errorf("%w: no %s address", ErrMFAMisconfigured, channel)
	}
	if err := g.allowManage(ctx, LimitCodeIssue, clientIP, u.UserName); err != nil {
		return false, err
	}
	err := g.issueAndSend(ctx, Keys.ManageScope(u.ID, "mfa"), sender, Message{To: to, Channel: channel, Purpose: PurposeLogin})
	var ce *ChallengeError
	if errors.As(err, &ce) && ce.Code == CodeRetryIn15Sec {
		return false, nil
	}
	return err == nil, err
}

// issueAndSend issues a code under scope and sends m with it. The
// challenge's record outlives the code by an MFA session's life, so that
// a late answer is told expired rather than unknown.
func (g *Gateway) issueAndSend(ctx context.Context, scope string, sender Sender, m Message) error {
	err := g.sendCode(ctx, scope, sender, m, g.codes.ttl()+MFASessionTTL)
	var ce *ChallengeError
	if errors.As(err, &ce) && ce.Code == CodeChallengeLimitExceeded {
		return ErrOTPAttemptsExceeded
	}
	return err
}

// completeMFA checks the code of an MFA session; the session ends with
// the first right code.
func (g *Gateway) completeMFA(ctx context.Context, u *User, req ValidatePasswordRequest, code string) (*ValidatePasswordResult, error) {
	if err := g.allowManage(ctx, LimitCodeVerify, req.ClientIP, req.UserName); err != nil {
		return nil, err
	}
	key := Keys.MFASession(u.ID, req.SessionToken)
	data, err := g.store.Get(ctx, key)
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
		err = g.verifyTOTP(ctx, u, code)
	} else {
		err = g.verifyManageCode(ctx, Keys.ManageScope(u.ID, "mfa"), code)
	}
	if err != nil {
		return nil, err
	}
	// Of concurrent right answers, one wins; a used session is spent.
	if _, err := g.store.TakeOnce(ctx, key); errors.Is(err, ErrNotFound) {
		return nil, ErrMFASessionInvalid
	} else if err != nil {
		return nil, storeError(err)
	}
	res := &ValidatePasswordResult{User: u}
	if req.RememberDevice {
		if res.RememberToken, err = g.rememberDevice(ctx, u); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// verifyManageCode checks a code with the limits of §5 and answers in the
// Manage API's terms.
func (g *Gateway) verifyManageCode(ctx context.Context, scope, code string) error {
	_, err := g.codes.Verify(ctx, scope, code)
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
func (g *Gateway) verifyTOTP(ctx context.Context, u *User, code string) error {
	if err := checkTOTPSecret(u); err != nil {
		return err
	}
	attempts := Keys.TOTPTries(u.ID)
	n, err := g.store.Incr(ctx, attempts, MFASessionTTL)
	if err != nil {
		return storeError(err)
	}
	if n > MaxCodeAttempts {
		return ErrOTPAttemptsExceeded
	}
	now := uint64(g.now().Unix()) / uint64(TOTPPeriod/time.Second)
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
	fresh, err := g.store.SetNX(ctx, used, []byte{1}, 4*TOTPPeriod)
	if err != nil {
		return storeError(err)
	}
	if !fresh {
		return ErrInvalidOTP
	}
	if err := g.store.Delete(ctx, attempts); err != nil {
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
func (g *Gateway) passwordTag(u *User) string {
	hash := u.Password
	if u.passwordOrigin != "" {
		hash = u.passwordOrigin
	}
	m := hmac.New(sha256.New, g.codes.Key)
	m.Write([]byte("remember-device\x00"))
	m.Write([]byte(hash))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

// rememberDevice issues a userMFARememberMeToken for the user.
func (g *Gateway) rememberDevice(ctx context.Context, u *User) (string, error) {
	token := randomToken()
	data, _ := json.Marshal(rememberRecord{Issued: g.now().UnixMilli(), Password: g.passwordTag(u)})
	if err := g.store.Set(ctx, Keys.RememberedDevice(u.ID, token), data, RememberDeviceTTL); err != nil {
		return "", storeError(err)
	}
	return token, nil
}

// rememberedDevice reports whether token is a live remember token of u.
func (g *Gateway) rememberedDevice(ctx context.Context, u *User, token string) (bool, error) {
	data, err := g.store.Get(ctx, Keys.RememberedDevice(u.ID, token))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, storeError(err)
	}
	var rec rememberRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return false, nil
	}
	if !hmac.Equal([]byte(rec.Password), []byte(g.passwordTag(u))) {
		return false, nil
	}
	revoked, err := g.store.Get(ctx, Keys.DevicesRevoked(u.ID))
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
func (g *Gateway) ForgetDevice(ctx context.Context, userName, token string) error {
	u, err := g.UserByName(ctx, userName)
	if errors.Is(err, ErrUserNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if err := g.store.Delete(ctx, Keys.RememberedDevice(u.ID, token)); err != nil {
		return storeError(err)
	}
	return nil
}

// ForgetAllDevices revokes every userMFARememberMeToken of the user issued
// until now, on every node; an unknown user is no error.
func (g *Gateway) ForgetAllDevices(ctx context.Context, userName string) error {
	u, err := g.UserByName(ctx, userName)
	if errors.Is(err, ErrUserNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	// Tokens issued before this instant die; the mark lives as long as
	// they could have.
	mark := []byte(strconv.FormatInt(g.now().UnixMilli(), 10))
	if err := g.store.Set(ctx, Keys.DevicesRevoked(u.ID), mark, RememberDeviceTTL); err != nil {
		return storeError(err)
	}
	return nil
}

// SendOTP sends a code to phone (E.164, any common spacing) for the user,
// for ValidateOTP to check. An unknown or disabled user gets no code and
// no error, so the answer does not tell whether the user exists.
func (g *Gateway) SendOTP(ctx context.Context, userName, phone, clientIP string) error {
	number, ok := NormalizeE164(phone)
	if !ok {
		return ErrBadPhoneNumber
	}
	if err := g.allowManage(ctx, LimitCodeIssue, clientIP, userName); err != nil {
		return err
	}
	u, err := g.UserByName(ctx, userName)
	if errors.Is(err, ErrUserNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if u.Disabled {
		return nil
	}
	err = g.issueAndSend(ctx, Keys.ManageScope(u.ID, "otp:"+number), g.otpSender,
		Message{To: number, Channel: ChannelSMS, Purpose: PurposeVerification})
	var ce *ChallengeError
	if errors.As(err, &ce) && ce.Code == CodeRetryIn15Sec {
		return &RateLimited{Limit: 1, Reset: g.codes.resend()}
	}
	return err
}

// ValidateOTP checks the code last sent to the user at phone, with the
// attempt limits and expiry of step-up codes. An unknown or disabled user
// is ErrInvalidOTP, like a wrong code.
func (g *Gateway) ValidateOTP(ctx context.Context, userName, phone, code, clientIP string) (*User, error) {
	number, ok := NormalizeE164(phone)
	if !ok {
		return nil, ErrBadPhoneNumber
	}
	if err := g.allowManage(ctx, LimitCodeVerify, clientIP, userName); err != nil {
		return nil, err
	}
	u, err := g.UserByName(ctx, userName)
	if errors.Is(err, ErrUserNotFound) {
		return nil, ErrInvalidOTP
	} else if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, ErrInvalidOTP
	}
	if err := g.verifyManageCode(ctx, Keys.ManageScope(u.ID, "otp:"+number), code); err != nil {
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
