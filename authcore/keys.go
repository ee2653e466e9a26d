package authcore

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
)

// KeySpec describes one kind of store key: someone reading Redis can find
// here who wrote a key, why, and how long it lives. Every key carries a
// Redis Cluster hash tag (the part in braces), so that the keys one
// operation uses together share a slot.
type KeySpec struct {
	// Name is a short name of the kind, for tests and tools.
	Name string
	// Pattern is the key without the store's prefix; <...> are variable.
	Pattern string
	// HashTag is what the braces hold.
	HashTag string
	// TTL is how long the key lives.
	TTL string
	// Owner is the service that writes the key.
	Owner string
	match *regexp.Regexp
}

// StoreKeys lists every key authgate keeps in its store, most specific
// patterns first (KeySpecOf takes the first that matches). The functions
// of Keys are the only code that spells a key.
var StoreKeys = compileKeys([]KeySpec{
	{Name: "session", Pattern: "s:{<session id>}", HashTag: "session id",
		TTL: "session_idle, slid by every use; never past session_max", Owner: "Sessions (through the Store's session methods): API and browser sessions alike"},
	{Name: "user_sessions", Pattern: "us:{<credentials id>}", HashTag: "credentials id",
		TTL: "session_max from the last login", Owner: "Sessions: the user's session ids, so a password change ends them all"},

	{Name: "lockout_failures", Pattern: "lk:{<credentials id, or x and a digest of an unknown identifier>}:f", HashTag: "account",
		TTL: "lockout duration", Owner: "Passwords: consecutive wrong passwords"},
	{Name: "lockout", Pattern: "lk:{<credentials id, or x and a digest of an unknown identifier>}:lock", HashTag: "account",
		TTL: "lockout duration", Owner: "Passwords: the account is locked"},

	{Name: "rate_limit_manage_ip", Pattern: "rl:m:<action>:{ip:<client address>}:<window number>", HashTag: "client address",
		TTL: "the limit's window", Owner: "Limits: Manage API requests from one end-user address"},
	{Name: "rate_limit_manage_user", Pattern: "rl:m:<action>:{u<digest of the user name>}:<window number>", HashTag: "user name digest",
		TTL: "the limit's window", Owner: "Limits: Manage API requests for one user name"},
	{Name: "rate_limit", Pattern: "rl:<action>:{<client address>}:<window number>", HashTag: "client address",
		TTL: "the limit's window", Owner: "Limits: Multi API requests from one client address"},

	{Name: "account", Pattern: "a:{<credentials id>}", HashTag: "credentials id",
		TTL: "AccountDataTTL from the last write; a read after 30 days rewrites it", Owner: "Accounts: run-time changes (factors, password, history, rehash)"},
	{Name: "user", Pattern: "u:{<credentials id>}", HashTag: "credentials id",
		TTL: "AccountDataTTL, rewritten when read after 30 days", Owner: "StoreUsers: a user kept in the store"},
	{Name: "user_email", Pattern: "ue:{<lowercased email>}", HashTag: "email",
		TTL: "AccountDataTTL (a released claim: 1m)", Owner: "StoreUsers: who holds the email"},
	{Name: "user_name", Pattern: "un:{<lowercased user name>}", HashTag: "user name",
		TTL: "AccountDataTTL (a released claim: 1m)", Owner: "StoreUsers: who holds the userName"},
	{Name: "users_index", Pattern: "ux:{all}", HashTag: "all",
		TTL: "AccountDataTTL", Owner: "StoreUsers: every stored user's id"},

	{Name: "code_cooldown", Pattern: "o:{<session id, or m:credentials id>}:<purpose>:wait", HashTag: "session or user",
		TTL: "resend interval", Owner: "CodeChallenges (for StepUp and ManageMFA): no new code before it expires"},
	{Name: "code_issues", Pattern: "o:{<session id, or m:credentials id>}:<purpose>:n", HashTag: "session or user",
		TTL: "the challenge's bookkeeping time", Owner: "CodeChallenges: codes issued in the round"},
	{Name: "code_tries", Pattern: "o:{<session id, or m:credentials id>}:<purpose>:a", HashTag: "session or user",
		TTL: "the challenge's bookkeeping time", Owner: "CodeChallenges: codes tried in the round"},
	{Name: "code_used", Pattern: "o:{<session id, or m:credentials id>}:<purpose>:v:<challenge id>", HashTag: "session or user",
		TTL: "the code's remaining life plus its TTL", Owner: "CodeChallenges: the code was accepted"},
	{Name: "code", Pattern: "o:{<session id, or m:credentials id>}:<purpose>", HashTag: "session or user",
		TTL: "the challenge's bookkeeping time", Owner: "CodeChallenges: the keyed hash of the current code"},

	{Name: "push_resolution", Pattern: "p:{<push id>}:r", HashTag: "push id",
		TTL: "session_max plus the code TTL", Owner: "StepUp: the provider's answer to a push"},
	{Name: "push_issues", Pattern: "p:{<session id>}:n", HashTag: "session id",
		TTL: "the rest of the session", Owner: "StepUp: pushes sent in the round"},
	{Name: "push", Pattern: "p:{<push id>}", HashTag: "push id",
		TTL: "the rest of the session plus the code TTL", Owner: "StepUp: a push challenge"},

	{Name: "passkey_challenge", Pattern: "pk:{<session id>}:<purpose>", HashTag: "session id",
		TTL: "PasskeyChallengeTTL (5m); taken once", Owner: "Passkeys: a WebAuthn challenge (enrol or stepup) of the session"},
	{Name: "passkeys", Pattern: "pk:{<credentials id>}", HashTag: "credentials id",
		TTL: "AccountDataTTL from the last write (enrolment, step-up, removal)", Owner: "Passkeys: the user's WebAuthn credentials and sign counts"},

	{Name: "mfa_session", Pattern: "ms:{m:<credentials id>}:<sessionToken digest>", HashTag: "m:credentials id",
		TTL: "MFASessionTTL", Owner: "ManageMFA: a sessionToken waiting for its code"},
	{Name: "totp_tries", Pattern: "mt:{m:<credentials id>}:a", HashTag: "m:credentials id",
		TTL: "MFASessionTTL", Owner: "ManageMFA: wrong TOTP codes"},
	{Name: "totp_used", Pattern: "mt:{m:<credentials id>}:u:<time step>", HashTag: "m:credentials id",
		TTL: "4 TOTP periods", Owner: "ManageMFA: a TOTP time step already used"},
	{Name: "devices_revoked", Pattern: "mr:{m:<credentials id>}:revoked", HashTag: "m:credentials id",
		TTL: "RememberDeviceTTL", Owner: "ManageMFA: remember tokens issued before this instant are dead"},
	{Name: "remembered_device", Pattern: "mr:{m:<credentials id>}:<remember token digest>", HashTag: "m:credentials id",
		TTL: "RememberDeviceTTL", Owner: "ManageMFA: a userMFARememberMeToken"},
})

// compileKeys makes each pattern's matcher: <...> matches anything.
func compileKeys(specs []KeySpec) []KeySpec {
	variable := regexp.MustCompile(`<[^>]*>`)
	for i := range specs {
		var re strings.Builder
		re.WriteString("^")
		last := 0
		for _, m := range variable.FindAllStringIndex(specs[i].Pattern, -1) {
			re.WriteString(regexp.QuoteMeta(specs[i].Pattern[last:m[0]]))
			re.WriteString(".+")
			last = m[1]
		}
		re.WriteString(regexp.QuoteMeta(specs[i].Pattern[last:]))
		re.WriteString("$")
		specs[i].match = regexp.MustCompile(re.String())
	}
	return specs
}

// KeySpecOf returns the kind of a key (without the store's prefix), and
// false for a key authgate does not write.
func KeySpecOf(key string) (KeySpec, bool) {
	for _, s := range StoreKeys {
		if s.match.MatchString(key) {
			return s, true
		}
	}
	return KeySpec{}, false
}

// Keys builds every store key of StoreKeys; nothing else spells one.
var Keys keyNames

type keyNames struct{}

// Session is the key of a session under prefix (the store's).
func (keyNames) Session(prefix, id string) string { return prefix + "s:{" + id + "}" }

// UserSessions is the set of a user's session ids.
func (keyNames) UserSessions(credentialsID string) string { return "us:{" + credentialsID + "}" }

// LockoutAccount names an account's lockout counters: the credentials id
// of a known user (nil for none), or a digest of the identifier of an
// unknown one, so unknown emails lock just like known ones and reveal
// nothing.
func (keyNames) LockoutAccount(user *User, identifier string) string {
	if user != nil {
		return user.ID
	}
	sum := sha256.Sum256([]byte(strings.ToLower(identifier)))
	return "x" + hex.EncodeToString(sum[:12])
}

// LockoutFailures counts an account's consecutive wrong passwords.
func (keyNames) LockoutFailures(account string) string { return "lk:{" + account + "}:f" }

// Lockout marks a locked account.
func (keyNames) Lockout(account string) string { return "lk:{" + account + "}:lock" }

// RateLimit counts a Multi API action from a client address in a window.
func (keyNames) RateLimit(action, clientIP string, window int64) string {
	return "rl:" + action + ":{" + clientIP + "}:" + strconv.FormatInt(window, 10)
}

// ManageRateLimitIP counts a Manage API action from an end-user address.
func (keyNames) ManageRateLimitIP(action, clientIP string, window int64) string {
	return "rl:m:" + action + ":{ip:" + clientIP + "}:" + strconv.FormatInt(window, 10)
}

// ManageRateLimitUser counts a Manage API action for a user name
// (case-insensitive, as a fixed-size digest).
func (keyNames) ManageRateLimitUser(action, userName string, window int64) string {
	sum := sha256.Sum256([]byte(strings.ToLower(userName)))
	return "rl:m:" + action + ":{u" + hex.EncodeToString(sum[:12]) + "}:" + strconv.FormatInt(window, 10)
}

// Account is a user's run-time account data.
func (keyNames) Account(credentialsID string) string { return "a:{" + credentialsID + "}" }

// User is a user kept in the store.
func (keyNames) User(credentialsID string) string { return "u:{" + credentialsID + "}" }

// UserEmail is the claim on an email (case-insensitive).
func (keyNames) UserEmail(email string) string { return "ue:{" + strings.ToLower(email) + "}" }

// UserName is the claim on a userName (case-insensitive).
func (keyNames) UserName(name string) string { return "un:{" + strings.ToLower(name) + "}" }

// UsersIndex is the set of every stored user's id.
func (keyNames) UsersIndex() string { return "ux:{all}" }

// StepUpScope is the scope of a session's codes for purpose.
func (keyNames) StepUpScope(sessionID, purpose string) string {
	return "{" + sessionID + "}:" + purpose
}

// ManageScope is the scope of a user's Manage API codes for purpose.
func (keyNames) ManageScope(credentialsID, purpose string) string {
	return "{m:" + credentialsID + "}:" + purpose
}

// Code is the current code of a scope.
func (keyNames) Code(scope string) string { return "o:" + scope }

// CodeCooldown is the resend interval of a scope.
func (keyNames) CodeCooldown(scope string) string { return "o:" + scope + ":wait" }

// CodeIssues counts the codes issued in a scope's round.
func (keyNames) CodeIssues(scope string) string { return "o:" + scope + ":n" }

// CodeTries counts the codes tried in a scope's round, across its codes.
func (keyNames) CodeTries(scope string) string { return "o:" + scope + ":a" }

// CodeUsed marks a challenge whose code was accepted.
func (keyNames) CodeUsed(scope, challengeID string) string { return "o:" + scope + ":v:" + challengeID }

// Push is a push challenge, found by its id alone.
func (keyNames) Push(id string) string { return "p:{" + id + "}" }

// PushResolution is the provider's answer to a push.
func (keyNames) PushResolution(id string) string { return "p:{" + id + "}:r" }

// PushIssues counts the pushes a session sent in its round.
func (keyNames) PushIssues(sessionID string) string { return "p:{" + sessionID + "}:n" }

// Passkeys holds a user's WebAuthn credentials.
func (keyNames) Passkeys(credentialsID string) string { return "pk:{" + credentialsID + "}" }

// PasskeyChallenge is a session's WebAuthn challenge for purpose.
func (keyNames) PasskeyChallenge(sessionID, purpose string) string {
	return "pk:{" + sessionID + "}:" + purpose
}

// MFASession is a Manage API sessionToken's state.
func (keyNames) MFASession(credentialsID, token string) string {
	return "ms:{m:" + credentialsID + "}:" + tokenDigest(token)
}

// TOTPTries counts a user's wrong TOTP codes.
func (keyNames) TOTPTries(credentialsID string) string { return "mt:{m:" + credentialsID + "}:a" }

// TOTPUsed marks a TOTP time step as used.
func (keyNames) TOTPUsed(credentialsID string, step uint64) string {
	return "mt:{m:" + credentialsID + "}:u:" + strconv.FormatUint(step, 10)
}

// RememberedDevice is a userMFARememberMeToken.
func (keyNames) RememberedDevice(credentialsID, token string) string {
	return "mr:{m:" + credentialsID + "}:" + tokenDigest(token)
}

// DevicesRevoked holds the instant before which every remember token of
// the user is dead.
func (keyNames) DevicesRevoked(credentialsID string) string {
	return "mr:{m:" + credentialsID + "}:revoked"
}
