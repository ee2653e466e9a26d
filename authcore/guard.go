package authcore

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/authcore/httpapi"
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
	MaxAge time.Duration
	// IdentityType and CredentialsType, when set, must match the token's.
	IdentityType    string
	CredentialsType string
}

// Admission is an admitted request's caller.
type Admission struct {
	Claims  *Claims
	Session *Session
}

// SteppedUp reports whether the caller's session has stepped up.
func (a *Admission) SteppedUp() bool { return !a.Session.SteppedUp.IsZero() }

// AuthTime is when the caller last authenticated: the step-up, or the login.
func (a *Admission) AuthTime() time.Time {
	if a.SteppedUp() {
		return a.Session.SteppedUp
	}
	return a.Session.Created
}

// Rejection is why a guarded request was refused; Write renders it.
type Rejection struct {
	Status    int
	ErrorCode string // 403 errorCode
	Message   string // 401/503 message
	// Challenge is the WWW-Authenticate header value, if any.
	Challenge string
	Cause     error
}

func (r *Rejection) Error() string {
	if r.ErrorCode != "" {
		return r.ErrorCode
	}
	return r.Message
}

// Write sends the rejection in the documented error shape.
func (r *Rejection) Write(w http.ResponseWriter) {
	if r.Challenge != "" {
		w.Header().Set("WWW-Authenticate", r.Challenge)
	}
	if r.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if r.ErrorCode != "" {
		httpapi.WriteErrorCode(w, r.Status, r.ErrorCode)
		return
	}
	httpapi.WriteMessage(w, r.Status, r.Message)
}

const realm = `Bearer realm="authgate"`

// Admit decides a guarded request from its Authorization header.
func (g *Gateway) Admit(ctx context.Context, authorization string, p *GuardPolicy) (*Admission, *Rejection) {
	adm, rej := g.admit(ctx, authorization, p)
	g.metrics.GuardDecision(guardResult(rej))
	return adm, rej
}

// guardResult is the metrics label of a guard decision.
func guardResult(rej *Rejection) string {
	switch {
	case rej == nil:
		return "admitted"
	case rej.Status == http.StatusServiceUnavailable && ClientGone(rej.Cause):
		return "client_gone"
	case rej.Status == http.StatusServiceUnavailable:
		return "unavailable"
	case rej.Status == http.StatusInternalServerError:
		return "error"
	case rej.ErrorCode != "":
		return guardLabels[rej.ErrorCode]
	case rej.Challenge == realm:
		return "no_token"
	}
	return "invalid_token"
}

// guardLabels are the metric labels of the guard's 403 error codes.
var guardLabels = map[string]string{
	"ACCESS_TOKEN_REQUIRED":    "access_token_required",
	"STEP_UP_REQUIRED":         "step_up_required",
	"INSUFFICIENT_PERMISSIONS": "insufficient_permissions",
}

func (g *Gateway) admit(ctx context.Context, authorization string, p *GuardPolicy) (*Admission, *Rejection) {
	token, ok := httpapi.BearerToken(authorization)
	if !ok {
		return nil, &Rejection{Status: http.StatusUnauthorized, Message: "authentication required", Challenge: realm}
	}
	c, s, err := g.Authenticate(ctx, token)
	if err != nil {
		return nil, authRejection(err)
	}
	switch {
	case c.TokenType == TokenPasswordUpdate:
		return nil, &Rejection{Status: http.StatusUnauthorized, Message: "invalid token",
			Challenge: realm + `, error="invalid_token"`}
	case p.Token != GuardAny && p.Token != GuardAuth && c.TokenType != TokenAccess:
		return nil, &Rejection{Status: http.StatusForbidden, ErrorCode: "ACCESS_TOKEN_REQUIRED"}
	case (p.IdentityType != "" && c.Identity.Type != p.IdentityType) ||
		(p.CredentialsType != "" && c.CredentialsType != p.CredentialsType):
		return nil, &Rejection{Status: http.StatusForbidden, ErrorCode: "INSUFFICIENT_PERMISSIONS"}
	case p.StepUp && !s.IsSteppedUp(g.now(), p.MaxAge):
		return nil, stepUpRejection(p.MaxAge)
	}
	return &Admission{Claims: c, Session: s}, nil
}

func stepUpRejection(maxAge time.Duration) *Rejection {
	ch := `Bearer error="insufficient_user_authentication", error_description="a stepped-up session is required"`
	if maxAge > 0 {
		ch = `Bearer error="insufficient_user_authentication", error_description="a step-up within the last ` +
			maxAge.String() + ` is required", max_age=` + strconv.FormatInt(int64(maxAge/time.Second), 10)
	}
	return &Rejection{Status: http.StatusForbidden, ErrorCode: "STEP_UP_REQUIRED", Challenge: ch}
}

// authRejection maps an Authenticate error to its answer.
func authRejection(err error) *Rejection {
	switch {
	case errors.Is(err, ErrUnavailable):
		return &Rejection{Status: http.StatusServiceUnavailable, Message: "session store unavailable", Cause: err}
	case !errors.Is(err, ErrInvalidToken):
		return &Rejection{Status: http.StatusInternalServerError, Message: "internal error", Cause: err}
	}
	return &Rejection{Status: http.StatusUnauthorized, Message: "invalid or expired token",
		Challenge: realm + `, error="invalid_token"`, Cause: err}
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
func (ih *IdentityHeaders) Set(h http.Header, a *Admission) {
	StripPrefixedHeaders(h, ih.prefix)
	values := [6]string{a.Claims.Subject, a.Claims.CredentialsType, a.Claims.Identity.ID,
		a.Claims.Identity.Type, strconv.FormatBool(a.SteppedUp()), strconv.FormatInt(a.AuthTime().Unix(), 10)}
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
func (ih *IdentityHeaders) Prepare(r *http.Request, a *Admission) {
	ih.Set(r.Header, a)
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
