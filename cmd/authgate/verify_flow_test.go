package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore/store/storetest"
)

// identityHeaders are the headers authgate_verify answers with and a proxy
// copies to its backend.
var identityHeaders = []string{"X-Authgate-Credentials-Id", "X-Authgate-Credentials-Type", "X-Authgate-Identity-Id",
	"X-Authgate-Identity-Type", "X-Authgate-Stepped-Up", "X-Authgate-Auth-Time"}

// verifyGateway runs authgate with forward-auth endpoints on Redis, the
// Multi API for tokens, and a Caddy forward_auth site in front of be on
// port fwd; it trusts 127.0.0.1 as a proxy.
func verifyGateway(t *testing.T, redisAddr, backendAddr string, fwd int) *gateway {
	t.Helper()
	copyHeaders := strings.Join(identityHeaders, " ")
	return startGateway(t, `{
	admin 127.0.0.1:{ADMIN}
	auto_https off
	servers {
		trusted_proxies static 127.0.0.1/32
	}
	authgate {
		store redis redis://`+redisAddr+`/0
		signing_key `+testSigningKey+`
		users_file `+usersFile(t)+`
		sandbox
	}
}
:{PORT} {
	handle_path /multi/* {
		authgate_api
	}
	handle /verify/pay {
		authgate_verify {
			stepup 5m
		}
	}
	handle /verify/* {
		authgate_verify
	}
}
:`+fmt.Sprint(fwd)+` {
	bind 127.0.0.1
	handle /pay/* {
		forward_auth 127.0.0.1:{PORT} {
			uri /verify/pay
			copy_headers `+copyHeaders+`
		}
		reverse_proxy `+backendAddr+`
	}
	handle {
		forward_auth 127.0.0.1:{PORT} {
			uri /verify/
			copy_headers `+copyHeaders+`
		}
		reverse_proxy `+backendAddr+`
	}
}
`)
}

// nginxServer is the README's nginx recipe (*Any proxy in front*), on the
// given addresses: auth_request to authgate_verify, authgate's challenge
// passed on, and the identity headers copied to the backend with
// auth_request_set. Every identity header is set (an empty value removes
// it), so a client's own never passes; nginx also drops header names with
// underscores by default.
func nginxServer(listen, authgate, backend string) string {
	var set, pass strings.Builder
	for _, h := range identityHeaders {
		v := "$ag_" + strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(h, "X-Authgate-"), "-", "_"))
		fmt.Fprintf(&set, "\t\tauth_request_set %s $upstream_http_%s;\n", v, strings.ToLower(strings.ReplaceAll(h, "-", "_")))
		fmt.Fprintf(&pass, "\t\tproxy_set_header %s %s;\n", h, v)
	}
	return fmt.Sprintf(`server {
	listen %[1]s;

	location = /_authgate {
		internal;
		proxy_pass http://%[2]s/verify/;
		proxy_pass_request_body off;
		proxy_set_header Content-Length "";
		proxy_set_header X-Original-URI $request_uri;
		proxy_set_header X-Forwarded-Method $request_method;
	}
	location = /_authgate_pay {
		internal;
		proxy_pass http://%[2]s/verify/pay;
		proxy_pass_request_body off;
		proxy_set_header Content-Length "";
		proxy_set_header X-Original-URI $request_uri;
		proxy_set_header X-Forwarded-Method $request_method;
	}

	# nginx answers 500 for a subrequest status other than 2xx, 401 and
	# 403: authgate's 503 (store unavailable) is shown as a 503.
	error_page 500 = @authgate_unavailable;
	location @authgate_unavailable {
		add_header Retry-After 1 always;
		return 503 '{"message": "session store unavailable"}';
	}

	location /pay/ {
		auth_request /_authgate_pay;
		# authgate's WWW-Authenticate reaches the client on a 403 too (RFC
		# 9470); nginx passes it on a 401 by itself.
		auth_request_set $ag_challenge $upstream_http_www_authenticate;
		add_header WWW-Authenticate $ag_challenge always;
%[3]s%[4]s		proxy_pass http://%[5]s;
	}
	location / {
		auth_request /_authgate;
		auth_request_set $ag_challenge $upstream_http_www_authenticate;
		add_header WWW-Authenticate $ag_challenge always;
%[3]s%[4]s		proxy_pass http://%[5]s;
	}
}
`, listen, authgate, set.String(), pass.String(), backend)
}

// nginxConfig runs nginxServer in a test's own directory.
func nginxConfig(dir string, listen, authgate int, backendAddr string) string {
	server := nginxServer(fmt.Sprintf("127.0.0.1:%d", listen), fmt.Sprintf("127.0.0.1:%d", authgate), backendAddr)
	return fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
%[2]s}
`, dir, server)
}

// The README's nginx recipe is the config TestForwardAuthThroughNginxAndCaddy
// runs, with the README's addresses.
func TestReadmeNginxRecipeIsTheTestedOne(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const open, end = "<!-- nginx recipe: TestReadmeNginxRecipeIsTheTestedOne -->\n```nginx\n", "```"
	_, rest, ok := strings.Cut(string(readme), open)
	block, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatal("the README has no nginx recipe block")
	}
	if want := nginxServer("80", "127.0.0.1:9091", "127.0.0.1:9000"); block != want {
		t.Errorf("the README's nginx recipe differs from the tested one; want:\n%s", want)
	}
}

// startNginx runs Debian's nginx with conf in the foreground until the
// test ends.
func startNginx(t *testing.T, confFor func(dir string) string, port int) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("nginx is not installed (.ci/run installs it): %v", err)
		}
		t.Skipf("nginx is not installed: %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(confFor(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-g", "daemon off;")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Its workers hold the output pipe too: the whole group is stopped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx said: %s", out.String())
		}
	})
	waitUntil(t, fmt.Sprintf("nginx on :%d", port), func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// portOf is the port of a gateway's URL.
func portOf(t *testing.T, u string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The forward-auth answers through a real nginx and through Caddy's own
// forward_auth (SPEC §13): admitted with the identity headers copied to the
// backend, 401 without a live token, 403 with the RFC 9470 challenge before
// a step-up, 503 while the store is down; a client's own identity headers
// never reach the backend.
func TestForwardAuthThroughNginxAndCaddy(t *testing.T) {
	redis := storetest.StartRedis(t)
	be := newBackend(t)
	fwd, ngx := freePort(t), freePort(t)
	g := verifyGateway(t, redis.Addr(), be.Addr, fwd)
	gwPort := portOf(t, g.URL)
	startNginx(t, func(dir string) string { return nginxConfig(dir, ngx, gwPort, be.Addr) }, ngx)

	access := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CONSUMER", "2001")
	forged := []string{"X-Authgate-Credentials-Id", "9999", "X-Authgate-Stepped-Up", "true"}
	for _, front := range []struct{ name, url string }{
		{"nginx", fmt.Sprintf("http://127.0.0.1:%d", ngx)},
		{"caddy forward_auth", fmt.Sprintf("http://127.0.0.1:%d", fwd)},
	} {
		t.Run(front.name, func(t *testing.T) {
			calls := be.calls.Load()
			r := request(t, "GET", front.url+"/accounts?x=1", "", append(bearerH(access), forged...)...)
			h := be.lastHeaders()
			if r.Status != 200 || be.calls.Load() != calls+1 {
				t.Fatalf("admitted request: %d %s", r.Status, r.Body)
			}
			if h.Get("X-Authgate-Credentials-Id") != "1001" || h.Get("X-Authgate-Identity-Id") != "2001" ||
				h.Get("X-Authgate-Stepped-Up") != "false" || len(h.Values("X-Authgate-Credentials-Id")) != 1 {
				t.Errorf("backend got identity headers %v, want alice's, once each, never the client's", h)
			}
			calls = be.calls.Load()
			r = request(t, "GET", front.url+"/accounts", "", forged...)
			if r.Status != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Bearer realm="authgate"`) {
				t.Errorf("no token: %d %q %s, want 401 with the Bearer challenge", r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
			}
			r = request(t, "GET", front.url+"/pay/p-1", "", bearerH(access)...)
			if r.Status != 403 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="insufficient_user_authentication"`) ||
				!strings.Contains(r.Header.Get("WWW-Authenticate"), "max_age=300") {
				t.Errorf("before step-up: %d %q, want 403 with the RFC 9470 challenge", r.Status, r.Header.Get("WWW-Authenticate"))
			}
			r = request(t, "GET", front.url+"/a/%2e%2e/admin", "", bearerH(access)...)
			if r.Status == 200 {
				t.Errorf("an ambiguous path was admitted through %s", front.name)
			}
			if be.calls.Load() != calls {
				t.Errorf("refused requests reached the backend %d times", be.calls.Load()-calls)
			}
		})
	}

	// Step up, then the payment route passes everywhere.
	if r := request(t, "POST", g.URL+"/multi/stepup/challenges/otp/SMS", "", bearerH(access)...); r.Status != 204 {
		t.Fatalf("issue code: %d %s", r.Status, r.Body)
	}
	if r := request(t, "POST", g.URL+"/multi/stepup/challenges/otp/SMS/verify", `{"verificationCode":"123456"}`, bearerH(access)...); r.Status != 204 {
		t.Fatalf("verify code: %d %s", r.Status, r.Body)
	}
	for _, url := range []string{fmt.Sprintf("http://127.0.0.1:%d/pay/p-1", ngx), fmt.Sprintf("http://127.0.0.1:%d/pay/p-1", fwd)} {
		if r := request(t, "GET", url, "", bearerH(access)...); r.Status != 200 || be.lastHeaders().Get("X-Authgate-Stepped-Up") != "true" {
			t.Errorf("%s after step-up: %d %s, stepped up %q", url, r.Status, r.Body, be.lastHeaders().Get("X-Authgate-Stepped-Up"))
		}
	}

	// The store goes away: 503, and nothing reaches the backend. (A held
	// session may be served for the 10 ms its last proof covers: counting
	// starts at the first 503.)
	redis.Stop()
	for _, url := range []string{fmt.Sprintf("http://127.0.0.1:%d/accounts", ngx), fmt.Sprintf("http://127.0.0.1:%d/accounts", fwd)} {
		waitUntil(t, url+" answers 503", func() bool {
			return request(t, "GET", url, "", bearerH(access)...).Status == 503
		})
		calls := be.calls.Load()
		for range 5 {
			if r := request(t, "GET", url, "", bearerH(access)...); r.Status != 503 || r.Header.Get("Retry-After") == "" {
				t.Errorf("%s with the store down: %d %s, want 503 with Retry-After", url, r.Status, r.Body)
			}
		}
		if be.calls.Load() != calls {
			t.Errorf("%s: with the store down the backend was called %d times", url, be.calls.Load()-calls)
		}
	}
}

// authgate_verify answers the identity in its own response headers, reads
// X-Original-URI only from a trusted proxy, and never echoes a client's
// header.
func TestVerifyAnswersDirectly(t *testing.T) {
	redis := storetest.StartRedis(t)
	be := newBackend(t)
	g := verifyGateway(t, redis.Addr(), be.Addr, freePort(t))
	access := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CONSUMER", "2001")
	r := request(t, "GET", g.URL+"/verify/", "", append(bearerH(access), "X-Authgate-Credentials-Id", "9999", "X-Authgate-Extra", "x")...)
	if r.Status != 200 || r.Header.Get("X-Authgate-Credentials-Id") != "1001" || r.Header.Get("X-Authgate-Extra") != "" ||
		r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("verify: %d %v", r.Status, r.Header)
	}
	// The test's own address is a trusted proxy here, so the original URI
	// it names is the one checked.
	if r := request(t, "GET", g.URL+"/verify/", "", append(bearerH(access), "X-Original-URI", "/a/%2E%2E/admin")...); r.Status != 400 {
		t.Errorf("an ambiguous original URI: %d %s, want 400", r.Status, r.Body)
	}
}
