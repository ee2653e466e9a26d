package authcore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// Message is everything a sender needs to reach a user, in one value so
// that one Sender interface serves OTP, push and email delivery alike.
type Message struct {
	// To is where the message goes: an E.164 number for SMS, an email
	// address for email, or the credentials id for push, which the push
	// provider maps to the user's device.
	To string
	// Code is the one-time code in clear; empty for push, where the user
	// approves on the device instead of typing a code.
	Code string
	// Channel is the API's channel name ("SMS", "EMAIL", "AUTHY",
	// "BIOMETRIC") so a webhook receiver can route without guessing.
	Channel string
	// Purpose ("stepup", "enrolment", "login") lets the receiver word the
	// message for what the user is actually doing.
	Purpose string
	// ChallengeID is set for push: the provider echoes it back on the
	// resolve route to say which challenge the user approved or declined.
	ChallengeID string
	// ExpiresAt is when the code or challenge stops being accepted, so the
	// user can be told how long they have.
	ExpiresAt time.Time
}

// Sender delivers a Message. Implementations must never put the code or
// their own secrets into a returned error, because errors end up in logs.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SignHMAC returns base64(HMAC-SHA256(body, secret)), the `signature`
// header both of outgoing webhooks and of incoming push resolves, so a
// receiver can check that the body came from a holder of the secret.
func SignHMAC(body, secret []byte) string {
	return base64.StdEncoding.EncodeToString(mac(body, secret))
}

// VerifyHMAC reports whether signature is SignHMAC(body, secret). It
// compares in constant time so that a forger learns nothing from timing,
// and treats any malformed signature as a mismatch rather than an error,
// since the caller's answer (401) is the same either way. An empty secret
// never verifies: anyone can compute that MAC, so accepting it would turn
// a configuration mistake into an open door.
func VerifyHMAC(body, secret []byte, signature string) bool {
	if len(secret) == 0 {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	return hmac.Equal(got, mac(body, secret))
}

func mac(body, secret []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(body)
	return h.Sum(nil)
}

// FixedCoder is a Sender that delivers nothing and so wants every code to
// be the fixed sandbox one (sender "sandbox").
type FixedCoder interface {
	FixedCode() string
}
