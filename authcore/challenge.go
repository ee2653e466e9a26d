package authcore

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"
)

// Defaults of one-time-code challenges.
const (
	DefaultCodeTTL        = 5 * time.Minute
	DefaultResendInterval = 15 * time.Second
	// MaxCodeAttempts is how many codes may be tried in a round (between
	// two successful verifications), the resend's included.
	MaxCodeAttempts = 5
	// MaxIssuesPerRound is how many codes may be issued between two
	// successful verifications: the first and one resend.
	MaxIssuesPerRound = 2
	// SandboxCode is every code in sandbox mode.
	SandboxCode = "123456"
)

// ChallengeError is a refused challenge operation; Code is the API's
// errorCode (CHANNEL_NOT_REGISTERED, STATE_INVALID, ...).
type ChallengeError struct {
	// Code is the API's errorCode.
	Code string
	// Exhausted marks a STATE_INVALID that comes from a challenge whose
	// tries are used up, as opposed to no challenge at all: the Multi API
	// answers both alike, the Manage API does not.
	Exhausted bool
}

// Error implements error.
func (e *ChallengeError) Error() string { return "challenge: " + e.Code }

// Error codes of challenges.
const (
	CodeChannelNotRegistered     = "CHANNEL_NOT_REGISTERED"
	CodeChannelAlreadyRegistered = "CHANNEL_ALREADY_REGISTERED"
	CodeRetryIn15Sec             = "RETRY_IN_15SEC"
	CodeChallengeLimitExceeded   = "CHALLENGE_LIMIT_EXCEEDED"
	CodeVerificationCodeInvalid  = "VERIFICATION_CODE_INVALID"
	CodeOneChallengeLimitLeft    = "ONE_CHALLENGE_LIMIT_REMAINING"
	CodeVerificationCodeExpired  = "VERIFICATION_CODE_EXPIRED"
	CodeStateInvalid             = "STATE_INVALID"
	CodeAlreadyVerified          = "ALREADY_VERIFIED"
	CodeMobileNumberNotAvailable = "MOBILE_NUMBER_NOT_AVAILABLE"
)

func challengeErr(code string) error { return &ChallengeError{Code: code} }

// CodeChallenges issues and verifies one-time codes. A challenge lives
// under a scope (for step-up: the session and purpose), holds only a keyed
// hash of its code, and is guarded by store counters so that its limits
// hold across every node. A round runs from the first code issued to a
// successful verification: at most MaxIssuesPerRound codes issued (the
// first and one resend) and MaxCodeAttempts codes tried in it, however
// they fall between the two codes; no resend within the resend interval;
// and a code is accepted once.
type CodeChallenges struct {
	// Store keeps the challenges and their counters.
	Store Store
	// Key keys the code hashes; every node must share it.
	Key []byte
	// TTL is how long a code is good. Default 5m.
	TTL time.Duration
	// ResendInterval is the least time between two issues. Default 15s.
	ResendInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

type codeRecord struct {
	ID      string `json:"id"`
	Hash    []byte `json:"h"`
	Issued  int64  `json:"i"`
	Expires int64  `json:"e"`
	// To is where the code went (for checks such as the Manage API's
	// phone number); never a secret.
	To string `json:"to,omitempty"`
}

// Issued is a freshly issued code, to be sent to the user.
type Issued struct {
	// Code is the code to send.
	Code string
	// Expires is when it stops being accepted.
	Expires time.Time
}

func (c *CodeChallenges) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *CodeChallenges) ttl() time.Duration {
	if c.TTL > 0 {
		return c.TTL
	}
	return DefaultCodeTTL
}

func (c *CodeChallenges) resend() time.Duration {
	if c.ResendInterval > 0 {
		return c.ResendInterval
	}
	return DefaultResendInterval
}

// Issue makes a new code for scope, replacing any earlier one: fixed when
// set (sandbox), else random. keep is how long the challenge's bookkeeping
// must outlive it (at least the code's TTL; for step-up, the rest of the
// session). A round whose tries are used up gets no more codes
// (CHALLENGE_LIMIT_EXCEEDED).
func (c *CodeChallenges) Issue(ctx context.Context, scope, to, fixed string, keep time.Duration) (*Issued, error) {
	keep = max(keep, c.ttl())
	switch tried, err := c.Store.Get(ctx, Keys.CodeTries(scope)); {
	case err == nil:
		if n, _ := strconv.Atoi(string(tried)); n >= MaxCodeAttempts {
			return nil, challengeErr(CodeChallengeLimitExceeded)
		}
	case !errors.Is(err, ErrNotFound):
		return nil, storeError(err)
	}
	// The cooldown is taken first so that a refused resend does not use up
	// one of the round's issues.
	ok, err := c.Store.SetNX(ctx, Keys.CodeCooldown(scope), []byte{1}, c.resend())
	if err != nil {
		return nil, storeError(err)
	}
	if !ok {
		return nil, challengeErr(CodeRetryIn15Sec)
	}
	n, err := c.Store.Incr(ctx, Keys.CodeIssues(scope), keep)
	if err != nil {
		return nil, storeError(err)
	}
	if n > MaxIssuesPerRound {
		return nil, challengeErr(CodeChallengeLimitExceeded)
	}
	if err := c.startTries(ctx, scope, n == 1, keep); err != nil {
		return nil, err
	}
	code := fixed
	if code == "" {
		code = RandomDigits(6)
	}
	now := c.now()
	rec := codeRecord{ID: newID(), Issued: now.UnixMilli(), Expires: now.Add(c.ttl()).UnixMilli(), To: to}
	rec.Hash = c.hash(scope, rec.ID, code)
	data, _ := json.Marshal(rec)
	if err := c.Store.Set(ctx, Keys.Code(scope), data, keep); err != nil {
		return nil, storeError(err)
	}
	return &Issued{Code: code, Expires: time.UnixMilli(rec.Expires)}, nil
}

// startTries sets the round's count of tries to last keep from now, so
// that it outlives the code being issued: at none for a new round, else
// (the resend) at the count so far, atomically against concurrent tries.
func (c *CodeChallenges) startTries(ctx context.Context, scope string, fresh bool, keep time.Duration) error {
	key := Keys.CodeTries(scope)
	if fresh {
		if err := c.Store.Set(ctx, key, []byte("0"), keep); err != nil {
			return storeError(err)
		}
		return nil
	}
	for range maxAccountRetries {
		tried, err := c.Store.Get(ctx, key)
		var ok bool
		switch {
		case errors.Is(err, ErrNotFound):
			ok, err = c.Store.SetNX(ctx, key, []byte("0"), keep)
		case err == nil:
			ok, err = c.Store.Swap(ctx, key, tried, tried, keep)
		}
		if err != nil {
			return storeError(err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("%w: code tries of %s changed concurrently too often", ErrUnavailable, scope)
}

// Verification is an accepted code.
type Verification struct {
	// To is where the code was sent.
	To string
}

// Verify checks code against scope's current challenge. Limits: a round
// takes MaxCodeAttempts tries in all, across the resend (the 4th wrong one
// answers ONE_CHALLENGE_LIMIT_REMAINING, the 5th CHALLENGE_LIMIT_EXCEEDED,
// any later one STATE_INVALID, right code or not); a code is accepted once
// (then ALREADY_VERIFIED) and expires (VERIFICATION_CODE_EXPIRED). A
// success starts a new round.
func (c *CodeChallenges) Verify(ctx context.Context, scope, code string) (*Verification, error) {
	data, err := c.Store.Get(ctx, Keys.Code(scope))
	if errors.Is(err, ErrNotFound) {
		return nil, challengeErr(CodeStateInvalid)
	} else if err != nil {
		return nil, storeError(err)
	}
	var rec codeRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decoding challenge: %w", err)
	}
	switch _, err := c.Store.Get(ctx, Keys.CodeUsed(scope, rec.ID)); {
	case err == nil:
		return nil, challengeErr(CodeAlreadyVerified)
	case !errors.Is(err, ErrNotFound):
		return nil, storeError(err)
	}
	keep := max(time.UnixMilli(rec.Expires).Sub(c.now()), 0) + c.ttl()
	// The counter Issue started keeps its TTL; keep serves only if it
	// has gone.
	n, err := c.Store.Incr(ctx, Keys.CodeTries(scope), keep)
	if err != nil {
		return nil, storeError(err)
	}
	if n > MaxCodeAttempts {
		return nil, &ChallengeError{Code: CodeStateInvalid, Exhausted: true}
	}
	if !c.now().Before(time.UnixMilli(rec.Expires)) {
		return nil, challengeErr(CodeVerificationCodeExpired)
	}
	if !hmac.Equal(c.hash(scope, rec.ID, code), rec.Hash) {
		switch {
		case n == MaxCodeAttempts:
			return nil, challengeErr(CodeChallengeLimitExceeded)
		case n == MaxCodeAttempts-1:
			return nil, challengeErr(CodeOneChallengeLimitLeft)
		}
		return nil, challengeErr(CodeVerificationCodeInvalid)
	}
	// Of concurrent right answers, one wins; the code is single use.
	won, err := c.Store.SetNX(ctx, Keys.CodeUsed(scope, rec.ID), []byte{1}, keep)
	if err != nil {
		return nil, storeError(err)
	}
	if !won {
		return nil, challengeErr(CodeAlreadyVerified)
	}
	for _, key := range []string{Keys.CodeIssues(scope), Keys.CodeTries(scope)} {
		if err := c.Store.Delete(ctx, key); err != nil {
			return nil, storeError(err)
		}
	}
	return &Verification{To: rec.To}, nil
}

// hash is the keyed hash a code is stored as, bound to its scope and
// challenge so that a hash is worthless anywhere else.
func (c *CodeChallenges) hash(scope, id, code string) []byte {
	m := hmac.New(sha256.New, c.Key)
	m.Write([]byte(scope))
	m.Write([]byte{0})
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// RandomDigits returns n uniformly random decimal digits from crypto/rand.
func RandomDigits(n int) string {
	b := make([]byte, n)
	ten := big.NewInt(10)
	for i := range b {
		d, err := rand.Int(rand.Reader, ten)
		if err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		b[i] = byte('0' + d.Int64())
	}
	return string(b)
}

// delivery issues codes and sends them: the one issue-and-send path of
// step-up and of the Manage API's MFA.
type delivery struct {
	codes *CodeChallenges
	// sandbox: every code is SandboxCode and nothing is sent.
	sandbox bool
}

// issueAndSend issues a code under scope and sends m with it through
// sender; keep is how long the challenge's bookkeeping must last. A
// missing sender is found before the code is issued, so that it uses up
// nothing.
func (d *delivery) issueAndSend(ctx context.Context, scope string, sender Sender, m Message, keep time.Duration) error {
	if sender == nil && !d.sandbox {
		return ErrNoSender
	}
	issued, err := d.codes.Issue(ctx, scope, m.To, d.fixedCode(sender), keep)
	if err != nil {
		return err
	}
	m.Code, m.ExpiresAt = issued.Code, issued.Expires
	return d.send(ctx, sender, m)
}

// send delivers m through sender, or nothing in sandbox mode.
func (d *delivery) send(ctx context.Context, sender Sender, m Message) error {
	if d.sandbox {
		return nil
	}
	if sender == nil {
		return ErrNoSender
	}
	if err := sender.Send(ctx, m); err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrSendFailed, m.Channel, m.Purpose, err)
	}
	return nil
}

// fixedCode is the code every challenge sent through sender gets: the
// sandbox code in sandbox mode or with a sandbox sender, else none.
func (d *delivery) fixedCode(sender Sender) string {
	if f, ok := sender.(FixedCoder); ok {
		return f.FixedCode()
	}
	if d.sandbox {
		return SandboxCode
	}
	return ""
}
