package authcore

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Password hash schemes.
const (
	SchemeBcrypt   = "bcrypt"
	SchemeArgon2id = "argon2id"
)

// HashParams are a password hash's scheme and cost: what checking a
// password against it costs. Two hashes with equal HashParams cost the
// same to check.
type HashParams struct {
	Scheme string
	// Cost is bcrypt's cost.
	Cost int
	// Memory (KiB), Time, Threads and KeyLen (bytes) are argon2id's.
	Memory  uint32
	Time    uint32
	Threads uint8
	KeyLen  uint32
}

// DefaultHashParams are those of new hashes: argon2id with OWASP's minimum
// (m=19456 KiB, t=2, p=1) and a 32-byte key.
var DefaultHashParams = HashParams{Scheme: SchemeArgon2id, Memory: 19456, Time: 2, Threads: 1, KeyLen: 32}

const argonSaltLen = 16

// String names the scheme and its cost, for logs and errors.
func (p HashParams) String() string {
	if p.Scheme == SchemeBcrypt {
		return fmt.Sprintf("bcrypt cost=%d", p.Cost)
	}
	return fmt.Sprintf("argon2id m=%d,t=%d,p=%d len=%d", p.Memory, p.Time, p.Threads, p.KeyLen)
}

// ParamsOf returns the scheme and cost of a bcrypt ($2a$, $2b$) or
// argon2id PHC hash.
func ParamsOf(hash string) (HashParams, error) {
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"):
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return HashParams{}, fmt.Errorf("bcrypt hash: %w", err)
		}
		return HashParams{Scheme: SchemeBcrypt, Cost: cost}, nil
	case strings.HasPrefix(hash, "$argon2id$"):
		p, _, _, err := parseArgon2id(hash)
		return p, err
	}
	return HashParams{}, errHashFormat
}

// HashPassword returns an argon2id PHC string for password, with
// DefaultHashParams.
func HashPassword(password string) (string, error) {
	return DefaultHasher.Hash(password, DefaultHashParams)
}

var errHashFormat = errors.New("not a bcrypt ($2a$, $2b$) or argon2id PHC hash")

// CheckHashFormat reports whether hash is a password hash authgate can verify.
func CheckHashFormat(hash string) error {
	_, err := ParamsOf(hash)
	return err
}

func parseArgon2id(hash string) (HashParams, []byte, []byte, error) {
	p := HashParams{Scheme: SchemeArgon2id}
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 {
		return p, nil, nil, errors.New("argon2id hash: want $argon2id$v=19$m=..,t=..,p=..$salt$hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errors.New("argon2id hash: unsupported version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, errors.New("argon2id hash: bad parameters")
	}
	if p.Memory < 8*uint32(p.Threads) || p.Memory > 4<<20 || p.Time < 1 || p.Time > 64 || p.Threads < 1 {
		return p, nil, nil, errors.New("argon2id hash: parameters out of range")
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, errors.New("argon2id hash: bad salt")
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 128 {
		return p, nil, nil, errors.New("argon2id hash: bad key")
	}
	p.KeyLen = uint32(len(key))
	return p, salt, key, nil
}

// VerifyPassword reports whether password matches hash, in constant time
// with respect to the password.
func VerifyPassword(hash, password string) bool { return DefaultHasher.Verify(hash, password) }

// Hasher does password-hash work: the core does all of its through one,
// so that tests can count the work and its cost.
type Hasher interface {
	// Verify reports whether password matches hash (bcrypt or argon2id
	// PHC), in constant time with respect to the password.
	Verify(hash, password string) bool
	// Hash returns a new hash of password made with p.
	Hash(password string, p HashParams) (string, error)
}

// DefaultHasher is the Hasher of golang.org/x/crypto's bcrypt and argon2.
var DefaultHasher Hasher = cryptoHasher{}

type cryptoHasher struct{}

func (cryptoHasher) Verify(hash, password string) bool {
	if strings.HasPrefix(hash, "$argon2id$") {
		p, salt, key, err := parseArgon2id(hash)
		if err != nil {
			return false
		}
		got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
		return subtle.ConstantTimeCompare(got, key) == 1
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

func (cryptoHasher) Hash(password string, p HashParams) (string, error) {
	if p.Scheme == SchemeBcrypt {
		h, err := bcrypt.GenerateFromPassword([]byte(password), p.Cost)
		return string(h), err
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// DummyHashLike returns a hash of a random password made with the same
// scheme and cost as hash (DefaultHashParams when hash is none): a valid
// hash that no password matches.
func DummyHashLike(hash string) string {
	p, err := ParamsOf(hash)
	if err != nil {
		p = DefaultHashParams
	}
	h, _ := dummyHash(DefaultHasher, p)
	return h
}

func dummyHash(h Hasher, p HashParams) (string, error) {
	secret := make([]byte, 18)
	_, _ = rand.Read(secret)
	return h.Hash(base64.RawStdEncoding.EncodeToString(secret), p)
}

// PasswordHashes hashes and checks passwords so that a check costs the same
// whichever hash it is against, or none (an unknown user).
//
// It knows a set of parameter sets: DefaultHashParams (or those of new
// hashes), those of every hash it was told of (the users file's) and any
// it has met since (a stored user's). It keeps a dummy hash of each. A
// check verifies the real hash and, for every other known parameter set,
// the dummy of it: one hash computation per known parameter set, whoever
// is named. Users whose hashes are not the default are rehashed at their
// next login, but a users file keeps its own hashes, so their parameter
// sets stay in the work of every check until the file changes.
type PasswordHashes struct {
	hasher Hasher
	params HashParams

	mu      sync.RWMutex
	dummies []paramsDummy // sorted by params
}

type paramsDummy struct {
	params HashParams
	hash   string
}

// NewPasswordHashes returns PasswordHashes that makes new hashes with params
// (DefaultHashParams when zero) through hasher (DefaultHasher when nil),
// and whose checks cost one hash of each of params and known.
func NewPasswordHashes(hasher Hasher, params HashParams, known ...HashParams) (*PasswordHashes, error) {
	if hasher == nil {
		hasher = DefaultHasher
	}
	if params == (HashParams{}) {
		params = DefaultHashParams
	}
	p := &PasswordHashes{hasher: hasher, params: params}
	for _, q := range append([]HashParams{params}, known...) {
		if err := p.learn(q); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// learn adds q to the known parameter sets, making its dummy hash.
func (p *PasswordHashes) learn(q HashParams) error {
	p.mu.RLock()
	_, known := p.find(q)
	p.mu.RUnlock()
	if known {
		return nil
	}
	dummy, err := dummyHash(p.hasher, q)
	if err != nil {
		return fmt.Errorf("making a dummy %s hash: %w", q, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if i, known := p.find(q); !known {
		// A new slice: checks under way keep iterating the one they read.
		p.dummies = slices.Insert(slices.Clone(p.dummies), i, paramsDummy{q, dummy})
	}
	return nil
}

func (p *PasswordHashes) find(q HashParams) (int, bool) {
	return slices.BinarySearchFunc(p.dummies, q, func(d paramsDummy, q HashParams) int {
		return cmp.Compare(d.params.String(), q.String())
	})
}

// Check reports whether password matches hash ("" for no user: never),
// after one hash computation per known parameter set, whatever hash is.
// A hash whose parameters are new to it joins the known sets first, so
// from then on every check pays for it too.
func (p *PasswordHashes) Check(hash, password string) bool {
	q, err := ParamsOf(hash)
	real := err == nil
	if real {
		if p.learn(q) != nil {
			real = false
		}
	}
	p.mu.RLock()
	dummies := p.dummies
	p.mu.RUnlock()
	ok := false
	for _, d := range dummies {
		if real && d.params == q {
			ok = p.hasher.Verify(hash, password)
		} else {
			p.hasher.Verify(d.hash, password)
		}
	}
	return ok
}

// Verify reports whether password matches hash: one hash computation, for
// checks whose cost tells nothing (a password history).
func (p *PasswordHashes) Verify(hash, password string) bool { return p.hasher.Verify(hash, password) }

// Hash returns a new hash of password with the parameters of new hashes.
func (p *PasswordHashes) Hash(password string) (string, error) {
	return p.hasher.Hash(password, p.params)
}

// Current reports whether hash was made with the parameters of new hashes.
func (p *PasswordHashes) Current(hash string) bool {
	q, err := ParamsOf(hash)
	return err == nil && q == p.params
}

// hashDigest names a password hash without repeating it.
func hashDigest(hash string) string {
	sum := sha256.Sum256([]byte(hash))
	return base64.RawStdEncoding.EncodeToString(sum[:16])
}
