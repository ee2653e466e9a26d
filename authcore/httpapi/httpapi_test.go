package httpapi_test

import (
	"strings"
	"testing"

	"github.com/authgate/authgate/authcore/httpapi"
)

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{
		"Bearer abc.def.ghi", "bearer abc", "BEARER abc", "Bearer  abc  ", "Bearer\tabc", "Bearer ",
		"Bearer", "", " Bearer abc", "Basic dXNlcjpwYXNz", "Bearer \u00a0abc\u2003", "Bearer \xff\xfe",
		"Bearer a b c", "Bearer\x00abc", "bEaReR " + strings.Repeat("x", 10000), "Bearer \r\n abc",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, ok := httpapi.BearerToken(header)
		if !ok {
			if tok != "" {
				t.Fatalf("BearerToken(%q) = %q, false: a token with !ok", header, tok)
			}
			return
		}
		if tok == "" || tok != strings.TrimSpace(tok) {
			t.Fatalf("BearerToken(%q) = %q: empty or with surrounding spaces", header, tok)
		}
		if len(header) < 7 || !strings.EqualFold(header[:7], "bearer ") {
			t.Fatalf("BearerToken(%q) accepted a header without the Bearer scheme", header)
		}
		if !strings.Contains(header, tok) {
			t.Fatalf("BearerToken(%q) = %q, which is not in the header", header, tok)
		}
	})
}
