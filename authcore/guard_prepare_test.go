package authcore

import (
	"bufio"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testAdmission() *Decision {
	now := time.Unix(1_800_000_000, 0)
	return &Decision{Claims: testClaims(now), Session: &Session{Created: now}}
}

func TestPrepareDropsPrefixedNamesFromConnectionAndTrailer(t *testing.T) {
	cases := []struct {
		name string
		in   []string
		want []string // nil: the header is removed
	}{
		{"only ours", []string{"X-Authgate-Stepped-Up, X-Authgate-Identity-Type"}, nil},
		{"among hop-by-hop names", []string{"keep-alive, x-authgate-identity-id ,Upgrade"}, []string{"keep-alive, Upgrade"}},
		{"_ form and any case", []string{"X_AUTHGATE_AUTH_TIME,\tclose"}, []string{"close"}},
		{"several values", []string{"close", "x-authgate-credentials-id", "te, X-Authgate-Credentials-Type"}, []string{"close", "te"}},
		{"none of ours", []string{"keep-alive, Upgrade"}, []string{"keep-alive, Upgrade"}},
		{"empty names", []string{" , ,x-authgate-credentials-id, "}, nil},
		{"a longer name that starts like ours", []string{"X-Authgate-Anything"}, nil},
		{"a name the prefix does not start", []string{"X-Authgat, Authgate-X"}, []string{"X-Authgat, Authgate-X"}},
	}
	ih := NewIdentityHeaders(DefaultHeaderPrefix)
	for _, tc := range cases {
		for _, key := range []string{"Connection", "Trailer"} {
			t.Run(key+" "+tc.name, func(t *testing.T) {
				r, _ := http.NewRequest("GET", "/api/x", nil)
				r.Header[key] = append([]string(nil), tc.in...)
				ih.Prepare(r, testAdmission())
				got, ok := r.Header[key]
				if tc.want == nil && ok || tc.want != nil && !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("%s %q became %q (present %v), want %q", key, tc.in, got, ok, tc.want)
				}
				if v := r.Header.Values("X-Authgate-Credentials-Id"); len(v) != 1 || v[0] != "1001" {
					t.Fatalf("identity header %q", v)
				}
			})
		}
	}
}

func TestPrepareRemovesPrefixedTrailersDeclaredOrArrivingAtEOF(t *testing.T) {
	raw := "POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n" +
		"Trailer: X-Authgate-Credentials-Id, x_authgate_stepped_up, X-Checksum\r\n\r\n" +
		"5\r\nhello\r\n0\r\n" +
		"X-Authgate-Credentials-Id: 9999\r\nx_authgate_stepped_up: true\r\nX-AUTHGATE-IDENTITY-ID: 7777\r\nX-Checksum: abc\r\n\r\n"
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	NewIdentityHeaders(DefaultHeaderPrefix).Prepare(r, testAdmission())
	declared := make([]string, 0, len(r.Trailer))
	for k := range r.Trailer {
		declared = append(declared, k)
	}
	if !reflect.DeepEqual(declared, []string{"X-Checksum"}) {
		t.Fatalf("declared trailers after Prepare: %q, want only X-Checksum", declared)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil || string(body) != "hello" {
		t.Fatalf("body %q, %v", body, err)
	}
	if len(r.Trailer) != 1 || r.Trailer.Get("X-Checksum") != "abc" {
		t.Fatalf("trailers at EOF: %q, want only X-Checksum: abc", r.Trailer)
	}
	if err := r.Body.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPrepareLeavesBodiesWithoutTrailersAlone(t *testing.T) {
	ih := NewIdentityHeaders(DefaultHeaderPrefix)
	get, _ := http.NewRequest("GET", "/api/x", nil)
	ih.Prepare(get, testAdmission())
	if get.Body != nil {
		t.Fatalf("a request without a body got one: %T", get.Body)
	}
	sized, _ := http.NewRequest("POST", "/api/x", strings.NewReader("hello"))
	body := sized.Body
	ih.Prepare(sized, testAdmission())
	if sized.Body != body {
		t.Fatal("an HTTP/1.1 body of known length, which cannot carry trailers, was wrapped")
	}
}
