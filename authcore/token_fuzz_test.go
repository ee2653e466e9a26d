package authcore

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Fuzz targets of the token verifier and the Authorization header parser
// (SPEC §9). Run one with, for example:
//
//	go test -run '^$' -fuzz '^FuzzVerify$' -fuzztime 10s ./authcore

// fuzzTokenEnv is a verifier with an HS256 signing key and an Ed25519
// verify-only key, on a fixed clock, and the tokens it issued.
type fuzzTokenEnv struct {
	now    time.Time
	hs, ed *Key
	tokens *Tokens
	// issued are the signing inputs (header.payload) of every token the
	// env's keys signed: nobody else can make a token that verifies.
	issued map[string]bool
	// valid are well-formed, correctly signed tokens (some of which are
	// refused for their claims).
	valid []string
}

const fuzzIssuer = "https://auth.fuzz.test"

func newFuzzTokenEnv(tb testing.TB) *fuzzTokenEnv {
	tb.Helper()
	hs, err := NewHMACKey([]byte(strings.Repeat("f", 32)))
	if err != nil {
		tb.Fatal(err)
	}
	e := &fuzzTokenEnv{
		now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		hs:  hs, ed: NewEphemeralKey(), issued: map[string]bool{},
	}
	e.tokens = e.verifier()
	return e
}

// verifier returns a fresh verifier (with an empty cache) of the env.
func (e *fuzzTokenEnv) verifier() *Tokens {
	return NewTokens(fuzzIssuer, e.hs, func() time.Time { return e.now }, e.ed)
}

func (e *fuzzTokenEnv) claims() *Claims {
	c := &Claims{SessionID: "sid-1", TokenType: TokenAccess, CredentialsType: CredentialsRoot,
		Identity: IdentityRef{Type: IdentityConsumer, ID: "2001"}, AMR: []string{"pwd"}, AuthTime: e.now.Unix()}
	c.Subject = "1001"
	c.Issuer = fuzzIssuer
	c.ID = "jti-1"
	c.IssuedAt = jwtTime(e.now)
	c.NotBefore = jwtTime(e.now)
	c.ExpiresAt = jwtTime(e.now.Add(time.Hour))
	return c
}

// sign signs c with one of the env's keys and remembers the signing input.
func (e *fuzzTokenEnv) sign(tb testing.TB, k *Key, c *Claims) string {
	tb.Helper()
	return e.signWithHeader(tb, k, c, nil)
}

// signWithHeader is sign with more header parameters (a nil value
// removes one).
func (e *fuzzTokenEnv) signWithHeader(tb testing.TB, k *Key, c *Claims, header map[string]any) string {
	tb.Helper()
	tok := jwt.NewWithClaims(k.method, c)
	tok.Header["kid"] = k.ID
	for name, v := range header {
		if v == nil {
			delete(tok.Header, name)
			continue
		}
		tok.Header[name] = v
	}
	s, err := tok.SignedString(k.private)
	if err != nil {
		tb.Fatal(err)
	}
	e.issued[s[:strings.LastIndexByte(s, '.')]] = true
	e.valid = append(e.valid, s)
	return s
}

func fuzzB64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// seeds returns valid tokens, tampered variants and garbage.
func (e *fuzzTokenEnv) seeds(tb testing.TB) []string {
	tb.Helper()
	good := e.sign(tb, e.hs, e.claims())
	goodEd := e.sign(tb, e.ed, e.claims())
	for _, tok := range []string{good, goodEd} {
		if _, err := e.verifier().Verify(tok); err != nil {
			tb.Fatalf("a valid seed token is refused: %v", err)
		}
	}
	for _, typ := range []string{TokenAuth, TokenPasswordUpdate, "ADMIN", ""} {
		c := e.claims()
		c.TokenType = typ
		e.sign(tb, e.hs, c)
	}
	noSID := e.claims()
	noSID.SessionID = ""
	e.sign(tb, e.hs, noSID)
	noSub := e.claims()
	noSub.Subject = ""
	e.sign(tb, e.hs, noSub)
	expired := e.claims()
	expired.ExpiresAt = jwtTime(e.now.Add(-time.Minute))
	e.sign(tb, e.hs, expired)
	noExp := e.claims()
	noExp.ExpiresAt = nil
	e.sign(tb, e.hs, noExp)
	future := e.claims()
	future.NotBefore = jwtTime(e.now.Add(time.Hour))
	e.sign(tb, e.hs, future)
	otherIss := e.claims()
	otherIss.Issuer = "https://evil.test"
	e.sign(tb, e.hs, otherIss)
	// Correctly signed, but with a crit (no extension is implemented) or a
	// typ that names another kind of token; and the typ forms that are JWT.
	for _, k := range []*Key{e.hs, e.ed} {
		for _, h := range []map[string]any{
			{"crit": []string{"x-unknown"}, "x-unknown": true}, {"crit": []string{"exp"}}, {"crit": []string{}},
			{"crit": "exp"}, {"crit": []any{nil}}, {"typ": "at+jwt"}, {"typ": "application/at+jwt"}, {"typ": "JOSE"},
			{"typ": ""}, {"typ": 1}, {"typ": []string{"JWT"}}, {"typ": map[string]any{}},
			{"typ": nil}, {"typ": "jwt"}, {"typ": "application/JWT"},
		} {
			e.signWithHeader(tb, k, e.claims(), h)
		}
	}

	parts := strings.Split(good, ".")
	edParts := strings.Split(goodEd, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	flip := func(s string, i int) string {
		b := []byte(s)
		b[i%len(b)] ^= 0x01
		return string(b)
	}
	// HS256 keyed with the Ed25519 public key: the classic algorithm
	// confusion, naming the Ed25519 key's kid.
	confused := jwt.NewWithClaims(jwt.SigningMethodHS256, e.claims())
	confused.Header["kid"] = e.ed.ID
	confusedTok, _ := confused.SignedString([]byte(e.ed.public.(ed25519.PublicKey)))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, e.claims())
	none.Header["kid"] = e.hs.ID
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)

	out := append([]string{}, e.valid...)
	out = append(out,
		// tampered
		parts[0]+"."+parts[1]+"."+flip(parts[2], 3),
		parts[0]+"."+flip(parts[1], 10)+"."+parts[2],
		parts[0]+"."+fuzzB64(strings.Replace(string(payload), `"1001"`, `"1002"`, 1))+"."+parts[2],
		parts[0]+"."+fuzzB64(strings.Replace(string(payload), `"ACCESS"`, `"AUTH"`, 1))+"."+parts[2],
		edParts[0]+"."+parts[1]+"."+parts[2],
		parts[0]+"."+parts[1]+"."+edParts[2],
		parts[0]+"."+parts[1]+".",
		parts[0]+"."+parts[1],
		parts[0]+"."+parts[1]+"."+parts[2]+".",
		parts[0]+"."+parts[1]+"."+parts[2]+"=",
		" "+good,
		good+" ",
		good+"\x00",
		strings.ToUpper(good),
		// alg none, confusion, odd headers
		noneTok,
		noneTok+parts[2],
		confusedTok,
		fuzzB64(`{"alg":"HS256","kid":["`+e.hs.ID+`"]}`)+"."+parts[1]+"."+parts[2],
		fuzzB64(`{"alg":"HS256","kid":null}`)+"."+parts[1]+"."+parts[2],
		fuzzB64(`{"alg":"HS256","kid":"`+e.hs.ID+`","crit":["exp"]}`)+"."+parts[1]+"."+parts[2],
		fuzzB64(`{"alg":"hs256","kid":"`+e.hs.ID+`"}`)+"."+parts[1]+"."+parts[2],
		fuzzB64(`{"alg":"HS256","kid":"`+e.hs.ID+`"}`)+"."+fuzzB64(`{"exp":1e999,"sid":"s","sub":"u","token_type":"AUTH"}`)+"."+parts[2],
		fuzzB64(`{"alg":"HS256","kid":"`+e.hs.ID+`"}`)+"."+fuzzB64(`{"exp":-1,"iat":"x","nbf":[],"aud":{}}`)+"."+parts[2],
		fuzzB64(`{"alg":"HS256","kid":"`+e.hs.ID+`"}`)+"."+fuzzB64("\xff\xfe")+"."+parts[2],
		fuzzB64(`[]`)+"."+fuzzB64(`[]`)+"."+parts[2],
		fuzzB64(strings.Repeat("[", 10000))+"."+parts[1]+"."+parts[2],
		// garbage
		"",
		".",
		"..",
		"...",
		"a.b.c",
		"not a token",
		"\xff\xfe\xfd.\x00.\x01",
		"Bearer "+good,
		strings.Repeat("A", 64<<10),
		strings.Repeat("A", 32<<10)+"."+strings.Repeat("B", 32<<10)+"."+strings.Repeat("C", 32<<10),
		parts[0]+"."+parts[1]+"."+strings.Repeat(parts[2], 2000),
		strings.Repeat(".", 10000),
	)
	return out
}

func FuzzVerify(f *testing.F) {
	e := newFuzzTokenEnv(f)
	for _, s := range e.seeds(f) {
		f.Add(s)
	}
	fresh := e.verifier()
	f.Fuzz(func(t *testing.T, token string) {
		c, err := e.tokens.Verify(token)
		if err != nil {
			if c != nil {
				t.Fatalf("Verify returned claims with the error %v", err)
			}
			// A refused token stays refused, cache or no cache.
			if _, err2 := e.tokens.Verify(token); err2 == nil {
				t.Fatalf("a token refused once (%v) was accepted the second time", err)
			}
			return
		}
		if c == nil {
			t.Fatal("Verify returned neither claims nor an error")
		}
		if c.SessionID == "" || c.Subject == "" {
			t.Fatalf("accepted a token without sid or sub: %+v", c)
		}
		switch c.TokenType {
		case TokenAuth, TokenAccess, TokenPasswordUpdate:
		default:
			t.Fatalf("accepted a token of type %q", c.TokenType)
		}
		if c.Issuer != fuzzIssuer || c.ExpiresAt == nil || !e.now.Before(c.ExpiresAt.Add(tokenLeeway)) {
			t.Fatalf("accepted a token with iss %q exp %v", c.Issuer, c.ExpiresAt)
		}
		i := strings.LastIndexByte(token, '.')
		if i < 0 || !e.issued[token[:i]] {
			t.Fatalf("accepted a token whose header and payload no key of ours signed: %q", token)
		}
		if reason := fuzzHeaderRefusal(token); reason != "" {
			t.Fatalf("accepted a token whose header %s: %q", reason, token)
		}
		again, err := e.tokens.Verify(token)
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("verifying again gave %+v, %v; first %+v", again, err, c)
		}
		// The cached answer is the answer a fresh verifier gives.
		first, err := fresh.Verify(token)
		if err != nil || !reflect.DeepEqual(first, c) {
			t.Fatalf("a fresh verifier gave %+v, %v; cached %+v", first, err, c)
		}
	})
}

// fuzzHeaderRefusal says why the header of a token must be refused for
// its crit or typ (SPEC §7), or "".
func fuzzHeaderRefusal(token string) string {
	seg, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return ""
	}
	var h map[string]any
	if json.Unmarshal(raw, &h) != nil {
		return ""
	}
	if _, ok := h["crit"]; ok {
		return "has crit"
	}
	if typ, ok := h["typ"]; ok {
		s, _ := typ.(string)
		if !strings.EqualFold(s, "JWT") && !strings.EqualFold(s, "application/jwt") {
			return "has a typ other than JWT"
		}
	}
	return ""
}
