package portal

import (
	"net/http"
	"strings"
)

// DefaultCookieName is the configurable part of the session cookie's name.
const DefaultCookieName = "authgate"

// Cookies names the portal's two cookies. Both carry the __Host- prefix,
// which browsers accept only with Secure, Path=/ and no Domain, so no
// other host (a sibling subdomain included) can set or shadow them.
type Cookies struct {
	// Session holds a browser session: "__Host-" + the configured name.
	Session string
	// PreSession binds the sign-in form's CSRF token before there is a
	// session: the session cookie's name + "-pre".
	PreSession string
}

// NewCookies names the cookies for name, the part after "__Host-"
// (DefaultCookieName when empty).
func NewCookies(name string) Cookies {
	if name == "" {
		name = DefaultCookieName
	}
	return Cookies{Session: "__Host-" + name, PreSession: "__Host-" + name + "-pre"}
}

// SessionValue returns the session cookie's value in r, "" when it has
// none.
func (c Cookies) SessionValue(r *http.Request) string {
	return cookieValue(r, c.Session)
}

func cookieValue(r *http.Request, name string) string {
	ck, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return ck.Value
}

// Strip removes both cookies from a request's Cookie headers, keeping
// every other cookie as the client sent it; a header left empty is
// removed. The guard calls it before a request goes to the backend, which
// has no use for authgate's credentials.
func (c Cookies) Strip(h http.Header) {
	values, ok := h["Cookie"]
	if !ok {
		return
	}
	kept := values[:0:0]
	for _, v := range values {
		if !strings.Contains(v, c.Session) {
			kept = append(kept, v)
			continue
		}
		var parts []string
		for part := range strings.SplitSeq(v, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if name != c.Session && name != c.PreSession && strings.TrimSpace(part) != "" {
				parts = append(parts, strings.TrimSpace(part))
			}
		}
		if len(parts) > 0 {
			kept = append(kept, strings.Join(parts, "; "))
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// setCookie sets a cookie with the attributes both cookies have: HttpOnly,
// Secure, SameSite=Lax, Path=/ and no Domain (the __Host- rules), and no
// Max-Age, so it ends with the browser session at the latest. The store
// session behind it has its own idle window and lifetime.
func setCookie(w http.ResponseWriter, name, value string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode})
}

// expireCookie tells the browser to drop a cookie (Max-Age=0, same attributes).
func expireCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}
