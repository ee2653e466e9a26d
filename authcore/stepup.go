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

// stepUp records a successful step-up on the session: every token of the
// session counts as stepped up from now on, on every node.
func (g *Gateway) stepUp(ctx context.Context, s *Session, method string) error {
	now := g.now()
	s.SteppedUp, s.StepUpMethod, s.LastUsed = now, method, now
	err := g.store.SaveSession(ctx, s, g.idle)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: session gone", ErrInvalidToken)
	} else if err != nil {
		return storeError(err)
	}
	return nil
}

// sessionKeep is how long a session's step-up bookkeeping must last.
func (g *Gateway) sessionKeep(s *Session) time.Duration {
	return max(s.Expires.Sub(g.now()), time.Second)
}

// smsNumber is where a user's SMS codes go.
func smsNumber(u *User) string {
	if u.TextNumber != "" {
		return u.TextNumber
	}
	return u.Phone
}

func (g *Gateway) send(ctx context.Context, sender Sender, m Message) error {
	if g.sandbox {
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

// IssueStepUpOTP sends a step-up code to the user's enrolled channel.
func (g *Gateway) IssueStepUpOTP(ctx context.Context, s *Session, channel string) error {
	u, err := g.User(ctx, s.CredentialsID)
	if err != nil {
		return err
	}
	if !slices.Contains(u.Factors.OTP, channel) {
		return challengeErr(CodeChannelNotRegistered)
	}
	return g.issueCode(ctx, s, u, channel, PurposeStepUp)
}

// fixedCode is the code every challenge sent through sender gets: the
// sandbox code in sandbox mode or with a sandbox sender, else none.
func (g *Gateway) fixedCode(sender Sender) string {
	if f, ok := sender.(FixedCoder); ok {
		return f.FixedCode()
	}
	if g.sandbox {
		return SandboxCode
	}
	return ""
}

func (g *Gateway) issueCode(ctx context.Context, s *Session, u *User, channel, purpose string) error {
	m := Message{To: smsNumber(u), Channel: channel, Purpose: purpose}
	return g.sendCode(ctx, Keys.StepUpScope(s.ID, purpose), g.otpSender, m, g.sessionKeep(s))
}

// sendCode issues a code under scope and sends m with it through sender;
// keep is how long the challenge's bookkeeping must last. A missing sender
// is found before the code is issued, so that it uses up nothing.
func (g *Gateway) sendCode(ctx context.Context, scope string, sender Sender, m Message, keep time.Duration) error {
	if sender == nil && !g.sandbox {
		return ErrNoSender
	}
	issued, err := g.codes.Issue(ctx, scope, m.To, g.fixedCode(sender), keep)
	if err != nil {
		return err
	}
	m.Code, m.ExpiresAt = issued.Code, issued.Expires
	return g.send(ctx, sender, m)
}

// VerifyStepUpOTP checks a step-up code and, when right, steps the
// session up (method otp).
func (g *Gateway) VerifyStepUpOTP(ctx context.Context, s *Session, channel, code string) error {
	u, err := g.User(ctx, s.CredentialsID)
	if err != nil {
		return err
	}
	if !slices.Contains(u.Factors.OTP, channel) {
		return challengeErr(CodeChannelNotRegistered)
	}
	err = g.verifyCode(ctx, s, PurposeStepUp, code)
	g.auditStepUp(ctx, s, StepUpOTP, err)
	return err
}

func (g *Gateway) verifyCode(ctx context.Context, s *Session, purpose, code string) error {
	if _, err := g.codes.Verify(ctx, Keys.StepUpScope(s.ID, purpose), code); err != nil {
		return err
	}
	return g.stepUp(ctx, s, StepUpOTP)
}

func (g *Gateway) auditStepUp(ctx context.Context, s *Session, method string, err error) {
	result := "success"
	var ce *ChallengeError
	switch {
	case errors.As(err, &ce):
		result = ce.Code
	case err != nil:
		result = "error"
	}
	g.metrics.StepUp(method, result)
	g.log.Info("stepup", append(auditFields(ctx), zap.String("credentials_id", s.CredentialsID),
		zap.String("method", method), zap.String("result", result))...)
}

// EnrolOTP starts the enrolment of an OTP channel: a code goes to the
// user's mobile number, and the factor is pending until it is verified.
func (g *Gateway) EnrolOTP(ctx context.Context, s *Session, channel string) error {
	u, err := g.User(ctx, s.CredentialsID)
	if err != nil {
		return err
	}
	if err := canEnrolOTP(u, channel); err != nil {
		return err
	}
	if err := g.issueCode(ctx, s, u, channel, PurposeEnrolment); err != nil {
		return err
	}
	_, err = g.updateAccount(ctx, u.ID, func(u *User, rec *accountRecord) error {
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
func (g *Gateway) VerifyEnrolOTP(ctx context.Context, s *Session, channel, code string) error {
	u, rec, err := g.userAndAccount(ctx, s.CredentialsID)
	if err != nil {
		return err
	}
	if slices.Contains(u.Factors.OTP, channel) {
		return challengeErr(CodeChannelAlreadyRegistered)
	}
	if !slices.Contains(rec.PendingOTP, channel) {
		return challengeErr(CodeStateInvalid)
	}
	if err := g.verifyCode(ctx, s, PurposeEnrolment, code); err != nil {
		return err
	}
	_, err = g.updateAccount(ctx, u.ID, func(u *User, rec *accountRecord) error {
		if !slices.Contains(u.Factors.OTP, channel) {
			setFactors(u, rec, Factors{OTP: append(slices.Clone(u.Factors.OTP), channel), Push: u.Factors.Push})
		}
		rec.PendingOTP = slices.DeleteFunc(rec.PendingOTP, func(c string) bool { return c == channel })
		return nil
	})
	g.auditFactor(ctx, u.ID, "factor enrolled", FactorOTP, channel, err)
	return err
}

// EnrolPush enrols a push channel; the session must be stepped up.
func (g *Gateway) EnrolPush(ctx context.Context, s *Session, channel string) error {
	if !s.IsSteppedUp(g.now(), 0) {
		return ErrStepUpRequired
	}
	_, err := g.updateAccount(ctx, s.CredentialsID, func(u *User, rec *accountRecord) error {
		if slices.Contains(u.Factors.Push, channel) {
			return challengeErr(CodeChannelAlreadyRegistered)
		}
		setFactors(u, rec, Factors{OTP: u.Factors.OTP, Push: append(slices.Clone(u.Factors.Push), channel)})
		return nil
	})
	g.auditFactor(ctx, s.CredentialsID, "factor enrolled", FactorPush, channel, err)
	return err
}

// RemovePush removes an enrolled push channel.
func (g *Gateway) RemovePush(ctx context.Context, s *Session, channel string) error {
	_, err := g.updateAccount(ctx, s.CredentialsID, func(u *User, rec *accountRecord) error {
		if !slices.Contains(u.Factors.Push, channel) {
			return challengeErr(CodeChannelNotRegistered)
		}
		push := slices.DeleteFunc(slices.Clone(u.Factors.Push), func(c string) bool { return c == channel })
		setFactors(u, rec, Factors{OTP: u.Factors.OTP, Push: push})
		return nil
	})
	g.auditFactor(ctx, s.CredentialsID, "factor removed", FactorPush, channel, err)
	return err
}

func (g *Gateway) auditFactor(ctx context.Context, credentialsID, msg, kind, channel string, err error) {
	if err != nil {
		return
	}
	g.log.Info(msg, append(auditFields(ctx), zap.String("credentials_id", credentialsID),
		zap.String("type", kind), zap.String("channel", channel))...)
}

// Push challenge statuses.
const (
	PushPending  = "PENDING"
	PushVerified = "VERIFIED"
	PushDeclined = "DECLINED"
	PushExpired  = "EXPIRED"
)

// pushRecord is a push challenge; pushIndex finds it from its id alone,
// as the provider's resolve callback and the simulator know only that.
type pushRecord struct {
	ID            string `json:"id"`
	SessionID     string `json:"s"`
	CredentialsID string `json:"c"`
	Channel       string `json:"ch"`
	Expires       int64  `json:"e"`
}

func isPushChannel(channel string) bool {
	return channel == ChannelAuthy || channel == ChannelBiometric
}
func (p *pushRecord) expiresAt() time.Time    { return time.UnixMilli(p.Expires) }
func (p *pushRecord) owner(s *Session) bool   { return p.SessionID == s.ID }
func (p *pushRecord) channelIs(c string) bool { return p.Channel == c }

// IssuePush sends a push approval request to the user's enrolled channel
// and returns its id (digits).
func (g *Gateway) IssuePush(ctx context.Context, s *Session, channel string) (string, error) {
	u, err := g.User(ctx, s.CredentialsID)
	if err != nil {
		return "", err
	}
	if !slices.Contains(u.Factors.Push, channel) {
		return "", challengeErr(CodeChannelNotRegistered)
	}
	if s.StepUpMethod == StepUpPush && !s.SteppedUp.IsZero() {
		return "", challengeErr(CodeStateInvalid)
	}
	n, err := g.store.Incr(ctx, Keys.PushIssues(s.ID), g.sessionKeep(s))
	if err != nil {
		return "", storeError(err)
	}
	if n > MaxIssuesPerRound {
		return "", challengeErr(CodeChallengeLimitExceeded)
	}
	ttl := g.codes.ttl()
	rec := pushRecord{ID: RandomDigits(18), SessionID: s.ID, CredentialsID: s.CredentialsID, Channel: channel,
		Expires: g.now().Add(ttl).UnixMilli()}
	data, _ := json.Marshal(rec)
	if err := g.store.Set(ctx, Keys.Push(rec.ID), data, g.sessionKeep(s)+ttl); err != nil {
		return "", storeError(err)
	}
	err = g.send(ctx, g.pushSender, Message{To: u.ID, ChallengeID: rec.ID, Channel: channel, Purpose: PurposeStepUp, ExpiresAt: rec.expiresAt()})
	return rec.ID, err
}

func (g *Gateway) loadPush(ctx context.Context, id string) (*pushRecord, error) {
	data, err := g.store.Get(ctx, Keys.Push(id))
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

func (g *Gateway) pushStatus(ctx context.Context, rec *pushRecord) (string, error) {
	data, err := g.store.Get(ctx, Keys.PushResolution(rec.ID))
	switch {
	case err == nil:
		return string(data), nil
	case !errors.Is(err, ErrNotFound):
		return "", storeError(err)
	case !g.now().Before(rec.expiresAt()):
		return PushExpired, nil
	}
	return PushPending, nil
}

// PushStatus reports a push challenge of the session; ErrNotFound when it
// is not this session's.
func (g *Gateway) PushStatus(ctx context.Context, s *Session, channel, id string) (string, error) {
	rec, err := g.loadPush(ctx, id)
	if err != nil {
		return "", err
	}
	if !rec.owner(s) || !rec.channelIs(channel) {
		return "", ErrNotFound
	}
	return g.pushStatus(ctx, rec)
}

// ResolvePush records the provider's answer to a push. VERIFIED steps the
// session up (method push). Resolving again with the same answer is a
// no-op; any other change of a resolved or expired push is STATE_INVALID.
// channel is checked when not empty.
func (g *Gateway) ResolvePush(ctx context.Context, channel, id, status string) error {
	rec, err := g.loadPush(ctx, id)
	if err != nil {
		return err
	}
	if channel != "" && !rec.channelIs(channel) {
		return ErrNotFound
	}
	current, err := g.pushStatus(ctx, rec)
	if err != nil {
		return err
	}
	if current == status && status != PushExpired {
		return nil
	}
	if current != PushPending {
		return challengeErr(CodeStateInvalid)
	}
	won, err := g.store.SetNX(ctx, Keys.PushResolution(id), []byte(status), g.max+g.codes.ttl())
	if err != nil {
		return storeError(err)
	}
	if !won {
		// Another node resolved it first: idempotent if it agreed.
		if now, err := g.pushStatus(ctx, rec); err == nil && now == status {
			return nil
		}
		return challengeErr(CodeStateInvalid)
	}
	s, err := g.store.TouchSession(ctx, rec.SessionID, g.idle)
	if errors.Is(err, ErrNotFound) {
		return nil // the session ended meanwhile; nothing to step up
	} else if err != nil {
		return storeError(err)
	}
	if status != PushVerified {
		g.auditStepUp(ctx, s, StepUpPush, challengeErr(status))
		return nil
	}
	err = g.stepUp(ctx, s, StepUpPush)
	g.auditStepUp(ctx, s, StepUpPush, err)
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
func (g *Gateway) SimulatePush(ctx context.Context, credentialsID, id, outcome string) (string, error) {
	if !g.sandbox {
		return "", ErrNotFound
	}
	rec, err := g.loadPush(ctx, id)
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
	if err := g.ResolvePush(ctx, "", id, status); err != nil {
		return "", err
	}
	return answer, nil
}

// PushSecret returns the secret push resolve callbacks are signed with.
func (g *Gateway) PushSecret() []byte { return g.pushSecret }
