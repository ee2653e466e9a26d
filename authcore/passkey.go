package authcore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"go.uber.org/zap"
)

// PasskeyChallengeTTL is how long a WebAuthn challenge may be answered.
const PasskeyChallengeTTL = 5 * time.Minute

// Purposes of a passkey challenge.
const (
	passkeyEnrol  = "enrol"
	passkeyStepUp = "stepup"
)

// PasskeyConfig is the relying party of the passkeys option.
type PasskeyConfig struct {
	// RPID is the WebAuthn relying party id: the site's domain.
	RPID string
	// Origins are the origins whose ceremonies count.
	Origins []string
}

// Passkeys enrols WebAuthn credentials and steps sessions up with them.
// Every ceremony requires user verification; a challenge is single use,
// lives PasskeyChallengeTTL and belongs to the session that asked for it.
type Passkeys struct {
	deps
	sessions *Sessions
	limits   *Limits
	wa       *webauthn.WebAuthn
}

func newPasskeys(d deps, sessions *Sessions, limits *Limits, c *PasskeyConfig) (*Passkeys, error) {
	wa, err := webauthn.New(&webauthn.Config{RPID: c.RPID, RPDisplayName: c.RPID, RPOrigins: c.Origins,
		AuthenticatorSelection: protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired}})
	if err != nil {
		return nil, fmt.Errorf("passkeys: %w", err)
	}
	return &Passkeys{deps: d, sessions: sessions, limits: limits, wa: wa}, nil
}

// passkeyUser is a user as the WebAuthn library sees it: the credentials
// id is the user handle and the name (an email would leak to the
// authenticator's account list for nothing).
type passkeyUser struct {
	id    string
	creds []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte                         { return []byte(u.id) }
func (u *passkeyUser) WebAuthnName() string                       { return u.id }
func (u *passkeyUser) WebAuthnDisplayName() string                { return u.id }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// PasskeyID is how a credential id is written in the API.
func PasskeyID(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

// List returns the ids of the user's passkeys.
func (p *Passkeys) List(ctx context.Context, credentialsID string) ([]string, error) {
	creds, _, err := p.load(ctx, credentialsID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(creds))
	for i, c := range creds {
		ids[i] = PasskeyID(c.ID)
	}
	return ids, nil
}

// CanEnrol reports whether the session may enrol or delete a passkey: it
// has stepped up, like for push enrolment.
func (p *Passkeys) CanEnrol(s *Session) bool { return s.IsSteppedUp(p.now(), 0) }

// BeginEnrol returns the creation options of a new passkey for the
// session's user; the session must have stepped up.
func (p *Passkeys) BeginEnrol(ctx context.Context, s *Session) (json.RawMessage, error) {
	if !p.CanEnrol(s) {
		return nil, ErrStepUpRequired
	}
	creds, _, err := p.load(ctx, s.CredentialsID)
	if err != nil {
		return nil, err
	}
	exclude := make([]protocol.CredentialDescriptor, len(creds))
	for i, c := range creds {
		exclude[i] = c.Descriptor()
	}
	options, data, err := p.wa.BeginRegistration(&passkeyUser{id: s.CredentialsID, creds: creds},
		webauthn.WithExclusions(exclude), webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementPreferred, UserVerification: protocol.VerificationRequired}))
	if err != nil {
		return nil, fmt.Errorf("passkey creation options: %w", err)
	}
	return p.saveChallenge(ctx, s, passkeyEnrol, data, options.Response)
}

// FinishEnrol checks the attestation (the client's PublicKeyCredential
// JSON) against the session's enrolment challenge and keeps the passkey.
func (p *Passkeys) FinishEnrol(ctx context.Context, s *Session, body []byte) error {
	if !p.CanEnrol(s) {
		return ErrStepUpRequired
	}
	if err := p.limits.allowClient(ctx, LimitCodeVerify); err != nil {
		return err
	}
	data, err := p.takeChallenge(ctx, s, passkeyEnrol)
	if err != nil {
		return err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return p.refuse(s, "attestation does not parse", err)
	}
	creds, old, err := p.load(ctx, s.CredentialsID)
	if err != nil {
		return err
	}
	cred, err := p.wa.CreateCredential(&passkeyUser{id: s.CredentialsID, creds: creds}, *data, parsed)
	if err != nil {
		return p.refuse(s, "attestation refused", err)
	}
	if slices.ContainsFunc(creds, func(c webauthn.Credential) bool { return bytes.Equal(c.ID, cred.ID) }) {
		return challengeErr(CodeChannelAlreadyRegistered)
	}
	err = p.store(ctx, s.CredentialsID, old, append(creds, *cred))
	p.auditFactor(ctx, s.CredentialsID, "factor enrolled", FactorPasskey, PasskeyID(cred.ID), err)
	return err
}

// Delete removes one of the session's user's passkeys; ErrNotFound when
// the user has none with that id. Like enrolment, it needs a stepped-up
// session.
func (p *Passkeys) Delete(ctx context.Context, s *Session, id string) error {
	if !p.CanEnrol(s) {
		return ErrStepUpRequired
	}
	credentialsID := s.CredentialsID
	creds, old, err := p.load(ctx, credentialsID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(creds, func(c webauthn.Credential) bool { return PasskeyID(c.ID) == id })
	if i < 0 {
		return ErrNotFound
	}
	err = p.store(ctx, credentialsID, old, slices.Delete(creds, i, i+1))
	p.auditFactor(ctx, credentialsID, "factor removed", FactorPasskey, id, err)
	return err
}

// BeginStepUp returns the request options of an assertion by one of the
// user's passkeys; STATE_INVALID when the user has none.
func (p *Passkeys) BeginStepUp(ctx context.Context, s *Session) (json.RawMessage, error) {
	creds, _, err := p.load(ctx, s.CredentialsID)
	if err != nil {
		return nil, err
	}
	if len(creds) == 0 {
		return nil, challengeErr(CodeStateInvalid)
	}
	options, data, err := p.wa.BeginLogin(&passkeyUser{id: s.CredentialsID, creds: creds},
		webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("passkey request options: %w", err)
	}
	return p.saveChallenge(ctx, s, passkeyStepUp, data, options.Response)
}

// FinishStepUp checks the assertion (the client's PublicKeyCredential
// JSON) against the session's step-up challenge and steps the session up
// with method passkey. A sign count that did not grow means a cloned
// authenticator: refused and logged.
func (p *Passkeys) FinishStepUp(ctx context.Context, s *Session, body []byte) error {
	if err := p.limits.allowClient(ctx, LimitCodeVerify); err != nil {
		return err
	}
	err := p.finishStepUp(ctx, s, body)
	p.auditStepUp(ctx, s, StepUpPasskey, err)
	return err
}

func (p *Passkeys) finishStepUp(ctx context.Context, s *Session, body []byte) error {
	data, err := p.takeChallenge(ctx, s, passkeyStepUp)
	if err != nil {
		return err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return p.refuse(s, "assertion does not parse", err)
	}
	creds, old, err := p.load(ctx, s.CredentialsID)
	if err != nil {
		return err
	}
	cred, err := p.wa.ValidateLogin(&passkeyUser{id: s.CredentialsID, creds: creds}, *data, parsed)
	if err != nil {
		return p.refuse(s, "assertion refused", err)
	}
	if cred.Authenticator.CloneWarning {
		p.log.Warn("passkey sign count did not grow: a cloned authenticator; step-up refused",
			zap.String("credentials_id", s.CredentialsID), zap.String("passkey", PasskeyID(cred.ID)),
			zap.Uint32("sign_count", cred.Authenticator.SignCount))
		return challengeErr(CodeVerificationCodeInvalid)
	}
	i := slices.IndexFunc(creds, func(c webauthn.Credential) bool { return bytes.Equal(c.ID, cred.ID) })
	creds[i] = *cred
	if err := p.store(ctx, s.CredentialsID, old, creds); err != nil {
		return err
	}
	return p.sessions.stepUp(ctx, s, StepUpPasskey)
}

// refuse logs why a ceremony was refused (the library's reason, no
// secret) and answers VERIFICATION_CODE_INVALID.
func (p *Passkeys) refuse(s *Session, what string, err error) error {
	p.log.Info("passkey "+what, zap.String("credentials_id", s.CredentialsID), zap.Error(err))
	return challengeErr(CodeVerificationCodeInvalid)
}

func (p *Passkeys) saveChallenge(ctx context.Context, s *Session, purpose string, data *webauthn.SessionData, options any) (json.RawMessage, error) {
	state, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("passkey challenge: %w", err)
	}
	out, err := json.Marshal(options)
	if err != nil {
		return nil, fmt.Errorf("passkey options: %w", err)
	}
	if err := p.deps.store.Set(ctx, Keys.PasskeyChallenge(s.ID, purpose), state, PasskeyChallengeTTL); err != nil {
		return nil, storeError(err)
	}
	return out, nil
}

// takeChallenge takes the session's challenge for purpose, once;
// STATE_INVALID when there is none (never asked, answered, or expired).
func (p *Passkeys) takeChallenge(ctx context.Context, s *Session, purpose string) (*webauthn.SessionData, error) {
	state, err := p.deps.store.TakeOnce(ctx, Keys.PasskeyChallenge(s.ID, purpose))
	if errors.Is(err, ErrNotFound) {
		return nil, challengeErr(CodeStateInvalid)
	} else if err != nil {
		return nil, storeError(err)
	}
	data := new(webauthn.SessionData)
	if err := json.Unmarshal(state, data); err != nil {
		return nil, fmt.Errorf("passkey challenge: %w", err)
	}
	return data, nil
}

// load returns the user's passkeys and their stored form, for store.
func (p *Passkeys) load(ctx context.Context, credentialsID string) ([]webauthn.Credential, []byte, error) {
	raw, err := p.deps.store.Get(ctx, Keys.Passkeys(credentialsID))
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, storeError(err)
	}
	var creds []webauthn.Credential
	if err := json.Unmarshal(raw, &creds); err != nil {
		return nil, nil, fmt.Errorf("passkeys of %s: %w", credentialsID, err)
	}
	return creds, raw, nil
}

// store replaces the user's passkeys if they are still old: two
// ceremonies of one user at once cannot lose a credential or a sign count.
func (p *Passkeys) store(ctx context.Context, credentialsID string, old []byte, creds []webauthn.Credential) error {
	raw, err := json.Marshal(creds)
	if err != nil {
		return fmt.Errorf("passkeys of %s: %w", credentialsID, err)
	}
	ok, err := p.deps.store.Swap(ctx, Keys.Passkeys(credentialsID), old, raw, AccountDataTTL)
	if err != nil {
		return storeError(err)
	}
	if !ok {
		return challengeErr(CodeStateInvalid)
	}
	return nil
}
