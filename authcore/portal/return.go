package portal

import (
	"net/url"
	"strconv"
	"strings"
)

// maxReturnLen bounds a return path: longer ones are not kept.
const maxReturnLen = 2048

// safeReturn keeps a return path only when a browser can only read it as
// a path of this site: it starts with "/" and then neither "/" nor "\"
// (which browsers read as another host), holds no backslash, and only
// printable ASCII (no control characters, spaces or raw non-ASCII bytes),
// also once percent-decoded. Anything else becomes "/".
func safeReturn(v string) string {
	if v == "" || len(v) > maxReturnLen || v[0] != '/' || (len(v) > 1 && (v[1] == '/' || v[1] == '\\')) ||
		strings.IndexByte(v, '\\') >= 0 || !printableASCII(v) {
		return "/"
	}
	decoded, err := url.PathUnescape(v)
	if err != nil || strings.IndexByte(decoded, '\\') >= 0 || hasControl(decoded) {
		return "/"
	}
	return v
}

func printableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return false
		}
	}
	return true
}

func hasControl(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < ' ' || v[i] == 0x7f {
			return true
		}
	}
	return false
}

// maxAgeParam keeps a max_age of digits (seconds), which the step-up
// pages only carry along; anything else is dropped.
func maxAgeParam(v string) string {
	if n, err := strconv.ParseUint(v, 10, 32); err != nil || n == 0 {
		return ""
	}
	return v
}
