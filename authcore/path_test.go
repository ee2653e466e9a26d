package authcore

import "testing"

func TestAmbiguousPathsAreNamed(t *testing.T) {
	ambiguous := []string{
		"/api/pay;/p1", "/api/pay;jsessionid=1", "/api/pay/p1;", "/;",
		"/api/pay./p1", "/api/pay/p1.", "/api/pay../p1", "/api/pay...", "/.", "/api/.", "/api/./pay", "/api/x/../pay",
		"/..", "/api/pay/.?x=1",
		"/api/pay%5cp1", "/api/pay%5Cp1", "/api/pay%2fp1", "/api/pay%2Fp1", "/api/pay%2ep1", "/api/pay%2Ep1",
		"/api/x/%2E%2e/pay", "/api/%2e/pay", "/api/pay%252f%2f",
		"/api/pay%00p1", "/api/pay\x00p1",
		`/api/pay\p1`, `/api\..\pay`, `/\api`,
		"/api/pay#/p1",
		"http://gw.example/api/pay;/p1", "https://gw.example:8443/api/./pay?x", "HTTP://gw/api/pay%2fp1",
	}
	for _, p := range ambiguous {
		if AmbiguousPath(p) == "" {
			t.Errorf("AmbiguousPath(%q) = \"\", want a reason", p)
		}
	}
	plain := []string{
		"/", "/api/pay/p1", "/api/pay.json", "/api/v1.2/x", "/api/.well-known/x", "/api/..x/y", "/api/%41bc",
		"/api/pay%20p1", "/api/pay%2", "/api/pay%", "/api/pay%25", "/api/pay%3Bp1", "/api/x%e2%82%ac", "//api//pay",
		"/api/x?next=/a;b%2f..%5c\\", "/api/x?.", "/api/x?", "", "*", "gw.example:443",
		"http://gw.example", "http://gw.example?x=/./", "http://gw.example/api/pay/p1?a=;",
	}
	for _, p := range plain {
		if r := AmbiguousPath(p); r != "" {
			t.Errorf("AmbiguousPath(%q) = %q, want \"\"", p, r)
		}
	}
}

func TestAmbiguousPathReasonSaysWhat(t *testing.T) {
	cases := map[string]string{
		"/api/pay;/p1":   `a ";"`,
		`/api/pay\p1`:    `a "\"`,
		"/api/pay%2Fp1":  `an encoded "/", "\" or "."`,
		"/api/pay%00":    "an encoded NUL",
		"/api/pay./p1":   `a ".", ".." or dot-ended segment`,
		"/api/../pay/p1": `a ".", ".." or dot-ended segment`,
	}
	for path, want := range cases {
		if got := AmbiguousPath(path); got != want {
			t.Errorf("AmbiguousPath(%q) = %q, want %q", path, got, want)
		}
	}
}
