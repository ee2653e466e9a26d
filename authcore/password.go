package authcore

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Parameters of new argon2id hashes (OWASP's minimum for argon2id).
const (
	argonMemoryKiB = 19456
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

// HashPassword returns an argon2id PHC string for password.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return argonPHC(argonParams{argonMemoryKiB, argonTime, argonThreads}, salt, password), nil
}

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
}

func argonPHC(p argonParams, salt []byte, password string) string {
	key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

var errHashFormat = errors.New("not a bcrypt ($2a$, $2b$) or argon2id PHC hash")

// CheckHashFormat reports whether hash is a password hash authgate can verify.
func CheckHashFormat(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return fmt.Errorf("bcrypt hash: %w", err)
		}
		return nil
	case strings.HasPrefix(hash, "$argon2id$"):
		_, _, _, err := parseArgon2id(hash)
		return err
	}
	return errHashFormat
}

func parseArgon2id(hash string) (argonParams, []byte, []byte, error) {
	var p argonParams
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 {
		return p, nil, nil, errors.New("argon2id hash: want $argon2id$v=19$m=..,t=..,p=..$salt$hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errors.New("argon2id hash: unsupported version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, nil, nil, errors.New("argon2id hash: bad parameters")
	}
	if p.memory < 8*uint32(p.threads) || p.memory > 4<<20 || p.time < 1 || p.time > 64 || p.threads < 1 {
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
	return p, salt, key, nil
}

// VerifyPassword reports whether password matches hash, in constant time
// with respect to the password.
func VerifyPassword(hash, password string) bool {
	if strings.HasPrefix(hash, "$argon2id$") {
		p, salt, key, err := parseArgon2id(hash)
		if err != nil {
			return false
		}
		got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(key)))
		return subtle.ConstantTimeCompare(got, key) == 1
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// DummyHashLike returns a hash of a random password made with the same
// scheme and cost as hash, so that checking a password against it costs
// what checking against hash costs. Unknown users are verified against it.
func DummyHashLike(hash string) string {
	secret := make([]byte, 18)
	_, _ = rand.Read(secret)
	pw := base64.RawStdEncoding.EncodeToString(secret)
	if cost, err := bcrypt.Cost([]byte(hash)); err == nil {
		if h, err := bcrypt.GenerateFromPassword([]byte(pw), cost); err == nil {
			return string(h)
		}
	}
	p := argonParams{argonMemoryKiB, argonTime, argonThreads}
	if q, _, _, err := parseArgon2id(hash); err == nil {
		p = q
	}
	salt := make([]byte, argonSaltLen)
	_, _ = rand.Read(salt)
	return argonPHC(p, salt, pw)
}
