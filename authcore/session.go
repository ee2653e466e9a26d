package authcore

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Step-up methods recorded on a session.
const (
	StepUpOTP  = "otp"
	StepUpPush = "push"
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
	// token is good only for /passwords/update.
	PasswordUpdateOnly bool
}

// IsSteppedUp reports whether the session stepped up no longer than maxAge
// ago (any time, when maxAge is 0).
func (s *Session) IsSteppedUp(now time.Time, maxAge time.Duration) bool {
	if s.SteppedUp.IsZero() {
		return false
	}
	return maxAge <= 0 || now.Sub(s.SteppedUp) <= maxAge
}

// sessionRecord is the stored form: short keys and Unix milliseconds keep
// a session well under the 512-byte budget in Redis.
type sessionRecord struct {
	CredentialsID   string `json:"c"`
	CredentialsType string `json:"ct"`
	IdentityType    string `json:"it"`
	IdentityID      string `json:"ii"`
	Created         int64  `json:"cr"`
	LastUsed        int64  `json:"lu"`
	Expires         int64  `json:"ex"`
	SteppedUp       int64  `json:"su,omitempty"`
	StepUpMethod    string `json:"sm,omitempty"`
	PasswordUpdate  bool   `json:"pu,omitempty"`
}

// MarshalSession encodes s for a store. The id is the record's key and is
// not part of the value.
func MarshalSession(s *Session) ([]byte, error) {
	return json.Marshal(sessionRecord{
		CredentialsID:   s.CredentialsID,
		CredentialsType: s.CredentialsType,
		IdentityType:    s.Identity.Type,
		IdentityID:      s.Identity.ID,
		Created:         s.Created.UnixMilli(),
		LastUsed:        s.LastUsed.UnixMilli(),
		Expires:         s.Expires.UnixMilli(),
		SteppedUp:       unixMilliOrZero(s.SteppedUp),
		StepUpMethod:    s.StepUpMethod,
		PasswordUpdate:  s.PasswordUpdateOnly,
	})
}

// UnmarshalSession decodes a stored session value.
func UnmarshalSession(id string, data []byte) (*Session, error) {
	var r sessionRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decoding session: %w", err)
	}
	s := &Session{
		ID:                 id,
		CredentialsID:      r.CredentialsID,
		CredentialsType:    r.CredentialsType,
		Identity:           IdentityRef{Type: r.IdentityType, ID: r.IdentityID},
		Created:            time.UnixMilli(r.Created),
		LastUsed:           time.UnixMilli(r.LastUsed),
		Expires:            time.UnixMilli(r.Expires),
		StepUpMethod:       r.StepUpMethod,
		PasswordUpdateOnly: r.PasswordUpdate,
	}
	if r.SteppedUp != 0 {
		s.SteppedUp = time.UnixMilli(r.SteppedUp)
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
