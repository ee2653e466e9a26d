package authcore

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Step-up methods recorded on a session.
const (
	StepUpOTP     = "otp"
	StepUpPush    = "push"
	StepUpPasskey = "passkey"
)

// Session is a login: every token of it is valid exactly as long as the
// session exists in the store. Step-up is a property of the session, so a
// token issued before step-up counts as stepped up afterwards.
type Session struct {
	ID              string
	CredentialsID   string
	CredentialsType string
	// Identity is the identity chosen at login (the user's first).
	Identity IdentityRef
	Created  time.Time
	// LastUsed is when the session was last written: at login, token issue
	// and step-up. The sliding idle window itself is the record's TTL.
	LastUsed time.Time
	// Expires is the absolute end of the session (Created + session_max).
	Expires time.Time
	// SteppedUp is when the session last stepped up; zero when it has not.
	SteppedUp    time.Time
	StepUpMethod string
	// PasswordUpdateOnly marks the session of an expired password: its
	// token (or, for a browser session, its cookie) is good only for
	// changing the password.
	PasswordUpdateOnly bool
	// Kind is how the session is used: KindAPI (bearer tokens) or
	// KindBrowser (the portal's cookie). Empty on sessions stored before
	// kinds were recorded, which are all API sessions.
	Kind string
	// SecretHash is the digest of a browser session's cookie secret
	// (Sessions.LoginBrowser); empty for API sessions.
	SecretHash string
	// ClientIP and UserAgent are the client's at login (UserAgent
	// shortened to MaxUserAgentLen printable ASCII bytes), for listings of
	// a user's sessions.
	ClientIP  string
	UserAgent string
}

// AuthMethods are the session's authentication methods (RFC 8176 amr:
// "pwd", then the step-up's method, a passkey as "hwk", proof of a
// hardware-secured key) and the time of the last authentication: the
// step-up, or the login.
func (s *Session) AuthMethods() (amr []string, authTime time.Time) {
	if s.SteppedUp.IsZero() {
		return []string{"pwd"}, s.Created
	}
	method := s.StepUpMethod
	if method == StepUpPasskey {
		method = "hwk"
	}
	return []string{"pwd", method}, s.SteppedUp
}

// Session kinds (Session.Kind).
const (
	KindAPI     = "api"
	KindBrowser = "browser"
)

// IsSteppedUp reports whether the session stepped up no longer than maxAge
// ago (any time, when maxAge is 0).
func (s *Session) IsSteppedUp(now time.Time, maxAge time.Duration) bool {
	if s.SteppedUp.IsZero() {
		return false
	}
	return maxAge <= 0 || now.Sub(s.SteppedUp) <= maxAge
}

// The stored form of a session is one line of fields separated by '|',
// led by a format version: compact (a typical session is under 100 bytes
// plus the client's address and user agent, well inside the 512-byte
// budget in Redis) and decoded without reflection, since the guard decodes
// a session on every request. Times are Unix milliseconds. No field may
// contain '|' but the user agent, which comes last and takes the rest of
// the line: ids are digits or base64url, the address is a parsed IP and
// the rest are fixed words, which MarshalSession checks. Format s1 (before
// kinds, addresses and user agents were recorded) is still read, so that
// sessions in the store survive an upgrade.
const (
	sessionFormat   = "s2"
	sessionFormatV1 = "s1"
)

// MarshalSession encodes s for a store. The id is the record's key and is
// not part of the value.
func MarshalSession(s *Session) ([]byte, error) {
	for _, f := range []string{s.CredentialsID, s.CredentialsType, s.Identity.Type, s.Identity.ID, s.StepUpMethod,
		s.Kind, s.SecretHash, s.ClientIP} {
		if strings.IndexByte(f, '|') >= 0 {
			return nil, errors.New("encoding session: a field contains '|'")
		}
	}
	b := make([]byte, 0, 128+len(s.UserAgent))
	b = append(b, sessionFormat...)
	for _, f := range []string{s.CredentialsID, s.CredentialsType, s.Identity.Type, s.Identity.ID} {
		b = append(b, '|')
		b = append(b, f...)
	}
	for _, t := range []time.Time{s.Created, s.LastUsed, s.Expires} {
		b = append(b, '|')
		b = strconv.AppendInt(b, t.UnixMilli(), 10)
	}
	b = append(b, '|')
	b = strconv.AppendInt(b, unixMilliOrZero(s.SteppedUp), 10)
	b = append(b, '|')
	b = append(b, s.StepUpMethod...)
	b = append(b, '|')
	b = strconv.AppendBool(b, s.PasswordUpdateOnly)
	for _, f := range []string{s.Kind, s.SecretHash, s.ClientIP, s.UserAgent} {
		b = append(b, '|')
		b = append(b, f...)
	}
	return b, nil
}

// UnmarshalSession decodes a stored session value.
func UnmarshalSession(id string, data []byte) (*Session, error) {
	rest := string(data)
	next := func() string {
		f, r, _ := strings.Cut(rest, "|")
		rest = r
		return f
	}
	millis := func() (int64, error) { return strconv.ParseInt(next(), 10, 64) }
	version := next()
	if version != sessionFormat && version != sessionFormatV1 {
		return nil, errors.New("decoding session: unknown format")
	}
	s := &Session{ID: id, CredentialsID: next(), CredentialsType: next()}
	s.Identity.Type, s.Identity.ID = next(), next()
	var times [4]int64
	for i := range times {
		v, err := millis()
		if err != nil {
			return nil, fmt.Errorf("decoding session: %w", err)
		}
		times[i] = v
	}
	s.Created, s.LastUsed, s.Expires = time.UnixMilli(times[0]), time.UnixMilli(times[1]), time.UnixMilli(times[2])
	if times[3] != 0 {
		s.SteppedUp = time.UnixMilli(times[3])
	}
	s.StepUpMethod = next()
	pu, err := strconv.ParseBool(next())
	if err != nil {
		return nil, errors.New("decoding session: malformed")
	}
	s.PasswordUpdateOnly = pu
	if version == sessionFormatV1 {
		if rest != "" {
			return nil, errors.New("decoding session: malformed")
		}
		return s, nil
	}
	if strings.Count(rest, "|") < 3 {
		return nil, errors.New("decoding session: malformed")
	}
	s.Kind, s.SecretHash, s.ClientIP = next(), next(), next()
	s.UserAgent = rest
	if s.Kind != "" && s.Kind != KindAPI && s.Kind != KindBrowser {
		return nil, errors.New("decoding session: unknown kind")
	}
	return s, nil
}

func unixMilliOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// newID returns a random URL-safe identifier with 128 bits of entropy.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
