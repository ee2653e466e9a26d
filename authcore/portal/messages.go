package portal

import (
	"errors"

	"github.com/authgate/authgate/authcore"
)

// What the pages say, in plain words, in one place.
const (
	msgNotFound         = "There is no such page."
	msgMethodNotAllowed = "This page cannot be used that way."
	msgCrossSite        = "This form was sent from another site, so it was refused. Go back to the sign-in page and try again."
	msgBadForm          = "The form could not be read. Go back and try again."
	msgCSRF             = "This form has expired or was not sent from this site. Go back, reload the page and try again."
	msgUnavailable      = "The sign-in service is unavailable right now. Try again in a moment."
	msgInternal         = "Something went wrong on our side. Try again in a moment."
	msgSendFailed       = "We could not send the message just now. Try again in a moment."

	msgSignedOut          = "You have signed out."
	msgMissingCredentials = "Enter your email and your password."
	msgWrongCredentials   = "The email or password is incorrect."
	msgLocked             = "This account is locked for a while after too many wrong passwords in a row. Try again later."

	msgCodeSent        = "We sent a code by text message. Enter it below."
	msgMissingCode     = "Enter the code from the text message."
	msgNoFactor        = "Your account has no way to confirm it is you yet. Ask your administrator to set one up."
	msgUnknownPush     = "That request is no longer known. Start a new one."
	msgPushPending     = "Approve the request on your phone…"
	msgPushVerified    = "Approved. Taking you back…"
	msgPushDeclined    = "The request was declined on your phone. Start a new one if that was a mistake."
	msgPushExpired     = "The request expired before it was approved. Start a new one."
	msgPushStillWaits  = "The request has not been approved yet. Approve it on your phone, then continue."
	msgExpiredPassword = "Your password has expired. Choose a new one to continue."
	msgMissingPassword = "Enter your current password and a new one."

	msgNoPasskey      = "This page needs you to confirm it is you with a passkey, and your account has none yet."
	msgPasskeyOnly    = "This page needs you to confirm it is you with a passkey."
	msgPasskeyAdded   = "Passkey added. You can use it to confirm it is you."
	msgPasskeyRemoved = "Passkey removed."
	msgUnknownPasskey = "That passkey is not one of yours. Reload the page to see them."
	msgSessionEnded   = "Your session has ended. Reload the page to sign in again."
	msgStepUpFirst    = "Confirm it is you before you change your passkeys. Reload the page to do so."
)

// passkeyWords are what passkey.js says while the browser runs a
// ceremony, and when it cannot.
var passkeyWords = map[string]string{
	"waiting":     "Follow your browser's prompt to use your passkey…",
	"cancelled":   "The passkey was not used. Try again, or confirm another way.",
	"unsupported": "This browser cannot use passkeys. Confirm another way, or use another browser.",
	"failed":      "Something went wrong. Try again in a moment.",
}

// pushWords says a push's status in words; "GONE" is what portal.js
// shows when the push is no longer known (404).
var pushWords = map[string]string{
	authcore.PushPending:  msgPushPending,
	authcore.PushVerified: msgPushVerified,
	authcore.PushDeclined: msgPushDeclined,
	authcore.PushExpired:  msgPushExpired,
	"GONE":                msgUnknownPush,
}

// Step-up actions, as the forms name them.
const (
	actionSendSMS      = "send-sms"
	actionVerifySMS    = "verify-sms"
	actionPush         = "push"
	actionPushContinue = "push-continue"
)

// stepUpMessage says why a step-up action was refused: every code of SPEC
// §5, in the words of the action that met it.
func stepUpMessage(action string, err error) string {
	var ce *authcore.ChallengeError
	if !errors.As(err, &ce) {
		return msgInternal
	}
	switch ce.Code {
	case authcore.CodeChannelNotRegistered:
		return "That way of confirming it is you is not set up for your account."
	case authcore.CodeRetryIn15Sec:
		return "A code was sent a moment ago. Wait 15 seconds before asking for another one."
	case authcore.CodeVerificationCodeInvalid:
		return "That code is not right. Check the message and try again."
	case authcore.CodeOneChallengeLimitLeft:
		return "That code is not right. You have one more try."
	case authcore.CodeVerificationCodeExpired:
		return "That code has expired. Send a new one."
	case authcore.CodeAlreadyVerified:
		return "That code has already been used. Send a new one if you need to confirm again."
	case authcore.CodeChallengeLimitExceeded:
		switch action {
		case actionSendSMS:
			return "You have asked for too many codes. Sign in again to try once more."
		case actionPush:
			return "Too many requests were sent to your phone. Sign in again to try once more."
		}
		return "Too many wrong codes. Sign in again to try once more."
	case authcore.CodeStateInvalid:
		switch {
		case action == actionPush:
			return "A request to your phone was already approved in this session. Sign in again to use it once more."
		case ce.Exhausted:
			return "Too many wrong codes. Sign in again to try once more."
		}
		return "There is no code to check yet. Send a code first."
	}
	return msgInternal
}

// passwordMessage says why a password change was refused: the policy of
// SPEC §5 in words.
func passwordMessage(err error) string {
	var ce *authcore.ChallengeError
	if !errors.As(err, &ce) {
		return msgInternal
	}
	switch ce.Code {
	case authcore.CodePasswordIncorrect:
		return "Your current password is not right."
	case authcore.CodePasswordTooShort:
		return "The new password is too short: use at least 8 characters."
	case authcore.CodePasswordTooLong:
		return "The new password is too long: use at most 30 characters."
	case authcore.CodePasswordTooSimple:
		return "The new password needs a lower-case letter, an upper-case letter, a digit and a symbol."
	case authcore.CodePasswordAlreadyUsed:
		return "You have used that password before. Choose one that is not among your last 5."
	}
	return msgInternal
}

// passkeyMessage says why a passkey ceremony (ceremonyStepUp or
// ceremonyEnrol) was refused.
func passkeyMessage(kind string, err error) string {
	var ce *authcore.ChallengeError
	if !errors.As(err, &ce) {
		return msgInternal
	}
	switch ce.Code {
	case authcore.CodeVerificationCodeInvalid:
		if kind == ceremonyEnrol {
			return "That passkey could not be added: it did not verify you. Try again with a passkey that asks for your PIN, fingerprint or face."
		}
		return "Your passkey's answer was refused. Try again with a passkey of this account, or confirm another way."
	case authcore.CodeChannelAlreadyRegistered:
		return "That passkey is already added to your account."
	case authcore.CodeStateInvalid:
		return "The passkey request expired or was already answered. Try again."
	}
	return msgInternal
}
