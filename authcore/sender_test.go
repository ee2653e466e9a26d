package authcore

import (
	"encoding/base64"
	"strings"
	"testing"
)

// The expected value was computed independently (Python's hmac module), so
// a push provider written in another language signs the same way.
func TestSignHMACMatchesAnIndependentImplementation(t *testing.T) {
	got := SignHMAC([]byte(`{"status":"VERIFIED"}`), []byte("secret"))
	const want = "vDKyhpoaCmDl04ncleShHZLnBwWVVsHwrFO2W7oYZa0="
	if got != want {
		t.Fatalf("SignHMAC = %q, want %q", got, want)
	}
}

func TestVerifyHMAC(t *testing.T) {
	body := []byte(`{"status":"VERIFIED"}`)
	secret := []byte("resolve-secret")
	good := SignHMAC(body, secret)
	raw, _ := base64.StdEncoding.DecodeString(good)

	tests := []struct {
		name      string
		body      []byte
		secret    []byte
		signature string
		want      bool
	}{
		{"accepts the signature of the exact body", body, secret, good, true},
		{"rejects a tampered body", []byte(`{"status":"DECLINED"}`), secret, good, false},
		{"rejects a body with trailing whitespace", append(append([]byte{}, body...), '\n'), secret, good, false},
		{"rejects a signature made with another secret", body, []byte("other-secret"), good, false},
		{"rejects malformed base64", body, secret, "not base64!!", false},
		{"rejects unpadded base64", body, secret, strings.TrimRight(good, "="), false},
		{"rejects a truncated MAC", body, secret, base64.StdEncoding.EncodeToString(raw[:16]), false},
		{"rejects an empty signature", body, secret, "", false},
		{"rejects an empty secret even with its own MAC", body, nil, SignHMAC(body, nil), false},
		{"accepts an empty body when signed", nil, secret, SignHMAC(nil, secret), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyHMAC(tt.body, tt.secret, tt.signature); got != tt.want {
				t.Fatalf("VerifyHMAC = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzVerifyHMACNeverPanics(f *testing.F) {
	f.Add([]byte("body"), []byte("secret"), "vDKyhpoaCmDl04ncleShHZLnBwWVVsHwrFO2W7oYZa0=")
	f.Add([]byte{}, []byte{}, "")
	f.Fuzz(func(t *testing.T, body, secret []byte, sig string) {
		_ = VerifyHMAC(body, secret, sig)
	})
}
