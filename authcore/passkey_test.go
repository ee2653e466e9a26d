package authcore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
)

const (
	testRPID   = "bank.example"
	testOrigin = "https://bank.example"
)

// softKey is a software authenticator: one ECDSA P-256 credential, its
// sign count, and the flags it sets.
type softKey struct {
	key    *ecdsa.PrivateKey
	id     []byte
	count  uint32
	flags  byte
	rpID   string
	origin string
}

const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

func newSoftKey(t *testing.T) *softKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &softKey{key: key, id: id, flags: flagUP | flagUV, rpID: testRPID, origin: testOrigin}
}

// cbor writes the few CBOR items an attestation needs (RFC 8949).
func cborHead(major byte, n int) []byte {
	switch {
	case n < 24:
		return []byte{major<<5 | byte(n)}
	case n < 256:
		return []byte{major<<5 | 24, byte(n)}
	}
	return []byte{major<<5 | 25, byte(n >> 8), byte(n)}
}

func cborInt(n int) []byte {
	if n < 0 {
		return cborHead(1, -1-n)
	}
	return cborHead(0, n)
}

func cborBytes(b []byte) []byte { return append(cborHead(2, len(b)), b...) }
func cborText(s string) []byte  { return append(cborHead(3, len(s)), s...) }

func (k *softKey) coseKey() []byte {
	x, y := make([]byte, 32), make([]byte, 32)
	k.key.X.FillBytes(x)
	k.key.Y.FillBytes(y)
	b := cborHead(5, 5)
	b = append(append(b, cborInt(1)...), cborInt(2)...)    // kty: EC2
	b = append(append(b, cborInt(3)...), cborInt(-7)...)   // alg: ES256
	b = append(append(b, cborInt(-1)...), cborInt(1)...)   // crv: P-256
	b = append(append(b, cborInt(-2)...), cborBytes(x)...) // x
	return append(append(b, cborInt(-3)...), cborBytes(y)...)
}

func (k *softKey) authData(attested bool) []byte {
	rp := sha256.Sum256([]byte(k.rpID))
	b := append(rp[:], k.flags)
	b = binary.BigEndian.AppendUint32(b, k.count)
	if attested {
		b[32] |= flagAT
		b = append(b, make([]byte, 16)...) // AAGUID: none
		b = binary.BigEndian.AppendUint16(b, uint16(len(k.id)))
		b = append(append(b, k.id...), k.coseKey()...)
	}
	return b
}

func (k *softKey) clientData(t *testing.T, kind string, options json.RawMessage) []byte {
	t.Helper()
	var o struct {
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(options, &o); err != nil || o.Challenge == "" {
		t.Fatalf("options without a challenge: %v %s", err, options)
	}
	cd, _ := json.Marshal(map[string]any{"type": kind, "challenge": o.Challenge, "origin": k.origin})
	return cd
}

var b64 = base64.RawURLEncoding.EncodeToString

// attest answers creation options with an attestation "none".
func (k *softKey) attest(t *testing.T, options json.RawMessage) []byte {
	cd := k.clientData(t, "webauthn.create", options)
	obj := cborHead(5, 3)
	obj = append(append(obj, cborText("fmt")...), cborText("none")...)
	obj = append(append(obj, cborText("attStmt")...), cborHead(5, 0)...)
	obj = append(append(obj, cborText("authData")...), cborBytes(k.authData(true))...)
	body, _ := json.Marshal(map[string]any{"id": b64(k.id), "rawId": b64(k.id), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64(cd), "attestationObject": b64(obj)}})
	return body
}

// assert answers request options, counting one more use.
func (k *softKey) assert(t *testing.T, options json.RawMessage, userHandle string) []byte {
	k.count++
	cd := k.clientData(t, "webauthn.get", options)
	ad := k.authData(false)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"id": b64(k.id), "rawId": b64(k.id), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64(cd), "authenticatorData": b64(ad),
			"signature": b64(sig), "userHandle": b64([]byte(userHandle))}})
	return body
}

func newPasskeyServices(t *testing.T) (*authcore.Services, *clock, authcore.Store) {
	return newTestServicesWith(t, func(o *authcore.Options) {
		o.Passkeys = &authcore.PasskeyConfig{RPID: testRPID, Origins: []string{testOrigin}}
	})
}

// steppedUpLogin logs alice in and steps her session up by a code.
func steppedUpLogin(t *testing.T, gw *authcore.Services, clk *clock, store authcore.Store) *authcore.Session {
	t.Helper()
	ctx := context.Background()
	res, err := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Session
	s.SteppedUp, s.StepUpMethod = clk.Now(), authcore.StepUpOTP
	if err := store.SaveSession(ctx, s, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	return s
}

// enrol enrols k for the session's user.
func enrol(t *testing.T, gw *authcore.Services, s *authcore.Session, k *softKey) {
	t.Helper()
	ctx := context.Background()
	options, err := gw.Passkeys.BeginEnrol(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Passkeys.FinishEnrol(ctx, s, k.attest(t, options)); err != nil {
		t.Fatalf("enrol: %v", err)
	}
}

func TestPasskeyEnrolThenStepUp(t *testing.T) {
	gw, clk, store := newPasskeyServices(t)
	ctx := context.Background()
	s := steppedUpLogin(t, gw, clk, store)
	k := newSoftKey(t)
	enrol(t, gw, s, k)
	if ids, err := gw.Passkeys.List(ctx, s.CredentialsID); err != nil || len(ids) != 1 || ids[0] != b64(k.id) {
		t.Fatalf("passkeys %v %v, want [%s]", ids, err, b64(k.id))
	}

	// A new session of alice's steps up with the passkey.
	res, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	options, err := gw.Passkeys.BeginStepUp(ctx, res.Session)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Passkeys.FinishStepUp(ctx, res.Session, k.assert(t, options, s.CredentialsID)); err != nil {
		t.Fatalf("step-up: %v", err)
	}
	_, stored, err := gw.Sessions.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if stored.StepUpMethod != authcore.StepUpPasskey || !stored.IsSteppedUp(clk.Now(), time.Minute) {
		t.Fatalf("session after the passkey: %+v", stored)
	}
	if _, rej := admit(gw, ctx, "Bearer "+res.Token, &authcore.GuardPolicy{Token: authcore.GuardAny, StepUp: true,
		MaxAge: 5 * time.Minute, StepUpMethods: []string{authcore.StepUpPasskey}}); rej != nil {
		t.Fatalf("passkey route: %+v", rej)
	}

	// Removed, it is gone, and a step-up is no longer offered.
	if err := gw.Passkeys.Delete(ctx, s.CredentialsID, b64(k.id)); err != nil {
		t.Fatal(err)
	}
	if err := gw.Passkeys.Delete(ctx, s.CredentialsID, b64(k.id)); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	_, err = gw.Passkeys.BeginStepUp(ctx, res.Session)
	wantCode(t, err, authcore.CodeStateInvalid)
}

func TestPasskeyEnrolNeedsAStepUp(t *testing.T) {
	gw, _, _ := newPasskeyServices(t)
	ctx := context.Background()
	res, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	if _, err := gw.Passkeys.BeginEnrol(ctx, res.Session); !errors.Is(err, authcore.ErrStepUpRequired) {
		t.Fatalf("enrol without a step-up: %v", err)
	}
}

func TestPasskeyRefusals(t *testing.T) {
	ctx := context.Background()
	cases := map[string]func(t *testing.T, gw *authcore.Services, s *authcore.Session, k *softKey) error{
		"replayed assertion": func(t *testing.T, gw *authcore.Services, s *authcore.Session, k *softKey) error {
			options, _ := gw.Passkeys.BeginStepUp(ctx, s)
			body := k.assert(t, options, s.CredentialsID)
			if err := gw.Passkeys.FinishStepUp(ctx, s, body); err != nil {
				t.Fatalf("first use: %v", err)
			}
			return gw.Passkeys.FinishStepUp(ctx, s, body)
		},
		"wrong origin": func(t *testing.T, gw *authcore.Services, s *authcore.Session, k *softKey) error {
			options, _ := gw.Passkeys.BeginStepUp(ctx, s)
			k.origin = "https://bank.example.evil"
			return gw.Passkeys.FinishStepUp(ctx, s, k.assert(t, options, s.CredentialsID))
		},
		"wrong RP ID": func(t *testing.T, gw *authcore.Services, s *authcore.Session, k *softKey) error {
			options, _ := gw.Passkeys.BeginStepUp(ctx, s)
			k.rpID = "evil.example"
			return gw.Passkeys.FinishStepUp(ctx, s, k.assert(t, options, s.CredentialsID))
		},
		"cloned credential": func(t *testing.T, gw *authcore.Services, s *authcore.Session, k *softKey) error {
			options, _ := gw.Passkeys.BeginStepUp(ctx, s)
			k.count = 10
			if err := gw.Passkeys.FinishStepUp(ctx, s, k.assert(t, options, s.CredentialsID)); err != nil {
				t.Fatalf("original: %v", err)
			}
			k.count = 3 // the clone lags behind
			options, _ = gw.Passkeys.BeginStepUp(ctx, s)
			return gw.Passkeys.FinishStepUp(ctx, s, k.assert(t, options, s.CredentialsID))
		},
		"user verification missing": func(t *testing.T, gw *authcore.Services, s *authcore.Session, k *softKey) error {
			options, _ := gw.Passkeys.BeginStepUp(ctx, s)
			k.flags = flagUP
			return gw.Passkeys.FinishStepUp(ctx, s, k.assert(t, options, s.CredentialsID))
		},
	}
	for name, run := range cases {
		t.Run(name, func(t *testing.T) {
			gw, clk, store := newPasskeyServices(t)
			enrolled := steppedUpLogin(t, gw, clk, store)
			k := newSoftKey(t)
			enrol(t, gw, enrolled, k)
			res, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
			err := run(t, gw, res.Session, k)
			var ce *authcore.ChallengeError
			if !errors.As(err, &ce) || (ce.Code != authcore.CodeVerificationCodeInvalid && ce.Code != authcore.CodeStateInvalid) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if name == "replayed assertion" && ce.Code != authcore.CodeStateInvalid ||
				name != "replayed assertion" && ce.Code != authcore.CodeVerificationCodeInvalid {
				t.Fatalf("code %s", ce.Code)
			}
		})
	}
}
