package authcore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Credentials types of a user.
const (
	CredentialsRoot = "ROOT"
	CredentialsUser = "USER"
)

// Identity types a user can act as.
const (
	IdentityConsumer  = "CONSUMER"
	IdentityCorporate = "CORPORATE"
)

// Identity is one of the identities (consumer or corporate) a user may act as.
type Identity struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Ref returns the identity without its display name, as tokens and
// responses carry it.
func (i Identity) Ref() IdentityRef { return IdentityRef{Type: i.Type, ID: i.ID} }

// IdentityRef names an identity by type and id.
type IdentityRef struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Factors are the step-up channels a user has enrolled.
type Factors struct {
	OTP  []string `json:"otp,omitempty"`
	Push []string `json:"push,omitempty"`
}

// User is an account that can log in. Field names are those of users_file.
type User struct {
	ID                  string     `json:"id"`
	CredentialsType     string     `json:"credentialsType"`
	Email               string     `json:"email"`
	UserName            string     `json:"userName,omitempty"`
	Password            string     `json:"password"`
	PasswordExpires     *time.Time `json:"passwordExpires,omitempty"`
	ForcePasswordChange bool       `json:"forcePasswordChange,omitempty"`
	FirstName           string     `json:"firstName,omitempty"`
	LastName            string     `json:"lastName,omitempty"`
	NickName            string     `json:"nickName,omitempty"`
	Phone               string     `json:"phone,omitempty"`
	TextNumber          string     `json:"textNumber,omitempty"`
	PhoneCountryCode    string     `json:"phoneCountryCode,omitempty"`
	TextCountryCode     string     `json:"textCountryCode,omitempty"`
	UUID                string     `json:"uuid,omitempty"`
	Identities          []Identity `json:"identities"`
	Factors             Factors    `json:"factors"`
	MFA                 string     `json:"mfa,omitempty"`
	TOTPSecret          string     `json:"totpSecret,omitempty"`
	Disabled            bool       `json:"disabled,omitempty"`

	// passwordOrigin is the hash Password was rehashed from at a login,
	// when it was: remembered devices stay bound to it, as a rehash is
	// no password change.
	passwordOrigin string
}

// PasswordExpired reports whether the user must change the password before
// getting a normal session.
func (u *User) PasswordExpired(now time.Time) bool {
	return u.ForcePasswordChange || (u.PasswordExpires != nil && !now.Before(*u.PasswordExpires))
}

// HasIdentity reports whether ref is one of the user's identities.
func (u *User) HasIdentity(ref IdentityRef) bool {
	for _, id := range u.Identities {
		if id.Type == ref.Type && id.ID == ref.ID {
			return true
		}
	}
	return false
}

// ErrUserNotFound is returned by a UserDirectory for an unknown user.
var ErrUserNotFound = errors.New("user not found")

// UserDirectory finds users. Lookups by email and user name are
// case-insensitive.
type UserDirectory interface {
	UserByEmail(ctx context.Context, email string) (*User, error)
	UserByName(ctx context.Context, userName string) (*User, error)
	UserByID(ctx context.Context, id string) (*User, error)
}

// StaticUsers is a read-only UserDirectory built once, as from a users_file.
type StaticUsers struct {
	byEmail map[string]*User
	byName  map[string]*User
	byID    map[string]*User
}

var (
	digits = regexp.MustCompile(`^[0-9]+$`)
	e164   = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// NewStaticUsers validates users and indexes them.
func NewStaticUsers(users []User) (*StaticUsers, error) {
	s := &StaticUsers{byEmail: map[string]*User{}, byName: map[string]*User{}, byID: map[string]*User{}}
	for i := range users {
		u := &users[i]
		if err := ValidateUser(u); err != nil {
			return nil, fmt.Errorf("user %d (%q): %w", i, u.Email, err)
		}
		if _, dup := s.byID[u.ID]; dup {
			return nil, fmt.Errorf("user %d: duplicate id %q", i, u.ID)
		}
		email := strings.ToLower(u.Email)
		if _, dup := s.byEmail[email]; dup {
			return nil, fmt.Errorf("user %d: duplicate email %q", i, u.Email)
		}
		s.byID[u.ID] = u
		s.byEmail[email] = u
		if u.UserName != "" {
			name := strings.ToLower(u.UserName)
			if _, dup := s.byName[name]; dup {
				return nil, fmt.Errorf("user %d: duplicate userName %q", i, u.UserName)
			}
			s.byName[name] = u
		}
	}
	return s, nil
}

// LoadUsersFile reads a users_file: JSON {"users": [...]}.
func LoadUsersFile(path string) (*StaticUsers, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading users file: %w", err)
	}
	users, err := ParseUsersFile(data)
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return users, nil
}

// ParseUsersFile reads the contents of a users_file as the server loads
// it. A user's field that authgate does not know is an error naming the
// user and the field: a misspelt "pasword" would otherwise be dropped and
// reported as a missing hash. So is a user the server could not serve
// (CheckServable). Top-level fields other than "users" are left alone.
func ParseUsersFile(data []byte) (*StaticUsers, error) {
	var doc struct {
		Users json.RawMessage `json:"users"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	users, err := DecodeUsers(doc.Users)
	if err != nil {
		return nil, err
	}
	static, err := NewStaticUsers(users)
	if err != nil {
		return nil, err
	}
	for i := range users {
		if err := CheckServable(&users[i]); err != nil {
			return nil, fmt.Errorf("user %d (%q): %w", i, users[i].Email, err)
		}
	}
	return static, nil
}

// DecodeUsers decodes the "users" list of a users file, refusing fields
// authgate does not know, with an error naming the user and the field.
// An absent list is empty.
func DecodeUsers(list json.RawMessage) ([]User, error) {
	var raws []json.RawMessage
	if len(list) > 0 {
		if err := json.Unmarshal(list, &raws); err != nil {
			return nil, fmt.Errorf("parsing users: %w", err)
		}
	}
	users := make([]User, len(raws))
	for i, raw := range raws {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&users[i]); err != nil {
			var named User
			_ = json.Unmarshal(raw, &named)
			return nil, fmt.Errorf("user %d (%q): %s", i, named.Email, strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	return users, nil
}

// CheckServable reports what makes a valid user one the server could not
// serve: an mfa or an SMS factor with nothing to send codes to, or TOTP
// without a usable secret. The Manage API would answer such a user 1500
// on every call, so the users file and the CLI refuse it when they load
// or write it.
func CheckServable(u *User) error {
	switch {
	case u.MFA == MFASMS && smsNumber(u) == "":
		return errors.New("mfa SMS needs a textNumber (or phone) to send codes to")
	case slices.Contains(u.Factors.OTP, ChannelSMS) && smsNumber(u) == "":
		return errors.New("factors.otp SMS needs a textNumber (or phone) to send codes to")
	case u.MFA == MFATOTP && u.TOTPSecret == "":
		return errors.New("mfa TOTP needs a totpSecret")
	case u.MFA == MFATOTP && checkTOTPSecret(u) != nil:
		return errors.New("totpSecret is not base32")
	}
	return nil
}

// ValidateUser checks the fields a user must have and their formats.
func ValidateUser(u *User) error {
	switch {
	case !digits.MatchString(u.ID):
		return fmt.Errorf("id must be digits")
	case u.CredentialsType != CredentialsRoot && u.CredentialsType != CredentialsUser:
		return fmt.Errorf("credentialsType must be ROOT or USER")
	case !strings.Contains(u.Email, "@"):
		return fmt.Errorf("email is missing or invalid")
	case len(u.Identities) == 0:
		return fmt.Errorf("at least one identity is required")
	}
	if err := CheckHashFormat(u.Password); err != nil {
		return fmt.Errorf("password: %w", err)
	}
	for _, id := range u.Identities {
		if id.Type != IdentityConsumer && id.Type != IdentityCorporate {
			return fmt.Errorf("identity type must be CONSUMER or CORPORATE")
		}
		if !digits.MatchString(id.ID) {
			return fmt.Errorf("identity id must be digits")
		}
	}
	for _, n := range []string{u.Phone, u.TextNumber} {
		if n != "" && !e164.MatchString(n) {
			return fmt.Errorf("phone numbers must be E.164 (+ and digits)")
		}
	}
	for _, c := range []string{u.PhoneCountryCode, u.TextCountryCode} {
		if c != "" && !digits.MatchString(c) {
			return fmt.Errorf("country codes must be digits without +")
		}
	}
	switch u.MFA {
	case "", "SMS", "EMAIL", "TOTP":
	default:
		return fmt.Errorf("mfa must be SMS, EMAIL, TOTP or empty")
	}
	for _, c := range u.Factors.OTP {
		if c != "SMS" {
			return fmt.Errorf("factors.otp may only hold SMS")
		}
	}
	for _, c := range u.Factors.Push {
		if c != "AUTHY" && c != "BIOMETRIC" {
			return fmt.Errorf("factors.push may only hold AUTHY or BIOMETRIC")
		}
	}
	return nil
}

// UserByEmail implements UserDirectory.
func (s *StaticUsers) UserByEmail(_ context.Context, email string) (*User, error) {
	return found(s.byEmail[strings.ToLower(email)])
}

// UserByName implements UserDirectory.
func (s *StaticUsers) UserByName(_ context.Context, name string) (*User, error) {
	return found(s.byName[strings.ToLower(name)])
}

// UserByID implements UserDirectory.
func (s *StaticUsers) UserByID(_ context.Context, id string) (*User, error) {
	return found(s.byID[id])
}

// Len returns the number of users.
func (s *StaticUsers) Len() int { return len(s.byID) }

func found(u *User) (*User, error) {
	if u == nil {
		return nil, ErrUserNotFound
	}
	c := *u
	return &c, nil
}

// HashParams returns the distinct parameter sets of the users' password
// hashes: what a password check must cost for every user to cost the same.
func (s *StaticUsers) HashParams() []HashParams {
	var out []HashParams
	for _, u := range s.byID {
		if p, err := ParamsOf(u.Password); err == nil && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
