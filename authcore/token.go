package authcore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/authcore/internal/arena"
)

// Token types (claim token_type).
const (
	TokenAuth           = "AUTH"
	TokenAccess         = "ACCESS"
	TokenPasswordUpdate = "PASSWORD_UPDATE"
)

// Claims are the claims of every authgate token.
type Claims struct {
	jwt.RegisteredClaims
	SessionID       string      `json:"sid"`
	TokenType       string      `json:"token_type"`
	CredentialsType string      `json:"credentials_type"`
	Identity        IdentityRef `json:"identity"`
	AMR             []string    `json:"amr"`
	AuthTime        int64       `json:"auth_time"`
}

// Key is a token signing key with its pinned algorithm and key id.
type Key struct {
	// ID is the kid header of tokens signed with the key.
	ID string
	// Alg is the only algorithm tokens of this key may name.
	Alg     string
	method  jwt.SigningMethod
	private any
	public  any
}

// MinHMACKeyLen is the shortest HS256 key authgate accepts.
const MinHMACKeyLen = 32

// NewHMACKey returns an HS256 key. Keys under 32 bytes are refused.
func NewHMACKey(secret []byte) (*Key, error) {
	if len(secret) < MinHMACKeyLen {
		return nil, fmt.Errorf("HS256 signing key is %d bytes, needs at least %d", len(secret), MinHMACKeyLen)
	}
	// The kid is derived from the key by a one-way function with a label,
	// so it names the key without revealing anything usable about it.
	sum := sha256.Sum256(append([]byte("authgate kid\x00"), secret...))
	return &Key{
		ID: "hs-" + base64.RawURLEncoding.EncodeToString(sum[:9]), Alg: "HS256",
		method: jwt.SigningMethodHS256, private: secret, public: secret,
	}, nil
}

// NewEphemeralKey returns a fresh Ed25519 key that lives only in memory.
func NewEphemeralKey() *Key {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	k, _ := keyFromSigner(priv)
	return k
}

// ParsePrivateKeyPEM reads an Ed25519 or P-256 private key (PKCS#8, or SEC 1
// "EC PRIVATE KEY" for P-256).
func ParsePrivateKeyPEM(data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q: want PRIVATE KEY or EC PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("unsupported private key type")
	}
	return keyFromSigner(signer)
}

func keyFromSigner(signer crypto.Signer) (*Key, error) {
	k := &Key{private: signer, public: signer.Public()}
	switch pub := signer.Public().(type) {
	case ed25519.PublicKey:
		k.Alg, k.method = "EdDSA", jwt.SigningMethodEdDSA
		k.ID = thumbprint(map[string]string{"crv": "Ed25519", "kty": "OKP", "x": b64(pub)})
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, errors.New("only the P-256 curve is supported for ECDSA keys")
		}
		k.Alg, k.method = "ES256", jwt.SigningMethodES256
		x, y := ecCoordinates(pub)
		k.ID = thumbprint(map[string]string{"crv": "P-256", "kty": "EC", "x": b64(x), "y": b64(y)})
	default:
		return nil, fmt.Errorf("unsupported key type %T: want Ed25519 or P-256", pub)
	}
	return k, nil
}

func ecCoordinates(pub *ecdsa.PublicKey) (x, y []byte) {
	raw, _ := pub.Bytes() // uncompressed point: 0x04 || X || Y
	n := (len(raw) - 1) / 2
	return raw[1 : 1+n], raw[1+n:]
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// thumbprint is the RFC 7638 JWK thumbprint; encoding/json sorts map keys,
// which is the canonical member order the RFC asks for.
func thumbprint(members map[string]string) string {
	data, _ := json.Marshal(members)
	sum := sha256.Sum256(data)
	return b64(sum[:])
}

// JWK returns the public JSON Web Key of an asymmetric key, or nil for HS256.
func (k *Key) JWK() map[string]string {
	base := map[string]string{"kid": k.ID, "alg": k.Alg, "use": "sig"}
	switch pub := k.public.(type) {
	case ed25519.PublicKey:
		base["kty"], base["crv"], base["x"] = "OKP", "Ed25519", b64(pub)
	case *ecdsa.PublicKey:
		x, y := ecCoordinates(pub)
		base["kty"], base["crv"], base["x"], base["y"] = "EC", "P-256", b64(x), b64(y)
	default:
		return nil
	}
	return base
}

// Tokens issues and verifies JWTs. New tokens are signed with the current
// key; tokens of any of the verification keys are accepted, each only with
// its own algorithm.
type Tokens struct {
	issuer  string
	current *Key
	byID    map[string]*Key
	parser  *jwt.Parser
	now     func() time.Time
	cache   verifiedCache
}

// NewTokens returns a token issuer/verifier. now is the clock used for
// validation; extra keys are accepted for verification only.
func NewTokens(issuer string, current *Key, now func() time.Time, verifyOnly ...*Key) *Tokens {
	t := &Tokens{issuer: issuer, current: current, byID: map[string]*Key{current.ID: current}, now: now}
	algs := []string{current.Alg}
	for _, k := range verifyOnly {
		t.byID[k.ID] = k
		algs = append(algs, k.Alg)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
		jwt.WithLeeway(tokenLeeway),
	}
	if issuer != "" {
		opts = append(opts, jwt.WithIssuer(issuer))
	}
	t.parser = jwt.NewParser(opts...)
	return t
}

// Issue signs c with the current key, filling in iss and jti.
func (t *Tokens) Issue(c *Claims) (string, error) {
	c.Issuer = t.issuer
	c.ID = newID()
	tok := jwt.NewWithClaims(t.current.method, c)
	tok.Header["kid"] = t.current.ID
	return tok.SignedString(t.current.private)
}

// ErrInvalidToken is returned for any token that does not verify: bad
// signature, wrong or unknown algorithm or key, expired, wrong issuer,
// malformed. The cause is wrapped for logs; the client never sees it.
var ErrInvalidToken = errors.New("invalid token")

// Verify checks the token's signature, algorithm, key and time claims and
// returns its claims, the caller's own to keep or change. It does not
// consult the store. A token that verified before is recognised by its
// exact text and only its time claims are checked again: the signature
// check and JSON decoding are most of a guarded request's cost.
func (t *Tokens) Verify(token string) (*Claims, error) {
	if v, ok := t.cache.get(token); ok {
		c := v.claims()
		if err := t.checkTimes(c); err != nil {
			return nil, err
		}
		return c, nil
	}
	c := new(Claims)
	_, err := t.parser.ParseWithClaims(token, c, t.keyFor)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.SessionID == "" || c.Subject == "" {
		return nil, fmt.Errorf("%w: missing sid or sub", ErrInvalidToken)
	}
	switch c.TokenType {
	case TokenAuth, TokenAccess, TokenPasswordUpdate:
	default:
		return nil, fmt.Errorf("%w: unknown token_type", ErrInvalidToken)
	}
	if v, ok := keepClaims(c); ok {
		t.cache.put(token, v)
	}
	return c, nil
}

// keptClaims is a verified token's claims as the cache keeps them: every
// string in one, the dates as numbers, no other pointer. A cache of
// 100 000 tokens held as decoded claims (some fifteen small objects each)
// made the garbage collector's marking, which visits every live object
// each cycle, several percent of a busy gateway's CPU; each hit now builds
// its claims in one allocation instead.
type keptClaims struct {
	text string
	keptShape
}

// keptShape is the rest of keptClaims, without a pointer: the cache keeps
// it in a map the garbage collector need not scan.
type keptShape struct {
	// ends are the end offsets in text of the strings stringsOf lists,
	// then of the amr values and the audience values.
	ends       [keptEnds]uint16
	nAMR, nAud uint8
	nilAMR     bool
	dates      [3]keptTime // as datesOf lists them
	authTime   int64
}

// keptTime is a date as Unix seconds and nanoseconds; set is false for a
// date the claims do not have.
type keptTime struct {
	sec  int64
	nsec int32
	set  bool
}

const (
	keptFixed = len(claimStrings{})
	keptEnds  = keptFixed + 8 // room for the amr and aud values together
)

// claimStrings are the single-valued string claims.
type claimStrings [8]*string

// stringsOf and datesOf list c's single-valued string and date claims, in
// the order the kept form stores them: keepClaims reads them through these
// lists and claims writes them, so the two cannot disagree.
func stringsOf(c *Claims) claimStrings {
	return claimStrings{&c.Issuer, &c.Subject, &c.ID, &c.SessionID, &c.TokenType, &c.CredentialsType,
		&c.Identity.Type, &c.Identity.ID}
}

func datesOf(c *Claims) [3]**jwt.NumericDate {
	return [3]**jwt.NumericDate{&c.ExpiresAt, &c.NotBefore, &c.IssuedAt}
}

// keepClaims returns c as the cache keeps it, or false for claims that do
// not fit (more than eight amr and aud values, or 64 KiB of text), which
// are then verified each time.
func keepClaims(c *Claims) (keptClaims, bool) {
	var k keptClaims
	if len(c.AMR)+len(c.Audience) > keptEnds-keptFixed {
		return k, false
	}
	strs := make([]string, 0, keptEnds)
	for _, f := range stringsOf(c) {
		strs = append(strs, *f)
	}
	strs = append(append(strs, c.AMR...), c.Audience...)
	n := 0
	for i, v := range strs {
		n += len(v)
		if n > 0xffff {
			return k, false
		}
		k.ends[i] = uint16(n)
	}
	var b strings.Builder
	b.Grow(n)
	for _, v := range strs {
		b.WriteString(v)
	}
	k.text = b.String()
	k.nAMR, k.nAud, k.nilAMR = uint8(len(c.AMR)), uint8(len(c.Audience)), c.AMR == nil
	for i, d := range datesOf(c) {
		if *d != nil {
			k.dates[i] = keptTime{(*d).Unix(), int32((*d).Nanosecond()), true}
		}
	}
	k.authTime = c.AuthTime
	return k, true
}

// builtClaims holds the claims a cache hit builds, with their dates and
// amr, in one allocation.
type builtClaims struct {
	Claims
	dates [3]jwt.NumericDate
	amr   [2]string
}

// claims builds the kept claims: their strings share k.text, the rest is
// one new object, the caller's to keep.
func (k *keptClaims) claims() *Claims {
	b := new(builtClaims)
	c := &b.Claims
	at, i := 0, 0
	next := func() string {
		from := at
		at = int(k.ends[i])
		i++
		return k.text[from:at]
	}
	for _, f := range stringsOf(c) {
		*f = next()
	}
	if !k.nilAMR {
		if int(k.nAMR) <= len(b.amr) {
			c.AMR = b.amr[:k.nAMR:k.nAMR]
		} else {
			c.AMR = make([]string, k.nAMR)
		}
		for j := range c.AMR {
			c.AMR[j] = next()
		}
	}
	if k.nAud > 0 {
		c.Audience = make(jwt.ClaimStrings, k.nAud)
		for j := range c.Audience {
			c.Audience[j] = next()
		}
	}
	for j, d := range datesOf(c) {
		if t := k.dates[j]; t.set {
			b.dates[j].Time = time.Unix(t.sec, int64(t.nsec))
			*d = &b.dates[j]
		}
	}
	c.AuthTime = k.authTime
	return c
}

// checkTimes re-checks exp and nbf of a cached token, with the parser's
// leeway.
func (t *Tokens) checkTimes(c *Claims) error {
	now := t.now()
	if !now.Before(c.ExpiresAt.Add(tokenLeeway)) {
		return fmt.Errorf("%w: %w", ErrInvalidToken, jwt.ErrTokenExpired)
	}
	if c.NotBefore != nil && now.Add(tokenLeeway).Before(c.NotBefore.Time) {
		return fmt.Errorf("%w: %w", ErrInvalidToken, jwt.ErrTokenNotValidYet)
	}
	return nil
}

// tokenLeeway is the clock skew allowed on exp, nbf and iat.
const tokenLeeway = 5 * time.Second

// verifiedCacheSize bounds each generation of the verified-token cache.
const verifiedCacheSize = 1 << 16

// verifiedCache remembers recently verified tokens in two generations: a
// hit in the older one moves the token to the current one, and a full
// current generation becomes the older one (dropping the oldest), so hot
// tokens stay and the cache stays bounded.
//
// Its generations are arena.Gen: a map from a seeded hash of the token to
// the claims' shape, and one byte array with the token's text and the
// claims' strings, neither holding a pointer, so the collector skips both
// whatever they hold. (Keyed by the token's string, with a string in each
// entry, a cache of 100 000 tokens kept every request header they came in
// and made the collector's marking tens of milliseconds per cycle on a
// node that holds them: a tail-latency cost at one connection.) A hit
// copies the claims' strings out, one allocation.
type verifiedCache struct {
	mu       sync.RWMutex
	cur, old arena.Gen[keptShape]
}

// tokenSeed seeds the cache's hash: random per process, so nobody can
// choose tokens that collide in it. A collision would only cost a
// verification anyway: an entry is used only for its own token's text.
var tokenSeed = maphash.MakeSeed()

// find looks token up in g and returns its claims, their strings copied
// out.
func find(g *arena.Gen[keptShape], h uint64, token string) (keptClaims, bool) {
	text, shape, ok := g.Lookup(h, token)
	if !ok {
		return keptClaims{}, false
	}
	return keptClaims{text: string(text), keptShape: shape}, true
}

func (v *verifiedCache) get(token string) (keptClaims, bool) {
	h := maphash.String(tokenSeed, token)
	v.mu.RLock()
	k, ok := find(&v.cur, h, token)
	old := false
	if !ok {
		k, ok = find(&v.old, h, token)
		old = ok
	}
	v.mu.RUnlock()
	if old {
		v.put(token, k) // promote: only hits in the older generation write
	}
	return k, ok
}

// maxCachedToken bounds the text of a token the cache keeps. authgate's
// tokens are well under 1 KiB; only they verify, so this only keeps a
// generation's offsets small whatever a configuration's claims grow to.
const maxCachedToken = 16 << 10

func (v *verifiedCache) put(token string, k keptClaims) {
	if len(token) > maxCachedToken {
		return
	}
	h := maphash.String(tokenSeed, token)
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, _, ok := v.cur.Lookup(h, token); ok {
		return
	}
	if v.cur.Len() >= verifiedCacheSize {
		v.old, v.cur = v.cur, arena.Gen[keptShape]{}
	}
	arena.Add(&v.cur, h, token, k.text, k.keptShape)
}

func (t *Tokens) keyFor(tok *jwt.Token) (any, error) {
	// RFC 7515 §4.1.11: a recipient must refuse a token whose crit names an
	// extension it does not implement, and authgate implements none; an
	// empty or malformed crit is invalid anyway.
	if _, ok := tok.Header["crit"]; ok {
		return nil, errors.New("crit header: no extension is supported")
	}
	if typ, ok := tok.Header["typ"]; ok && !isJWTType(typ) {
		return nil, errors.New("typ header is not JWT")
	}
	kid, _ := tok.Header["kid"].(string)
	k, ok := t.byID[kid]
	if !ok {
		return nil, errors.New("unknown kid")
	}
	if tok.Method.Alg() != k.Alg {
		return nil, errors.New("algorithm does not match the key")
	}
	return k.public, nil
}

// isJWTType reports whether a typ header names a plain JWT. RFC 7519 §5.1
// recommends "JWT" and makes typ optional (absent is accepted); media type
// names are case-insensitive, and RFC 7515 §4.1.9 reads a typ without "/"
// as if "application/" were prepended, so "jwt" and "application/jwt" are
// the same type. Anything else, such as "at+jwt" (RFC 9068) or "JOSE",
// is another kind of token and is refused.
func isJWTType(typ any) bool {
	s, ok := typ.(string)
	return ok && (strings.EqualFold(s, "JWT") || strings.EqualFold(s, "application/jwt"))
}

// JWKS returns the JSON Web Key Set of the verification keys, and false
// when there is none to publish (HS256 keys are secret).
func (t *Tokens) JWKS() ([]byte, bool) {
	keys := []map[string]string{}
	if jwk := t.current.JWK(); jwk != nil {
		keys = append(keys, jwk)
	}
	for id, k := range t.byID {
		if id == t.current.ID {
			continue
		}
		if jwk := k.JWK(); jwk != nil {
			keys = append(keys, jwk)
		}
	}
	if len(keys) == 0 {
		return nil, false
	}
	data, _ := json.Marshal(map[string]any{"keys": keys})
	return data, true
}

func jwtTime(t time.Time) *jwt.NumericDate { return jwt.NewNumericDate(t) }

// Derive returns a 32-byte secret derived from the key's private material
// and label, so that secrets every node must share (such as the key of
// stored code hashes) follow the signing key without more configuration.
func (k *Key) Derive(label string) []byte {
	var material []byte
	switch priv := k.private.(type) {
	case []byte:
		material = priv
	case ed25519.PrivateKey:
		material = priv.Seed()
	case *ecdsa.PrivateKey:
		material, _ = priv.Bytes()
	}
	m := hmac.New(sha256.New, material)
	m.Write([]byte("authgate derive\x00" + label))
	return m.Sum(nil)
}
