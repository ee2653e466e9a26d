package authcore

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Token kinds a guarded route accepts.
const (
	GuardAccess = "access"
	GuardAuth   = "auth"
	GuardAny    = "any"
)

// DefaultHeaderPrefix prefixes the identity headers sent to backends.
const DefaultHeaderPrefix = "X-Authgate-"

// GuardPolicy is what a guarded route demands.
type GuardPolicy struct {
	// Token is the kind of token accepted: access (default), auth or any.
	Token string
	// StepUp requires a stepped-up session, within MaxAge when it is set.
	StepUp bool
	// MaxAge, with StepUp, is the oldest step-up that counts; 0: any.
	MaxAge time.Duration
	// StepUpMethods, with StepUp, are the step-up methods that count
	// (StepUpOTP, StepUpPush, StepUpPasskey); empty: any.
	StepUpMethods []string
	// IdentityType, when set, must be the token's identity type.
	IdentityType string
	// CredentialsType, when set, must be the token's credentials type.
	CredentialsType string
}

// Refusal is why the guard refused a request, or NotRefused. The edge
// (the Caddy handlers, an API, the portal) renders it its own way.
type Refusal uint8

// Refusals of the guard.
const (
	// NotRefused: the request is admitted.
	NotRefused Refusal = iota
	// RefusedNoToken: no bearer token (or, deciding from the portal's
	// cookie, no cookie).
	RefusedNoToken
	// RefusedInvalidToken: a token (or portal cookie) that does not
	// verify, or whose session has ended.
	RefusedInvalidToken
	// RefusedPasswordUpdateToken: a PASSWORD_UPDATE token, or the browser
	// session of an expired password, good only for changing it.
	RefusedPasswordUpdateToken
	// RefusedAccessTokenRequired: an AUTH token where ACCESS is required.
	RefusedAccessTokenRequired
	// RefusedInsufficientPermissions: the identity or credentials type is
	// not the route's.
	RefusedInsufficientPermissions
	// RefusedStepUpRequired: the session has not stepped up (within
	// Decision.MaxAge, when set).
	RefusedStepUpRequired
	// RefusedUnavailable: the store did not answer; the request could not
	// be checked.
	RefusedUnavailable
	// RefusedClientGone: the client went away while the store was asked.
	RefusedClientGone
	// RefusedInternal: a bug or a record that does not decode.
	RefusedInternal
)

// String is the refusal's metrics label (authgate_guard_decisions_total).
func (r Refusal) String() string {
	switch r {
	case NotRefused:
		return "admitted"
	case RefusedNoToken:
		return "no_token"
	case RefusedInvalidToken, RefusedPasswordUpdateToken:
		return "invalid_token"
	case RefusedAccessTokenRequired:
		return "access_token_required"
	case RefusedInsufficientPermissions:
		return "insufficient_permissions"
	case RefusedStepUpRequired:
		return "step_up_required"
	case RefusedUnavailable:
		return "unavailable"
	case RefusedClientGone:
		return "client_gone"
	}
	return "error"
}

// Decision is the guard's answer: admitted, with the caller's claims and
// session, or refused, with the reason and what the edge needs to render
// it. It holds no status code or header text.
type Decision struct {
	// Refusal is NotRefused when the request is admitted.
	Refusal Refusal
	// Claims are the admitted caller's token's.
	Claims *Claims
	// Session is the admitted caller's session.
	Session *Session
	// MaxAge is the route's step-up max age with RefusedStepUpRequired
	// (0: any step-up would do).
	MaxAge time.Duration
	// PhishingResistant, with RefusedStepUpRequired, says that the route
	// counts only a phishing-resistant step-up (a passkey), which the edge
	// asks for (RFC 9470 acr_values="phr").
	PhishingResistant bool
	// Methods, with RefusedStepUpRequired, are the step-up methods the
	// route counts (empty: any), for an edge that offers them (the portal).
	Methods []string
	// Cause is the error behind the refusal, for logs only.
	Cause error
}

// Admitted reports whether the request may pass.
func (d *Decision) Admitted() bool { return d.Refusal == NotRefused }

// SteppedUp reports whether the admitted caller's session has stepped up.
func (d *Decision) SteppedUp() bool { return !d.Session.SteppedUp.IsZero() }

// AuthTime is when the admitted caller last authenticated: the step-up,
// or the login.
func (d *Decision) AuthTime() time.Time {
	if d.SteppedUp() {
		return d.Session.SteppedUp
	}
	return d.Session.Created
}

// Guard decides guarded requests: a live token of the route's kind, from
// a session that meets the route's step-up and type demands.
type Guard struct {
	sessions *Sessions
	now      func() time.Time
	metrics  Metrics
	outage   *Outage
}

// Decide decides a guarded request from its bearer token ("" for none),
// and counts the decision in the metrics.
func (g *Guard) Decide(ctx context.Context, token string, p *GuardPolicy) Decision {
	d := g.decide(ctx, token, p)
	g.count(&d)
	return d
}

// DecideBrowser decides a guarded request from the portal's session
// cookie ("" for none): a browser session is admitted as an ACCESS token
// of its login identity would be. A password-update-only session is
// RefusedPasswordUpdateToken. It counts the decision as Decide does.
func (g *Guard) DecideBrowser(ctx context.Context, cookie string, p *GuardPolicy) Decision {
	d := g.decideBrowser(ctx, cookie, p)
	g.count(&d)
	return d
}

func (g *Guard) count(d *Decision) {
	g.metrics.GuardDecision(d.Refusal.String())
	if d.Refusal == RefusedUnavailable {
		g.outage.Refused()
	}
}

func (g *Guard) decide(ctx context.Context, token string, p *GuardPolicy) Decision {
	if token == "" {
		return Decision{Refusal: RefusedNoToken}
	}
	c, s, err := g.sessions.Authenticate(ctx, token)
	if err != nil {
		return refusedFor(err)
	}
	return g.check(c, s, p)
}

func (g *Guard) decideBrowser(ctx context.Context, cookie string, p *GuardPolicy) Decision {
	if cookie == "" {
		return Decision{Refusal: RefusedNoToken}
	}
	s, err := g.sessions.AuthenticateBrowser(ctx, cookie)
	if err != nil {
		return refusedFor(err)
	}
	c := &Claims{SessionID: s.ID, TokenType: TokenAccess, CredentialsType: s.CredentialsType, Identity: s.Identity}
	c.Subject = s.CredentialsID
	return g.check(c, s, p)
}

// refusedFor is the refusal of a credential that did not authenticate.
func refusedFor(err error) Decision {
	switch {
	case errors.Is(err, ErrPasswordUpdateToken):
		return Decision{Refusal: RefusedPasswordUpdateToken, Cause: err}
	case errors.Is(err, ErrInvalidToken):
		return Decision{Refusal: RefusedInvalidToken, Cause: err}
	case errors.Is(err, ErrUnavailable) && ClientGone(err):
		return Decision{Refusal: RefusedClientGone, Cause: err}
	case errors.Is(err, ErrUnavailable):
		return Decision{Refusal: RefusedUnavailable, Cause: err}
	}
	return Decision{Refusal: RefusedInternal, Cause: err}
}

// check holds an authenticated caller to the route's demands.
func (g *Guard) check(c *Claims, s *Session, p *GuardPolicy) Decision {
	switch {
	case p.Token != GuardAny && p.Token != GuardAuth && c.TokenType != TokenAccess:
		return Decision{Refusal: RefusedAccessTokenRequired}
	case (p.IdentityType != "" && c.Identity.Type != p.IdentityType) ||
		(p.CredentialsType != "" && c.CredentialsType != p.CredentialsType):
		return Decision{Refusal: RefusedInsufficientPermissions}
	case p.StepUp && (!s.IsSteppedUp(g.now(), p.MaxAge) ||
		len(p.StepUpMethods) > 0 && !slices.Contains(p.StepUpMethods, s.StepUpMethod)):
		return Decision{Refusal: RefusedStepUpRequired, MaxAge: p.MaxAge, PhishingResistant: p.phishingResistant(),
			Methods: p.StepUpMethods}
	}
	return Decision{Claims: c, Session: s}
}

// phishingResistant reports whether the policy counts only a passkey
// step-up: a route that also takes a code or a push does not demand it.
func (p *GuardPolicy) phishingResistant() bool {
	return len(p.StepUpMethods) > 0 && !slices.ContainsFunc(p.StepUpMethods, func(m string) bool { return m != StepUpPasskey })
}

// Identity header names, after the prefix.
const (
	HeaderCredentialsID   = "Credentials-Id"
	HeaderCredentialsType = "Credentials-Type"
	HeaderIdentityID      = "Identity-Id"
	HeaderIdentityType    = "Identity-Type"
	HeaderSteppedUp       = "Stepped-Up"
	HeaderAuthTime        = "Auth-Time"
)

// IdentityHeaders sets the caller's identity headers under one prefix.
// The canonical names are computed once, not per request.
type IdentityHeaders struct {
	prefix string
	names  [6]string
}

// NewIdentityHeaders returns the identity headers under prefix.
func NewIdentityHeaders(prefix string) *IdentityHeaders {
	ih := &IdentityHeaders{prefix: prefix}
	for i, n := range []string{HeaderCredentialsID, HeaderCredentialsType, HeaderIdentityID,
		HeaderIdentityType, HeaderSteppedUp, HeaderAuthTime} {
		ih.names[i] = http.CanonicalHeaderKey(prefix + n)
	}
	return ih
}

// Set removes every header a client sent that looks like one of ours
// (prefix compared case-insensitively, "_" read as "-"), then sets the
// caller's identity headers.
func (ih *IdentityHeaders) Set(h http.Header, d *Decision) {
	StripPrefixedHeaders(h, ih.prefix)
	values := [6]string{d.Claims.Subject, d.Claims.CredentialsType, d.Claims.Identity.ID,
		d.Claims.Identity.Type, strconv.FormatBool(d.SteppedUp()), strconv.FormatInt(d.AuthTime().Unix(), 10)}
	backing := values[:] // one allocation for all six values
	for i, name := range ih.names {
		h[name] = backing[i : i+1 : i+1]
	}
}

// Prepare readies an admitted request for the backend: Set on its headers,
// and nothing under the prefix left where a proxy would forward it or act
// on it. Trailers under the prefix are removed, both those declared now and
// those that arrive with the end of the body; the Trailer and Connection
// headers lose the names under the prefix, so that hop-by-hop removal
// (which deletes every header Connection names) cannot delete ours.
func (ih *IdentityHeaders) Prepare(r *http.Request, d *Decision) {
	ih.Set(r.Header, d)
	dropPrefixedNames(r.Header, "Connection", ih.prefix)
	dropPrefixedNames(r.Header, "Trailer", ih.prefix)
	StripPrefixedHeaders(r.Trailer, ih.prefix)
	// Only a chunked HTTP/1 body or an HTTP/2 or /3 stream can end with
	// trailers; net/http adds them to r.Trailer in the Read that reaches
	// EOF, and a proxy copies them in that same Read.
	if r.Body != nil && r.Body != http.NoBody && (r.ContentLength < 0 || r.ProtoMajor != 1) {
		r.Body = &trailerFilter{ReadCloser: r.Body, r: r, prefix: ih.prefix}
	}
}

// trailerFilter deletes the trailers under a prefix as soon as the body
// has delivered them.
type trailerFilter struct {
	io.ReadCloser
	r      *http.Request
	prefix string
}

func (f *trailerFilter) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if err == io.EOF {
		StripPrefixedHeaders(f.r.Trailer, f.prefix)
	}
	return n, err
}

// dropPrefixedNames removes, from the comma-separated lists of header
// names in h[key], the names that start with prefix (compared as
// StripPrefixedHeaders does, each name trimmed as a proxy trims it); a
// value left empty is removed. Headers without such a name are not touched.
func dropPrefixedNames(h http.Header, key, prefix string) {
	values := h[key]
	i := 0
	for i < len(values) && !namesPrefixed(values[i], prefix) {
		i++
	}
	if i == len(values) {
		return
	}
	kept := append([]string(nil), values[:i]...)
	for _, v := range values[i:] {
		var names []string
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" && !headerHasPrefix(name, prefix) {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			kept = append(kept, strings.Join(names, ", "))
		}
	}
	if len(kept) == 0 {
		delete(h, key)
		return
	}
	h[key] = kept
}

// namesPrefixed reports whether a comma-separated list names a header
// under prefix.
func namesPrefixed(list, prefix string) bool {
	for name := range strings.SplitSeq(list, ",") {
		if headerHasPrefix(textproto.TrimString(name), prefix) {
			return true
		}
	}
	return false
}

// StripPrefixedHeaders deletes the headers whose names start with prefix,
// ignoring case and treating "_" as "-".
func StripPrefixedHeaders(h http.Header, prefix string) {
	for name := range h {
		if headerHasPrefix(name, prefix) {
			delete(h, name)
		}
	}
}

func headerHasPrefix(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if foldHeaderByte(name[i]) != foldHeaderByte(prefix[i]) {
			return false
		}
	}
	return true
}

func foldHeaderByte(b byte) byte {
	switch {
	case b == '_':
		return '-'
	case 'A' <= b && b <= 'Z':
		return b + 'a' - 'A'
	}
	return b
}
