package authcore

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"hash/maphash"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/authcore/internal/arena"
)

func testClaims(now time.Time) *Claims {
	c := &Claims{SessionID: "sid1", TokenType: TokenAccess, CredentialsType: CredentialsRoot,
		Identity: IdentityRef{Type: IdentityConsumer, ID: "2001"}, AMR: []string{"pwd"}, AuthTime: now.Unix()}
	c.Subject = "1001"
	c.IssuedAt = jwtTime(now)
	c.NotBefore = jwtTime(now)
	c.ExpiresAt = jwtTime(now.Add(time.Hour))
	return c
}

func mustHMAC(t *testing.T, b byte) *Key {
	t.Helper()
	k, err := NewHMACKey([]byte(strings.Repeat(string(b), 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHMACKeyUnder32BytesIsRefused(t *testing.T) {
	if _, err := NewHMACKey(make([]byte, 31)); err == nil {
		t.Fatal("a 31-byte HS256 key was accepted")
	}
}

func TestTokenRoundTripForEachAlgorithm(t *testing.T) {
	now := time.Now()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edPriv)
	ecDER, _ := x509.MarshalECPrivateKey(ecPriv)
	edKey, err := ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER}))
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*Key{mustHMAC(t, 'a'), edKey, ecKey, NewEphemeralKey()} {
		t.Run(k.Alg, func(t *testing.T) {
			tokens := NewTokens("iss", k, func() time.Time { return now })
			tok, err := tokens.Issue(testClaims(now))
			if err != nil {
				t.Fatal(err)
			}
			c, err := tokens.Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "1001" || c.SessionID != "sid1" || c.Issuer != "iss" || c.ID == "" || c.Identity.ID != "2001" {
				t.Fatalf("claims did not round-trip: %+v", c)
			}
			hdr := decodeSegment(t, tok, 0)
			if !strings.Contains(hdr, `"kid":"`+k.ID+`"`) || !strings.Contains(hdr, `"alg":"`+k.Alg+`"`) {
				t.Fatalf("header %s lacks kid %s / alg %s", hdr, k.ID, k.Alg)
			}
			_, published := tokens.JWKS()
			if published != (k.Alg != "HS256") {
				t.Fatalf("JWKS published=%v for %s", published, k.Alg)
			}
		})
	}
}

func decodeSegment(t *testing.T, tok string, i int) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBadTokensAreRejected(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	key := mustHMAC(t, 'a')
	tokens := NewTokens("https://auth.example.com", key, clock)
	good, _ := tokens.Issue(testClaims(now))
	edKey := NewEphemeralKey()

	withIss := func(c *Claims, iss string) *Claims { c.Issuer = iss; return c }
	signWithHeader := func(method jwt.SigningMethod, kid string, signKey any, c *Claims, header map[string]any) string {
		tok := jwt.NewWithClaims(method, c)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		for k, v := range header {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(signKey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sign := func(method jwt.SigningMethod, kid string, signKey any, c *Claims) string {
		return signWithHeader(method, kid, signKey, c, nil)
	}
	// signedWith is a token signed with the right key and algorithm whose
	// header also carries header.
	signedWith := func(header map[string]any) string {
		return signWithHeader(jwt.SigningMethodHS256, key.ID, key.private, withIss(testClaims(now), "https://auth.example.com"), header)
	}
	parts := strings.Split(good, ".")
	tamperedPayload := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(decodeSegment(t, good, 1), `"1001"`, `"1002"`, 1)))

	expired := testClaims(now.Add(-2 * time.Hour))
	cases := map[string]string{
		"tampered payload": parts[0] + "." + tamperedPayload + "." + parts[2],
		"tampered signature": parts[0] + "." + parts[1] + "." + strings.Map(func(r rune) rune {
			if r == 'A' {
				return 'B'
			}
			return 'A'
		}, parts[2]),
		"alg none":            sign(jwt.SigningMethodNone, key.ID, jwt.UnsafeAllowNoneSignatureType, withIss(testClaims(now), "https://auth.example.com")),
		"other HMAC key":      sign(jwt.SigningMethodHS256, key.ID, []byte(strings.Repeat("b", 32)), withIss(testClaims(now), "https://auth.example.com")),
		"other alg, same kid": sign(jwt.SigningMethodEdDSA, key.ID, edKey.private, withIss(testClaims(now), "https://auth.example.com")),
		"unknown kid":         sign(jwt.SigningMethodHS256, "nope", key.private, withIss(testClaims(now), "https://auth.example.com")),
		"no kid":              sign(jwt.SigningMethodHS256, "", key.private, withIss(testClaims(now), "https://auth.example.com")),
		"expired":             sign(jwt.SigningMethodHS256, key.ID, key.private, withIss(expired, "https://auth.example.com")),
		"wrong issuer":        sign(jwt.SigningMethodHS256, key.ID, key.private, withIss(testClaims(now), "https://evil.example.com")),
		"not yet valid": sign(jwt.SigningMethodHS256, key.ID, key.private, func() *Claims {
			c := withIss(testClaims(now), "https://auth.example.com")
			c.NotBefore = jwtTime(now.Add(time.Hour))
			return c
		}()),
		"no exp": sign(jwt.SigningMethodHS256, key.ID, key.private, func() *Claims {
			c := withIss(testClaims(now), "https://auth.example.com")
			c.ExpiresAt = nil
			return c
		}()),
		"unknown token_type": sign(jwt.SigningMethodHS256, key.ID, key.private, func() *Claims {
			c := withIss(testClaims(now), "https://auth.example.com")
			c.TokenType = "ADMIN"
			return c
		}()),
		"crit with an unknown extension": signedWith(map[string]any{"crit": []string{"x-unknown"}, "x-unknown": true}),
		"crit naming a registered claim": signedWith(map[string]any{"crit": []string{"exp"}}),
		"crit empty":                     signedWith(map[string]any{"crit": []string{}}),
		"crit null":                      signedWith(map[string]any{"crit": nil}),
		"crit not a list":                signedWith(map[string]any{"crit": "x-unknown"}),
		"typ at+jwt":                     signedWith(map[string]any{"typ": "at+jwt"}),
		"typ application/at+jwt":         signedWith(map[string]any{"typ": "application/at+jwt"}),
		"typ JOSE":                       signedWith(map[string]any{"typ": "JOSE"}),
		"typ JWS":                        signedWith(map[string]any{"typ": "JWS"}),
		"typ empty":                      signedWith(map[string]any{"typ": ""}),
		"typ JWT with spaces":            signedWith(map[string]any{"typ": " JWT "}),
		"typ not a string":               signedWith(map[string]any{"typ": 1}),
		"typ null":                       signedWith(map[string]any{"typ": nil}),
		"typ a list":                     signedWith(map[string]any{"typ": []string{"JWT"}}),
		"garbage":                        "not.a.token",
		"empty":                          "",
		"two segments":                   parts[0] + "." + parts[1],
	}
	if _, err := tokens.Verify(good); err != nil {
		t.Fatalf("the good token failed: %v", err)
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := tokens.Verify(tok)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
}

// TestTypJWTOrAbsentIsAccepted: RFC 7519 §5.1 makes typ optional and
// recommends "JWT"; media types are case-insensitive and "application/"
// may be omitted (RFC 7515 §4.1.9).
func TestTypJWTOrAbsentIsAccepted(t *testing.T) {
	now := time.Now()
	key := mustHMAC(t, 'a')
	tokens := NewTokens("i", key, func() time.Time { return now })
	for _, typ := range []any{nil, "JWT", "jwt", "Jwt", "application/jwt", "APPLICATION/JWT"} {
		c := testClaims(now)
		c.Issuer = "i"
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
		tok.Header["kid"] = key.ID
		if typ == nil {
			delete(tok.Header, "typ")
		} else {
			tok.Header["typ"] = typ
		}
		s, err := tok.SignedString(key.private)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tokens.Verify(s); err != nil {
			t.Errorf("typ %v: %v, want it accepted", typ, err)
		}
	}
}

func TestVerifyOnlyKeysAreAcceptedButNotUsedToSign(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	old, cur := mustHMAC(t, 'o'), NewEphemeralKey()
	oldTok, _ := NewTokens("i", old, clock).Issue(testClaims(now))
	tokens := NewTokens("i", cur, clock, old)
	if _, err := tokens.Verify(oldTok); err != nil {
		t.Fatalf("token of the previous key: %v", err)
	}
	newTok, _ := tokens.Issue(testClaims(now))
	if !strings.Contains(decodeSegment(t, newTok, 0), cur.ID) {
		t.Fatal("new tokens are not signed with the current key")
	}
}

func TestCachedTokensStillExpire(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	tokens := NewTokens("i", mustHMAC(t, 'a'), clock)
	c := testClaims(now)
	c.ExpiresAt = jwtTime(now.Add(time.Minute))
	tok, _ := tokens.Issue(c)
	for i := 0; i < 2; i++ { // the second verify is served by the cache
		if _, err := tokens.Verify(tok); err != nil {
			t.Fatalf("verify %d: %v", i, err)
		}
	}
	now = now.Add(time.Minute + tokenLeeway)
	if _, err := tokens.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("cached token after exp: %v, want ErrInvalidToken", err)
	}
}

func TestCachedTokenIsNotYetValidBeforeNbf(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	tokens := NewTokens("i", mustHMAC(t, 'a'), clock)
	c := testClaims(now)
	tok, _ := tokens.Issue(c)
	if _, err := tokens.Verify(tok); err != nil {
		t.Fatal(err)
	}
	now = now.Add(-time.Minute) // the clock moved back: nbf is in the future
	if _, err := tokens.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("cached token before nbf: %v, want ErrInvalidToken", err)
	}
}

func TestVerifiedCacheKeepsHotEntriesAndStaysBounded(t *testing.T) {
	var v verifiedCache
	hot := keptClaims{text: "hot"}
	v.put("hot", hot)
	for i := 0; i < 3*verifiedCacheSize; i++ {
		v.put(strconv.Itoa(i), keptClaims{})
		if i%1000 == 0 {
			if c, ok := v.get("hot"); !ok || c != hot {
				t.Fatalf("hot entry lost after %d puts", i)
			}
		}
	}
	if n := v.cur.Len() + v.old.Len(); n > 2*verifiedCacheSize {
		t.Fatalf("cache holds %d entries, bound is %d", n, 2*verifiedCacheSize)
	}
	if _, ok := v.get("5"); ok {
		t.Fatal("a cold entry survived two generations")
	}
}

// The cache finds a token by a hash of its text, and an entry is only ever
// used for the very text it was kept for: one filed under another token's
// hash, as a collision would, is a miss, and so is a token that is a
// prefix of a kept one.
func TestVerifiedCacheMatchesTheWholeToken(t *testing.T) {
	var v verifiedCache
	a := keptClaims{text: "claims-of-a"}
	v.put("token-a", a)
	if got, ok := v.get("token-a"); !ok || got != a {
		t.Fatalf("a kept token: %+v, %v", got, ok)
	}
	// token-a's entry filed under token-b's hash, and under token's in the
	// older generation, as collisions would file it.
	v.mu.Lock()
	arena.Add(&v.cur, maphash.String(tokenSeed, "token-b"), "token-a", a.text, a.keptShape)
	arena.Add(&v.old, maphash.String(tokenSeed, "token"), "token-a", a.text, a.keptShape)
	v.mu.Unlock()
	for _, other := range []string{"token-b", "token"} {
		if _, ok := v.get(other); ok {
			t.Fatalf("%q got the entry of another token", other)
		}
	}
	long := strings.Repeat("x", maxCachedToken+1)
	v.put(long, a)
	if _, ok := v.get(long); ok {
		t.Fatal("a token longer than maxCachedToken was kept")
	}
}

func TestKeptClaimsBuildTheVerifiedOnes(t *testing.T) {
	now := time.Unix(1796230000, 0)
	for _, amr := range [][]string{nil, {}, {"pwd"}, {"pwd", "otp"}, {"pwd", "hwk", "otp"}} {
		c := &Claims{SessionID: "sid-1", TokenType: TokenAccess, CredentialsType: "ROOT",
			Identity: IdentityRef{Type: "CONSUMER", ID: "2001"}, AMR: amr, AuthTime: now.Unix()}
		c.Issuer, c.Subject, c.ID = "authgate", "1001", "jti-1"
		c.ExpiresAt, c.IssuedAt = jwtTime(now.Add(time.Hour)), jwtTime(now.Add(-time.Second/4))
		if len(amr) == 2 {
			c.NotBefore = jwtTime(now)
			c.Audience = jwt.ClaimStrings{"backend", "other"}
		}
		k, ok := keepClaims(c)
		if !ok {
			t.Fatalf("amr %q: not kept", amr)
		}
		if got := k.claims(); !reflect.DeepEqual(got, c) {
			t.Fatalf("amr %q: built %+v, want %+v", amr, got, c)
		}
	}
	c := &Claims{AMR: make([]string, keptEnds-keptFixed+1)}
	if _, ok := keepClaims(c); ok {
		t.Fatal("claims with more amr values than the kept form holds were kept")
	}
}

func TestVerifiedTokenFromTheCacheHasTheSameClaims(t *testing.T) {
	key, err := NewHMACKey([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	tokens := NewTokens("authgate", key, time.Now)
	now := time.Now()
	c := &Claims{SessionID: "sid-1", TokenType: TokenAccess, CredentialsType: "ROOT",
		Identity: IdentityRef{Type: "CONSUMER", ID: "2001"}, AMR: []string{"pwd", "otp"}, AuthTime: now.Unix()}
	c.Subject, c.ExpiresAt, c.IssuedAt, c.NotBefore = "1001", jwtTime(now.Add(time.Hour)), jwtTime(now), jwtTime(now)
	tok, err := tokens.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	first, err := tokens.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tokens.cache.get(tok); !ok {
		t.Fatal("a verified token was not cached")
	}
	second, err := tokens.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("from the cache %+v, verified %+v", second, first)
	}
	second.Subject = "changed"
	if third, _ := tokens.Verify(tok); third.Subject != "1001" {
		t.Fatal("a caller's change to its claims reached the cache")
	}
}
