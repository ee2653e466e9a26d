package authtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"
)

// SoftKey is a software WebAuthn authenticator: one ECDSA P-256
// credential, its sign count, and the flags it sets. Its attestation is
// "none".
type SoftKey struct {
	key *ecdsa.PrivateKey
	// ID is the credential id.
	ID []byte
	// Count is the sign count of the last assertion.
	Count uint32
	// Flags are the authenticator data flags it sets (FlagUP|FlagUV).
	Flags byte
	// RPID is the relying party id it hashes into its data.
	RPID string
	// Origin is the origin it writes in the client data.
	Origin string
}

// Authenticator data flags (WebAuthn §6.1): user present, user verified,
// attested credential data included.
const (
	FlagUP = 0x01
	FlagUV = 0x04
	FlagAT = 0x40
)

// NewSoftKey returns an authenticator for rpID that answers from origin
// with user presence and verification.
func NewSoftKey(t *testing.T, rpID, origin string) *SoftKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &SoftKey{key: key, ID: id, Flags: FlagUP | FlagUV, RPID: rpID, Origin: origin}
}

// cborHead and the functions below write the few CBOR items an attestation needs (RFC 8949).
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

func (k *SoftKey) coseKey() []byte {
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

func (k *SoftKey) authData(attested bool) []byte {
	rp := sha256.Sum256([]byte(k.RPID))
	b := append(rp[:], k.Flags)
	b = binary.BigEndian.AppendUint32(b, k.Count)
	if attested {
		b[32] |= FlagAT
		b = append(b, make([]byte, 16)...) // AAGUID: none
		b = binary.BigEndian.AppendUint16(b, uint16(len(k.ID)))
		b = append(append(b, k.ID...), k.coseKey()...)
	}
	return b
}

func (k *SoftKey) clientData(t *testing.T, kind string, options json.RawMessage) []byte {
	t.Helper()
	var o struct {
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(options, &o); err != nil || o.Challenge == "" {
		t.Fatalf("options without a challenge: %v %s", err, options)
	}
	cd, _ := json.Marshal(map[string]any{"type": kind, "challenge": o.Challenge, "origin": k.Origin})
	return cd
}

var b64 = base64.RawURLEncoding.EncodeToString

// Attest answers creation options with an attestation "none".
func (k *SoftKey) Attest(t *testing.T, options json.RawMessage) []byte {
	cd := k.clientData(t, "webauthn.create", options)
	obj := cborHead(5, 3)
	obj = append(append(obj, cborText("fmt")...), cborText("none")...)
	obj = append(append(obj, cborText("attStmt")...), cborHead(5, 0)...)
	obj = append(append(obj, cborText("authData")...), cborBytes(k.authData(true))...)
	body, _ := json.Marshal(map[string]any{"id": b64(k.ID), "rawId": b64(k.ID), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64(cd), "attestationObject": b64(obj)}})
	return body
}

// Assert answers request options, counting one more use.
func (k *SoftKey) Assert(t *testing.T, options json.RawMessage, userHandle string) []byte {
	k.Count++
	cd := k.clientData(t, "webauthn.get", options)
	ad := k.authData(false)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"id": b64(k.ID), "rawId": b64(k.ID), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64(cd), "authenticatorData": b64(ad),
			"signature": b64(sig), "userHandle": b64([]byte(userHandle))}})
	return body
}
