package authcore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
)

// ErrPasswordUpdateSession wraps ErrPasswordUpdateToken: the browser
// session of an expired password is good only for changing it.
var ErrPasswordUpdateSession = fmt.Errorf("%w (a browser session of an expired password)", ErrPasswordUpdateToken)

// BrowserLogin is a successful portal login.
type BrowserLogin struct {
	// Cookie is the value of the portal's session cookie: the session id
	// and a random secret, of which the session keeps only a digest.
	Cookie string
	// Session is the new browser session. PasswordUpdateOnly is set when
	// the password has expired: the session serves the password change
	// only.
	Session *Session
	// User is who logged in, run-time changes applied.
	User *User
}

// LoginBrowser checks an email and password exactly as Login does (rate
// limit, lockout, same hash work for every user and none) and opens a
// browser session, whose cookie value it returns. An expired password is
// no error here: the session is password-update-only, and the portal
// sends the browser to the password page. It counts in the login metrics
// under LoginAPIPortal.
func (s *Sessions) LoginBrowser(ctx context.Context, email, password string) (res *BrowserLogin, err error) {
	defer func() {
		result := loginResult(err)
		if err == nil && res.Session.PasswordUpdateOnly {
			result = loginPasswordExpired
		}
		s.metrics.Login(LoginAPIPortal, result)
	}()
	user, err := s.checkLogin(ctx, email, password)
	if err != nil {
		return nil, err
	}
	sess, cookie, err := s.open(ctx, user, KindBrowser)
	if err != nil {
		return nil, err
	}
	return &BrowserLogin{Cookie: cookie, Session: sess, User: user}, nil
}

// AuthenticateBrowser checks a portal cookie value and loads its browser
// session, sliding its idle window: one store round trip, through the same
// session read as tokens. It returns ErrInvalidToken for a malformed or
// forged value or a session that has ended, ErrPasswordUpdateSession for
// the session of an expired password, and ErrUnavailable when the store
// cannot answer.
func (s *Sessions) AuthenticateBrowser(ctx context.Context, cookie string) (*Session, error) {
	sess, err := s.AuthenticateBrowserPasswordUpdate(ctx, cookie)
	if err == nil && sess.PasswordUpdateOnly {
		return nil, ErrPasswordUpdateSession
	}
	return sess, err
}

// AuthenticateBrowserPasswordUpdate is AuthenticateBrowser for the pages
// that also serve the session of an expired password: the password change
// and logout.
func (s *Sessions) AuthenticateBrowserPasswordUpdate(ctx context.Context, cookie string) (*Session, error) {
	id, secret, ok := strings.Cut(cookie, cookieSeparator)
	// Only values shaped like ours reach the store.
	if !ok || !isID(id) || !isID(secret) {
		return nil, fmt.Errorf("%w: malformed session cookie", ErrInvalidToken)
	}
	sess, err := s.live(ctx, id)
	if err != nil {
		return nil, err
	}
	if sess.Kind != KindBrowser || !secretMatches(sess.SecretHash, secret) {
		return nil, fmt.Errorf("%w: cookie does not match its session", ErrInvalidToken)
	}
	return sess, nil
}

// cookieSeparator joins a browser session's id and secret in its cookie;
// neither contains it (base64url).
const cookieSeparator = "."

// secretDigest is what a browser session keeps of its cookie's secret.
func secretDigest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// secretMatches compares a cookie's secret with the stored digest in
// constant time.
func secretMatches(digest, secret string) bool {
	return subtle.ConstantTimeCompare([]byte(secretDigest(secret)), []byte(digest)) == 1
}

// isID reports whether v is shaped like newID's values: 22 base64url
// characters.
func isID(v string) bool {
	if len(v) != 22 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// CSRF makes and checks the tokens of the portal's forms: an HMAC of what
// a form is bound to (a browser session, or before login the pre-session
// cookie) under a key every node shares, so that any node accepts a form
// another node served.
type CSRF struct {
	key []byte
}

// NewCSRF returns the CSRF tokens under key (derive it from the signing
// key, so that nodes agree without more configuration).
func NewCSRF(key []byte) *CSRF { return &CSRF{key: key} }

// NewPreSession returns a random value for the pre-session cookie, which
// binds the login form's token before there is a session.
func (c *CSRF) NewPreSession() string { return newID() }

// ValidPreSession reports whether v is shaped like NewPreSession's values.
func (c *CSRF) ValidPreSession(v string) bool { return isID(v) }

// ForSession is the token of the forms of a browser session.
func (c *CSRF) ForSession(s *Session) string { return c.token("session\x00" + s.ID) }

// ForPreSession is the token of the login form, bound to the pre-session
// cookie's value.
func (c *CSRF) ForPreSession(pre string) string { return c.token("pre-session\x00" + pre) }

// Valid compares a submitted token with the expected one in constant time;
// an empty one is never valid.
func (c *CSRF) Valid(expected, submitted string) bool {
	return submitted != "" && subtle.ConstantTimeCompare([]byte(expected), []byte(submitted)) == 1
}

func (c *CSRF) token(binding string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// MaxUserAgentLen is how much of a client's user agent a session keeps:
// enough to tell browsers apart in a listing, within the store budget of
// a session.
const MaxUserAgentLen = 160

type userAgentKey struct{}

// WithUserAgent records the client's user agent in ctx, for the session
// that a login with ctx opens.
func WithUserAgent(ctx context.Context, userAgent string) context.Context {
	return context.WithValue(ctx, userAgentKey{}, userAgent)
}

// loginUserAgent is the user agent recorded in ctx, as a session keeps it:
// printable ASCII only, at most MaxUserAgentLen bytes.
func loginUserAgent(ctx context.Context) string {
	ua, _ := ctx.Value(userAgentKey{}).(string)
	var b strings.Builder
	for i := 0; i < len(ua) && b.Len() < MaxUserAgentLen; i++ {
		if c := ua[i]; c >= ' ' && c <= '~' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// loginAddress is the client address recorded in ctx when it is an IP
// address, as a session keeps it; "" otherwise.
func loginAddress(ctx context.Context) string {
	ip, err := netip.ParseAddr(clientIP(ctx))
	if err != nil {
		return ""
	}
	return ip.WithZone("").String()
}
