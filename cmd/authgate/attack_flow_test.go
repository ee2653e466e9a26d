package main

// Attacks on the guard through the built binary, by a client that writes
// HTTP/1.1 by hand (no client library normalises what it sends), against
// a backend that records every byte it receives (SPEC §7).

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorded is one request as the backend received it.
type recorded struct {
	Line    string // the request line, as sent
	Raw     string // every byte of the request: line, headers, body, trailers
	Header  http.Header
	Trailer http.Header
	Body    string
}

// recordingBackend is an upstream that parses requests itself from the
// bytes on the wire and keeps them all.
type recordingBackend struct {
	Addr string
	mu   sync.Mutex
	got  []recorded
}

func newRecordingBackend(t *testing.T) *recordingBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &recordingBackend{Addr: l.Addr().String()}
	var conns sync.WaitGroup
	t.Cleanup(func() { l.Close(); conns.Wait() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				b.serve(c)
			}()
		}
	}()
	return b
}

func (b *recordingBackend) serve(c net.Conn) {
	defer c.Close()
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &raw))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body) // to EOF: req.Trailer is filled in
		if err != nil {
			return
		}
		wire := string(raw.Next(raw.Len() - br.Buffered()))
		line, _, _ := strings.Cut(wire, "\r\n")
		b.mu.Lock()
		b.got = append(b.got, recorded{Line: line, Raw: wire, Header: req.Header, Trailer: req.Trailer, Body: string(body)})
		b.mu.Unlock()
		answer, _ := json.Marshal(map[string]string{"path": req.URL.Path})
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer)
	}
}

func (b *recordingBackend) calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.got)
}

func (b *recordingBackend) last(t *testing.T) recorded {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.got) == 0 {
		t.Fatal("the backend received nothing")
	}
	return b.got[len(b.got)-1]
}

// rawRequest sends req, as written, on a new connection to g and reads the
// answer.
func rawRequest(t *testing.T, g *gateway, req string) response {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // a hung exchange fails instead of blocking the suite
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", req, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	_ = json.Unmarshal(body, &r.JSON)
	return r
}

// attackConfig guards /api/* with an access token and /api/pay/* with a
// step-up as well; extra are more site routes.
func attackConfig(users, backend string, extra ...string) string {
	return `{
	admin 127.0.0.1:{ADMIN}
	auto_https off
	authgate {
		store memory
		signing_key ` + testSigningKey + `
		issuer https://auth.test
		users_file ` + users + `
	}
}
:{PORT} {
	handle_path /multi/* {
		authgate_api
	}
	handle /api/pay/* {
		authgate_protect {
			stepup
		}
		reverse_proxy ` + backend + `
	}
	handle /api/* {
		authgate_protect
		reverse_proxy ` + backend + `
	}
` + strings.Join(extra, "\n") + `
}
`
}

// identityLines counts, in every header and trailer line of a raw request,
// the values of each name that has the X-Authgate- prefix (compared as the
// guard compares: any case, "_" read as "-").
func identityLines(raw string) map[string][]string {
	got := map[string][]string{}
	for _, line := range strings.Split(raw, "\r\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		folded := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(name), "_", "-"))
		if strings.HasPrefix(folded, "x-authgate-") {
			got[folded] = append(got[folded], strings.TrimSpace(value))
		}
	}
	return got
}

// assertOnlyOurIdentity checks that the backend received each identity
// header exactly once, with the guard's value, and no other header or
// trailer under the prefix.
func assertOnlyOurIdentity(t *testing.T, rec recorded) {
	t.Helper()
	got := identityLines(rec.Raw)
	want := map[string]string{
		"x-authgate-credentials-id": "1001", "x-authgate-credentials-type": "ROOT",
		"x-authgate-identity-id": "3001", "x-authgate-identity-type": "CORPORATE",
		"x-authgate-stepped-up": "false",
	}
	for name, v := range want {
		if vs := got[name]; len(vs) != 1 || vs[0] != v {
			t.Errorf("backend received %s = %q, want exactly one %q\n%s", name, vs, v, rec.Raw)
		}
	}
	if vs := got["x-authgate-auth-time"]; len(vs) != 1 || vs[0] == "" {
		t.Errorf("backend received x-authgate-auth-time = %q, want exactly one value\n%s", vs, rec.Raw)
	}
	for name := range got {
		if _, ok := want[name]; !ok && name != "x-authgate-auth-time" {
			t.Errorf("backend received the client's %s\n%s", name, rec.Raw)
		}
	}
	for name := range rec.Trailer {
		if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(name, "_", "-")), "x-authgate-") {
			t.Errorf("backend was announced or sent the trailer %s\n%s", name, rec.Raw)
		}
	}
}

func TestClientTrailersAndConnectionCannotTouchIdentityHeaders(t *testing.T) {
	be := newRecordingBackend(t)
	g := startGateway(t, attackConfig(usersFile(t), be.Addr))
	access := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CORPORATE", "3001")
	head := "Host: gateway.test\r\nAuthorization: Bearer " + access + "\r\n"
	forged := "X-Authgate-Credentials-Id: 9999\r\nX-Authgate-Identity-Id: 7777\r\nx_authgate_stepped_up: true\r\n"
	chunked := "Transfer-Encoding: chunked\r\n"
	body := "5\r\nhello\r\n6\r\n world\r\n0\r\n"

	cases := []struct {
		name, req string
		trailer   string // a legitimate trailer that must still arrive
	}{
		{name: "declared trailers",
			req: "POST /api/x HTTP/1.1\r\n" + head + chunked +
				"Trailer: X-Authgate-Credentials-Id, X-Authgate-Identity-Id, x_authgate_stepped_up, X-Checksum\r\n" +
				"Connection: close\r\n\r\n" + body + forged + "X-Checksum: abc\r\n\r\n",
			trailer: "abc"},
		{name: "undeclared trailers",
			req: "POST /api/x HTTP/1.1\r\n" + head + chunked + "Connection: close\r\n\r\n" + body + forged + "\r\n"},
		{name: "odd-cased declaration, some undeclared",
			req: "POST /api/x HTTP/1.1\r\n" + head + chunked +
				"tRaIlEr: x-AUTHGATE-credentials-ID\r\ntrailer: X-Checksum,X_AUTHGATE_IDENTITY_TYPE\r\n" +
				"Connection: close\r\n\r\n" + body +
				"x-AUTHGATE-credentials-ID: 9999\r\nX_AUTHGATE_IDENTITY_TYPE: CONSUMER\r\nX-Authgate-Auth-Time: 1\r\nX-Checksum: abc\r\n\r\n",
			trailer: "abc"},
		{name: "Connection names identity headers",
			req: "GET /api/x HTTP/1.1\r\n" + head +
				"Connection: X-Authgate-Stepped-Up, X-Authgate-Identity-Type, X-Authgate-Credentials-Id\r\n\r\n"},
		{name: "Connection lists them among hop-by-hop names, any case",
			req: "GET /api/x HTTP/1.1\r\n" + head +
				"Connection: keep-alive, x-authgate-identity-id ,Keep-Alive, X-AUTHGATE-CREDENTIALS-TYPE, te\r\nTE: trailers\r\n\r\n"},
		{name: "Connection in several lines with _ names",
			req: "GET /api/x HTTP/1.1\r\n" + head +
				"Connection: x_authgate_auth_time\r\nConnection: X-Authgate-Auth-Time\r\nConnection: close, X-Authgate-Credentials-Id\r\n\r\n"},
		{name: "forged headers named in Connection",
			req: "GET /api/x HTTP/1.1\r\n" + head + forged +
				"Connection: X-Authgate-Credentials-Id, X-Authgate-Identity-Id, x_authgate_stepped_up, close\r\n\r\n"},
		{name: "chunked POST with forged headers, trailers and Connection",
			req: "POST /api/x HTTP/1.1\r\n" + head + forged + chunked +
				"Trailer: X-Authgate-Identity-Type\r\nConnection: X-Authgate-Identity-Type, X-Authgate-Credentials-Type, close\r\n\r\n" +
				body + "X-Authgate-Identity-Type: CONSUMER\r\n" + forged + "\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			calls := be.calls()
			r := rawRequest(t, g, tc.req)
			if r.Status != 200 || r.str("path") != "/api/x" {
				t.Fatalf("guarded request: %d %s", r.Status, r.Body)
			}
			if be.calls() != calls+1 {
				t.Fatalf("the backend was called %d times, want once", be.calls()-calls)
			}
			rec := be.last(t)
			assertOnlyOurIdentity(t, rec)
			if strings.HasPrefix(tc.req, "POST") && rec.Body != "hello world" {
				t.Errorf("backend received the body %q, want %q", rec.Body, "hello world")
			}
			if tc.trailer != "" && rec.Trailer.Get("X-Checksum") != tc.trailer {
				t.Errorf("the client's X-Checksum trailer did not reach the backend: %q\n%s", rec.Trailer, rec.Raw)
			}
		})
	}
}

// TestClientTrailersOverH2CCannotTouchIdentityHeaders: the same over
// cleartext HTTP/2, where trailers travel in a HEADERS frame.
func TestClientTrailersOverH2CCannotTouchIdentityHeaders(t *testing.T) {
	be := newRecordingBackend(t)
	cfg := strings.Replace(attackConfig(usersFile(t), be.Addr), "auto_https off",
		"auto_https off\n\tservers {\n\t\tprotocols h1 h2c\n\t}", 1)
	g := startGateway(t, cfg)
	access := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CORPORATE", "3001")
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	t.Cleanup(client.CloseIdleConnections)

	for _, declared := range []bool{true, false} {
		t.Run(fmt.Sprintf("declared=%v", declared), func(t *testing.T) {
			forged := http.Header{"X-Authgate-Credentials-Id": {"9999"}, "X-Authgate-Identity-Id": {"7777"},
				"X_authgate_stepped_up": {"true"}, "X-Checksum": {"abc"}}
			body := &trailerBody{r: strings.NewReader("hello world")}
			req, err := http.NewRequest("POST", g.URL+"/api/x", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+access)
			req.Header.Set("X-Authgate-Identity-Type", "CONSUMER")
			req.Trailer = http.Header{}
			if declared {
				for k := range forged {
					req.Trailer[k] = nil
				}
			} else {
				req.Trailer["X-Checksum"] = nil
			}
			// The client sends the trailers it finds in req.Trailer once the
			// body has ended.
			body.atEOF = func() { maps.Copy(req.Trailer, forged) }
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
				t.Fatalf("%s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
			}
			rec := be.last(t)
			assertOnlyOurIdentity(t, rec)
			if rec.Body != "hello world" || rec.Trailer.Get("X-Checksum") != "abc" {
				t.Errorf("backend received body %q and trailers %q, want the body and X-Checksum: abc", rec.Body, rec.Trailer)
			}
		})
	}
}

// trailerBody is a request body of unknown length that calls atEOF when
// it ends.
type trailerBody struct {
	r     io.Reader
	atEOF func()
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && b.atEOF != nil {
		b.atEOF()
		b.atEOF = nil
	}
	return n, err
}

// ambiguousPaths are raw paths a backend could read as another route than
// the one Caddy matched on the cleaned path; each stays under /api/ once
// cleaned, so that with raw_paths allow it reaches the same route.
var ambiguousPaths = []string{
	"/api/pay;/p1", "/api/pay./p1", "/api/pay%5cp1", "/api/pay%5Cp1", "/api/pay%2fp1", "/api/pay%2Fp1",
	"/api/pay%2ep1", "/api/x/%2E%2e/pay/p1", "/api/x/%2e/pay/p1", "/api/./pay/p1", "/api/x/../pay/p1",
	"/api/pay%00p1", `/api/pay\p1`, `/api/x\..\pay/p1`, "/api/pay/p1.", "/api/pay../p1", "/api/pay/.",
	"/api/pay;jsessionid=1/p1", "/api/x;/../pay/p1", "/api/pay/p1;",
}

func TestAmbiguousRawPathsAreRefusedBeforeTokenWork(t *testing.T) {
	be := newRecordingBackend(t)
	g := startGateway(t, attackConfig(usersFile(t), be.Addr))
	access := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CORPORATE", "3001")
	for _, path := range ambiguousPaths {
		for _, auth := range []string{"", "Authorization: Bearer " + access + "\r\n"} {
			t.Run(fmt.Sprintf("%s token=%v", path, auth != ""), func(t *testing.T) {
				calls := be.calls()
				r := rawRequest(t, g, "GET "+path+" HTTP/1.1\r\nHost: gateway.test\r\n"+auth+"Connection: close\r\n\r\n")
				if r.Status != 400 || r.str("message") == "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
					t.Fatalf("GET %s: %d %q %s, want 400 {\"message\"}", path, r.Status, r.Header.Get("Content-Type"), r.Body)
				}
				if r.Header.Get("WWW-Authenticate") != "" {
					t.Errorf("GET %s: the refusal carries a token challenge %q", path, r.Header.Get("WWW-Authenticate"))
				}
				if be.calls() != calls {
					t.Fatalf("GET %s reached the backend", path)
				}
			})
		}
	}
	// Neither the query nor ordinary names trip the rule.
	for _, path := range []string{"/api/x?next=/a;b%2f..%5c", "/api/pay.json", "/api/%41bc", "/api/x/.well-known/y", "/api/v1.2/x"} {
		r := rawRequest(t, g, "GET "+path+" HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer "+access+"\r\nConnection: close\r\n\r\n")
		if r.Status != 200 {
			t.Errorf("GET %s: %d %s, want 200", path, r.Status, r.Body)
		}
	}
}

func TestRawPathsAllowPassesAmbiguousPaths(t *testing.T) {
	be := newRecordingBackend(t)
	g := startGateway(t, attackConfig(usersFile(t), be.Addr, `	handle /lax/* {
		authgate_protect {
			raw_paths allow
		}
		reverse_proxy `+be.Addr+`
	}`))
	access := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CORPORATE", "3001")
	for _, path := range ambiguousPaths {
		lax := "/lax/" + strings.TrimPrefix(path, "/api/")
		t.Run(lax, func(t *testing.T) {
			calls := be.calls()
			r := rawRequest(t, g, "GET "+lax+" HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer "+access+"\r\nConnection: close\r\n\r\n")
			if r.Status != 200 || be.calls() != calls+1 {
				t.Fatalf("GET %s with raw_paths allow: %d %s, backend calls %d", lax, r.Status, r.Body, be.calls()-calls)
			}
			assertOnlyOurIdentity(t, be.last(t))
			// Without a token it is still the guard's 401, not a 400.
			r = rawRequest(t, g, "GET "+lax+" HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n")
			if r.Status != 401 {
				t.Fatalf("GET %s with raw_paths allow and no token: %d %s", lax, r.Status, r.Body)
			}
		})
	}
}

// resign returns tok with its header replaced by header, signed again with
// the HS256 test key: a correctly signed token of the same live session.
func resign(t *testing.T, tok string, header map[string]any) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(testSigningKey)
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := json.Marshal(header)
	input := base64.RawURLEncoding.EncodeToString(hdr) + "." + strings.Split(tok, ".")[1]
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestSignedTokenWithCritOrForeignTypIsInvalid(t *testing.T) {
	be := newRecordingBackend(t)
	g := startGateway(t, attackConfig(usersFile(t), be.Addr))
	access := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CORPORATE", "3001")
	var issued map[string]any
	if err := json.Unmarshal([]byte(decodeJWTHeader(t, access)), &issued); err != nil {
		t.Fatal(err)
	}
	kid := issued["kid"]
	cases := []struct {
		name   string
		header map[string]any
		admit  bool
	}{
		{"as issued", map[string]any{"alg": "HS256", "kid": kid, "typ": "JWT"}, true},
		{"typ absent", map[string]any{"alg": "HS256", "kid": kid}, true},
		{"typ jwt in lower case", map[string]any{"alg": "HS256", "kid": kid, "typ": "jwt"}, true},
		{"crit with an unknown extension", map[string]any{"alg": "HS256", "kid": kid, "typ": "JWT", "crit": []string{"x-unknown"}}, false},
		{"crit naming a registered claim", map[string]any{"alg": "HS256", "kid": kid, "crit": []string{"exp"}}, false},
		{"crit empty", map[string]any{"alg": "HS256", "kid": kid, "crit": []string{}}, false},
		{"crit null", map[string]any{"alg": "HS256", "kid": kid, "crit": nil}, false},
		{"typ at+jwt", map[string]any{"alg": "HS256", "kid": kid, "typ": "at+jwt"}, false},
		{"typ JOSE", map[string]any{"alg": "HS256", "kid": kid, "typ": "JOSE"}, false},
		{"typ not a string", map[string]any{"alg": "HS256", "kid": kid, "typ": 1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			calls := be.calls()
			r := request(t, "GET", g.URL+"/api/x", "", "Authorization", "Bearer "+resign(t, access, tc.header))
			if tc.admit {
				if r.Status != 200 || be.calls() != calls+1 {
					t.Fatalf("%d %s, want 200", r.Status, r.Body)
				}
				return
			}
			if r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Bearer realm="authgate", error="invalid_token"` || r.str("message") == "" {
				t.Fatalf("%d %q %s, want 401 invalid_token", r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
			}
			if be.calls() != calls {
				t.Fatal("the backend was called")
			}
		})
	}
}

// TestExampleRedactsQueryTokensAndDropsSlowHeaders runs Caddyfile.example
// (ports 8080, 9000 and 2019, as the README walk-through does): a token a
// client puts in the query never lands in its access log, and a client
// that trickles its headers is disconnected (read_header).
func TestExampleRedactsQueryTokensAndDropsSlowHeaders(t *testing.T) {
	demo := exec.Command(binary, "run", "--config", "Caddyfile.example")
	demo.Dir = "../.."
	logs := &syncBuffer{}
	demo.Stdout, demo.Stderr = logs, logs
	demo.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gateway{URL: "http://localhost:8080", cmd: demo, logs: logs}
	t.Cleanup(g.stop)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(g.URL + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not start (are ports 8080, 9000 and 2019 free?): %v\n%s", err, logs)
		}
	}
	// A slowloris client: a request line and one header, then nothing.
	slow, err := net.Dial("tcp", "localhost:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := io.WriteString(slow, "GET /api/me HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1"); err != nil {
		t.Fatal(err)
	}

	const secret = "eyJhbGciOiJIUzI1NiJ9.query-token-secret.sig"
	for _, path := range []string{"/api/me?access_token=" + secret, "/api/me?a=1&access_token=" + secret + "&b=2", "/nope?access_token=" + secret} {
		if r := request(t, "GET", g.URL+path, ""); r.Status != 401 && r.Status != 404 {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}
	for deadline := time.Now().Add(hangBound); strings.Count(logs.String(), "access_token=REDACTED") < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the access log has no redacted line for each request:\n%s", logs)
		}
	}
	if strings.Contains(logs.String(), "query-token-secret") {
		t.Fatalf("a query token reached the log:\n%s", logs)
	}

	// The server ends the slow exchange (a 408 or a bare close); the read
	// deadline only keeps a server that never does from hanging the test.
	_ = slow.SetReadDeadline(time.Now().Add(time.Minute))
	_, err = io.Copy(io.Discard, slow)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a connection that never finished its headers was still open after a minute")
	}
}
