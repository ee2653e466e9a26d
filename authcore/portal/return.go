package portal

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/authgate/authgate/authcore"
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

// needParam reads the step-up need a page or form carries: max_age and
// methods, each kept only when well formed.
func needParam(q url.Values) stepUpNeed {
	return stepUpNeed{maxAge: maxAgeParam(q.Get("max_age")), methods: methodsParam(q.Get("methods"))}
}

// methodsParam keeps the known step-up methods of a comma-separated list,
// each once, in their order; anything else is dropped.
func methodsParam(v string) string {
	var kept []string
	for m := range strings.SplitSeq(v, ",") {
		if slices.Contains(stepUpMethods, m) && !slices.Contains(kept, m) {
			kept = append(kept, m)
		}
	}
	return strings.Join(kept, ",")
}

// stepUpMethods are the methods a step-up need may name.
var stepUpMethods = []string{authcore.StepUpOTP, authcore.StepUpPush, authcore.StepUpPasskey}

// accepts reports whether the need counts a step-up by method.
func (n stepUpNeed) accepts(method string) bool {
	return n.methods == "" || slices.Contains(strings.Split(n.methods, ","), method)
}

// onlyPasskey reports whether the need counts a passkey and nothing else.
func (n stepUpNeed) onlyPasskey() bool { return n.methods == authcore.StepUpPasskey }
