package authcore

import "strings"

// AmbiguousPath reports why the path of a request target, as the client
// sent it (before any decoding or cleaning), could be read by a backend as
// another route than the one a proxy matched, or "" when it could not.
//
// Caddy matches routes on the decoded, cleaned path and forwards the raw
// one, so /api/pay;/p1, /api/pay./p1 or /api/pay%5cp1 match an
// access-only /api/* route, while a backend that drops ";" parameters or
// trailing dots, or reads "\" as "/", serves /api/pay/p1 from them. Refused
// are: an encoded "/", "\" or "." (%2f, %5c, %2e, any case), a "\", a ";",
// a NUL (raw or %00), a "#" (never part of a request target), and a
// segment that is "." or ".." or ends in ".".
//
// target is the request target (net/http's Request.RequestURI): the query
// is not examined, and an absolute-form target is examined from its path.
func AmbiguousPath(target string) string {
	path := requestPath(target)
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '%':
			if i+2 >= len(path) {
				break
			}
			switch enc := path[i+1 : i+3]; {
			case strings.EqualFold(enc, "2f"), strings.EqualFold(enc, "5c"), strings.EqualFold(enc, "2e"):
				return `an encoded "/", "\" or "."`
			case enc == "00":
				return "an encoded NUL"
			}
		case '\\':
			return `a "\"`
		case ';':
			return `a ";"`
		case 0:
			return "a NUL"
		case '#':
			return `a "#"`
		}
	}
	for seg := range strings.SplitSeq(path, "/") {
		if strings.HasSuffix(seg, ".") {
			return `a ".", ".." or dot-ended segment`
		}
	}
	return ""
}

// requestPath is the path of a request target: origin form (/p?q) or
// absolute form (http://host/p?q); other forms (*, host:port) have none.
func requestPath(target string) string {
	target, _, _ = strings.Cut(target, "?")
	if strings.HasPrefix(target, "/") {
		return target
	}
	_, rest, ok := strings.Cut(target, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[i:]
	}
	return ""
}
