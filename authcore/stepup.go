package authcore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
)

// Step-up channels.
const (
	ChannelSMS       = "SMS"
	ChannelAuthy     = "AUTHY"
	ChannelBiometric = "BIOMETRIC"
)

// Purposes of codes and pushes, as senders receive them.
const (
	PurposeStepUp    = "stepup"
	PurposeEnrolment = "enrolment"
)

// ErrNoSender is returned when a code or push must be sent and no sender
// is configured for it.
var ErrNoSender = errors.New("no sender configured for this channel")

// ErrSendFailed wraps a sender's failure to deliver a code or push.
var ErrSendFailed = errors.New("sending failed")

// ErrStepUpRequired is returned by operations that need a stepped-up session.
var ErrStepUpRequired = errors.New("step-up required")

// StepUp steps sessions up with a one-time code (SMS) or a push approval,
// and enrols and removes the factors they go to. Its codes live under
// Keys.StepUpScope, its pushes under Keys.Push, Keys.PushResolution and
// Keys.PushIssues. Issuing counts against the code_issue rate limit of the
// client address in ctx, checking a code against code_verify.
type StepUp struct {
	deps
	sessions   *Sessions
	accounts   *Accounts
	limits     *Limits
	delivery   *delivery
	otpSender  Sender
	pushSender Sender
	pushSecret []byte
}

// smsNumber is where a user's SMS codes go.
func smsNumber(u *User) string {
	if u.TextNumber != "" {
		return u.TextNumber
	}
	return u.Phone
}

// IssueOTP sends a step-up code to the user's enrolled channel.
func (st *StepUp) IssueOTP(ctx context.Context, s *Session, channel string) error {
	if err := st.limits.allowClient(ctx, LimitCodeIssue); err != nil {
		return err
	}
	u, err := st.accounts.User(ctx, s.CredentialsID)
	if err != nil {
		return err
	}
	if !slices.Contains(u.Factors.OTP, channel) {
		return challengeErr(CodeChannelNotRegistered)
	}
	return st.issueCode(ctx, s, u, channel, PurposeStepUp)
}

func (st *StepUp) issueCode(ctx context.Context, s *Session, u *User, channel, purpose string) error {
	m := Message{To: smsNumber(u), Channel: channel, Purpose: purpose}
	return st.delivery.issueAndSend(ctx, Keys.StepUpScope(s.ID, purpose), st.otpSender, m, st.sessions.keep(s))
}

// VerifyOTP checks a step-up code and, when right, steps the session up
// (method otp).
func (st *StepUp) VerifyOTP(ctx context.Context, s *Session, channel, code string) error {
	if err := st.limits.allowClient(ctx, LimitCodeVerify); err != nil {
		return err
	}
	u, err := st.accounts.User(ctx, s.CredentialsID)
	if err != nil {
		return err
	}
	if !slices.Contains(u.Factors.OTP, channel) {
		return challengeErr(CodeChannelNotRegistered)
	}
	err = st.verifyCode(ctx, s, PurposeStepUp, code)
	st.auditStepUp(ctx, s, StepUpOTP, err)
	return err
}

func (st *StepUp) verifyCode(ctx context.Context, s *Session, purpose, code string) error {
	if _, err := st.delivery.codes.Verify(ctx, Keys.StepUpScope(s.ID, purpose), code); err != nil {
		return err
	}
	return st.sessions.stepUp(ctx, s, StepUpOTP)
}

// auditStepUp writes the audit line and counts the result of a step-up
// attempt by method.
func (d deps) auditStepUp(ctx context.Context, s *Session, method string, err error) {
	result := "success"
	var ce *ChallengeError
	switch {
	case errors.As(err, &ce):
		result = ce.Code
	case err != nil:
		result = "error"
	}
	d.metrics.StepUp(method, result)
	d.log.Info("stepup", append(auditFields(ctx), zap.String("credentials_id", s.CredentialsID),
		zap.String("method", method), zap.String("result", result))...)
}

// EnrolOTP starts the enrolment of an OTP channel: a code goes to the
// user's mobile number, and the factor is pending until it is verified.
func (st *StepUp) EnrolOTP(ctx context.Context, s *Session, channel string) error {
	if err := st.limits.allowClient(ctx, LimitCodeIssue); err != nil {
		return err
	}
	u, err := st.accounts.User(ctx, s.CredentialsID)
	if err != nil {
		return err
	}
	if err := canEnrolOTP(u, channel); err != nil {
		return err
	}
	if err := st.issueCode(ctx, s, u, channel, PurposeEnrolment); err != nil {
		return err
	}
	_, err = st.accounts.update(ctx, u.ID, func(u *User, rec *accountRecord) error {
		if err := canEnrolOTP(u, channel); err != nil {
			return err
		}
		if !slices.Contains(rec.PendingOTP, channel) {
			rec.PendingOTP = append(rec.PendingOTP, channel)
		}
		return nil
	})
	return err
}

func canEnrolOTP(u *User, channel string) error {
	switch {
	case slices.Contains(u.Factors.OTP, channel):
		return challengeErr(CodeChannelAlreadyRegistered)
	case smsNumber(u) == "":
		return challengeErr(CodeMobileNumberNotAvailable)
	}
	return nil
}

// VerifyEnrolOTP completes an OTP enrolment: the factor becomes active and
// the session is stepped up.
func (st *StepUp) VerifyEnrolOTP(ctx context.Context, s *Session, channel, code string) error {
	if err := st.limits.allowClient(ctx, LimitCodeVerify); err != nil {
		return err
	}
	u, rec, err := st.accounts.userAndAccount(ctx, s.CredentialsID)
	if err != nil {
		return err
	}
	if slices.Contains(u.Factors.OTP, channel) {
		return challengeErr(CodeChannelAlreadyRegistered)
	}
	if !slices.Contains(rec.PendingOTP, channel) {
		return challengeErr(CodeStateInvalid)
	}
	if err := st.verifyCode(ctx, s, PurposeEnrolment, code); err != nil {
		return err
	}
	_, err = st.accounts.update(ctx, u.ID, func(u *User, rec *accountRecord) error {
		if !slices.Contains(u.Factors.OTP, channel) {
			setFactors(u, rec, Factors{OTP: append(slices.Clone(u.Factors.OTP), channel), Push: u.Factors.Push})
		}
		rec.PendingOTP = slices.DeleteFunc(rec.PendingOTP, func(c string) bool { return c == channel })
		return nil
	})
	st.auditFactor(ctx, u.ID, "factor enrolled", FactorOTP, channel, err)
	return err
}

// EnrolPush enrols a push channel; the session must be stepped up.
func (st *StepUp) EnrolPush(ctx context.Context, s *Session, channel string) error {
	if !s.IsSteppedUp(st.now(), 0) {
		return ErrStepUpRequired
	}
	_, err := st.accounts.update(ctx, s.CredentialsID, func(u *User, rec *accountRecord) error {
		if slices.Contains(u.Factors.Push, channel) {
			return challengeErr(CodeChannelAlreadyRegistered)
		}
		setFactors(u, rec, Factors{OTP: u.Factors.OTP, Push: append(slices.Clone(u.Factors.Push), channel)})
		return nil
	})
	st.auditFactor(ctx, s.CredentialsID, "factor enrolled", FactorPush, channel, err)
	return err
}

// RemovePush removes an enrolled push channel.
func (st *StepUp) RemovePush(ctx context.Context, s *Session, channel string) error {
	_, err := st.accounts.update(ctx, s.CredentialsID, func(u *User, rec *accountRecord) error {
		if !slices.Contains(u.Factors.Push, channel) {
			return challengeErr(CodeChannelNotRegistered)
		}
		push := slices.DeleteFunc(slices.Clone(u.Factors.Push), func(c string) bool { return c == channel })
		setFactors(u, rec, Factors{OTP: u.Factors.OTP, Push: push})
		return nil
	})
	st.auditFactor(ctx, s.CredentialsID, "factor removed", FactorPush, channel, err)
	return err
}

// auditFactor writes the audit line of a factor enrolled or removed,
// when err is nil.
func (d deps) auditFactor(ctx context.Context, credentialsID, msg, kind, channel string, err error) {
	if err != nil {
		return
	}
	d.log.Info(msg, append(auditFields(ctx), zap.String("credentials_id", credentialsID),
		zap.String("type", kind), zap.String("channel", channel))...)
}

// Push challenge statuses.
const (
	PushPending  = "PENDING"
	PushVerified = "VERIFIED"
	PushDeclined = "DECLINED"
	PushExpired  = "EXPIRED"
)

// pushRecord is a push challenge; Keys.Push finds it from its id alone,
// as the provider's resolve callback and the simulator know only that.
type pushRecord struct {
	ID            string `json:"id"`
	SessionID     string `json:"s"`
	CredentialsID string `json:"c"`
	Channel       string `json:"ch"`
	Expires       int64  `json:"e"`
}

func (p *pushRecord) expiresAt() time.Time    { return time.UnixMilli(p.Expires) }
func (p *pushRecord) owner(s *Session) bool   { return p.SessionID == s.ID }
func (p *pushRecord) channelIs(c string) bool { return p.Channel == c }

// IssuePush sends a push approval request to the user's enrolled channel
// and returns its id (digits).
func (st *StepUp) IssuePush(ctx context.Context, s *Session, channel string) (string, error) {
	if err := st.limits.allowClient(ctx, LimitCodeIssue); err != nil {
		return "", err
	}
	u, err := st.accounts.User(ctx, s.CredentialsID)
	if err != nil {
		return "", err
	}
	if !slices.Contains(u.Factors.Push, channel) {
		return "", challengeErr(CodeChannelNotRegistered)
	}
	if s.StepUpMethod == StepUpPush && !s.SteppedUp.IsZero() {
		return "", challengeErr(CodeStateInvalid)
	}
	n, err := st.store.Incr(ctx, Keys.PushIssues(s.ID), st.sessions.keep(s))
	if err != nil {
		return "", storeError(err)
	}
	if n > MaxIssuesPerRound {
		return "", challengeErr(CodeChallengeLimitExceeded)
	}
	ttl := st.delivery.codes.ttl()
	rec := pushRecord{ID: RandomDigits(18), SessionID: s.ID, CredentialsID: s.CredentialsID, Channel: channel,
		Expires: st.now().Add(ttl).UnixMilli()}
	data, _ := json.Marshal(rec)
	if err := st.store.Set(ctx, Keys.Push(rec.ID), data, st.sessions.keep(s)+ttl); err != nil {
		return "", storeError(err)
	}
	err = st.delivery.send(ctx, st.pushSender, Message{To: u.ID, ChallengeID: rec.ID, Channel: channel, Purpose: PurposeStepUp, ExpiresAt: rec.expiresAt()})
	return rec.ID, err
}

func (st *StepUp) loadPush(ctx context.Context, id string) (*pushRecord, error) {
	data, err := st.store.Get(ctx, Keys.Push(id))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, storeError(err)
	}
	rec := &pushRecord{}
	if err := json.Unmarshal(data, rec); err != nil {
		return nil, fmt.Errorf("decoding push challenge: %w", err)
	}
	return rec, nil
}

func (st *StepUp) pushStatus(ctx context.Context, rec *pushRecord) (string, error) {
	data, err := st.store.Get(ctx, Keys.PushResolution(rec.ID))
	switch {
	case err == nil:
		return string(data), nil
	case !errors.Is(err, ErrNotFound):
		return "", storeError(err)
	case !st.now().Before(rec.expiresAt()):
		return PushExpired, nil
	}
	return PushPending, nil
}

// PushStatus reports a push challenge of the session; ErrNotFound when it
// is not this session's (or not on channel, when channel is not empty).
func (st *StepUp) PushStatus(ctx context.Context, s *Session, channel, id string) (string, error) {
	rec, err := st.loadPush(ctx, id)
	if err != nil {
		return "", err
	}
	if !rec.owner(s) || (channel != "" && !rec.channelIs(channel)) {
		return "", ErrNotFound
	}
	return st.pushStatus(ctx, rec)
}

// ResolvePush records the provider's answer to a push. VERIFIED steps the
// session up (method push). Resolving again with the same answer is a
// no-op; any other change of a resolved or expired push is STATE_INVALID.
// channel is checked when not empty.
func (st *StepUp) ResolvePush(ctx context.Context, channel, id, status string) error {
	rec, err := st.loadPush(ctx, id)
	if err != nil {
		return err
	}
	if channel != "" && !rec.channelIs(channel) {
		return ErrNotFound
	}
	current, err := st.pushStatus(ctx, rec)
	if err != nil {
		return err
	}
	if current == status && status != PushExpired {
		return nil
	}
	if current != PushPending {
		return challengeErr(CodeStateInvalid)
	}
	won, err := st.store.SetNX(ctx, Keys.PushResolution(id), []byte(status), st.sessions.max+st.delivery.codes.ttl())
	if err != nil {
		return storeError(err)
	}
	if !won {
		// Another node resolved it first: idempotent if it agreed.
		if now, err := st.pushStatus(ctx, rec); err == nil && now == status {
			return nil
		}
		return challengeErr(CodeStateInvalid)
	}
	s, err := st.sessions.touch(ctx, rec.SessionID)
	if errors.Is(err, ErrNotFound) {
		return nil // the session ended meanwhile; nothing to step up
	} else if err != nil {
		return err
	}
	if status != PushVerified {
		st.auditStepUp(ctx, s, StepUpPush, challengeErr(status))
		return nil
	}
	err = st.sessions.stepUp(ctx, s, StepUpPush)
	st.auditStepUp(ctx, s, StepUpPush, err)
	return err
}

// Simulator outcomes (sandbox mode).
const (
	SimulateSuccess = "verify_success"
	SimulateInvalid = "verify_invalid"
	SimulateExpired = "verify_expired"
)

// SimulatePush resolves a push as a user's device would, in sandbox mode
// only; it answers COMPLETED or DENIED. ErrNotFound outside sandbox mode
// or for a push that is not the user's.
func (st *StepUp) SimulatePush(ctx context.Context, credentialsID, id, outcome string) (string, error) {
	if !st.delivery.sandbox {
		return "", ErrNotFound
	}
	rec, err := st.loadPush(ctx, id)
	if err != nil {
		return "", err
	}
	if rec.CredentialsID != credentialsID {
		return "", ErrNotFound
	}
	status, answer := PushDeclined, "DENIED"
	switch outcome {
	case SimulateSuccess:
		status, answer = PushVerified, "COMPLETED"
	case SimulateExpired:
		status = PushExpired
	case SimulateInvalid:
	default:
		return "", ErrNotFound
	}
	if err := st.ResolvePush(ctx, "", id, status); err != nil {
		return "", err
	}
	return answer, nil
}

// SignedByPushProvider reports whether a push resolve callback's body
// carries the push provider's signature (the signature header); with no
// push secret configured, no callback is.
func (st *StepUp) SignedByPushProvider(body []byte, signature string) bool {
	return len(st.pushSecret) > 0 && VerifyHMAC(body, st.pushSecret, signature)
}

// Factors lists the user's step-up channels.
func (st *StepUp) Factors(ctx context.Context, s *Session) ([]FactorStatus, error) {
	u, rec, err := st.accounts.userAndAccount(ctx, s.CredentialsID)
	if err != nil {
		return nil, err
	}
	out := []FactorStatus{}
	for _, ch := range u.Factors.OTP {
		out = append(out, FactorStatus{FactorOTP, FactorActive, ch})
	}
	for _, ch := range rec.PendingOTP {
		if !slices.Contains(u.Factors.OTP, ch) {
			out = append(out, FactorStatus{FactorOTP, FactorPendingVerification, ch})
		}
	}
	for _, ch := range u.Factors.Push {
		out = append(out, FactorStatus{FactorPush, FactorActive, ch})
	}
	return out, nil
}
