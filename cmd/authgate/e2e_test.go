package main

// End-to-end tests: the real authgate binary (Caddy with our modules),
// started from a Caddyfile, driven over HTTP the way a user would.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// binary is the authgate binary built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "authgate-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "authgate")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building authgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a process's output for log assertions.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gateway is a running authgate process.
type gateway struct {
	URL  string
	cmd  *exec.Cmd
	logs *syncBuffer
}

// startGateway runs the binary with a Caddyfile in which {PORT} and
// {ADMIN} are replaced by free ports, and waits until it serves.
func startGateway(t *testing.T, caddyfile string) *gateway {
	t.Helper()
	return startGatewayAdapter(t, caddyfile, "caddyfile")
}

func startGatewayAdapter(t *testing.T, config, adapter string) *gateway {
	t.Helper()
	return startGatewayOn(t, config, adapter, freePort(t), freePort(t))
}

// startGatewayFixedPorts starts a Caddyfile on the given ports, for tests
// that talk to the admin endpoint.
func startGatewayFixedPorts(t *testing.T, caddyfile string, port, admin int) *gateway {
	t.Helper()
	return startGatewayOn(t, caddyfile, "caddyfile", port, admin)
}

func startGatewayOn(t *testing.T, config, adapter string, port, admin int) *gateway {
	t.Helper()
	config = strings.NewReplacer("{PORT}", fmt.Sprint(port), "{ADMIN}", fmt.Sprint(admin)).Replace(config)
	path := filepath.Join(t.TempDir(), "config."+adapter)
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateway{URL: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &syncBuffer{}}
	args := []string{"run", "--config", path}
	if adapter != "json" {
		args = append(args, "--adapter", adapter)
	}
	g.cmd = exec.Command(binary, args...)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	g.cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(g.URL + "/")
		if err == nil {
			resp.Body.Close()
			return g
		}
		if time.Now().After(deadline) || g.cmd.ProcessState != nil {
			t.Fatalf("gateway did not start: %v\n%s", err, g.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hangBound bounds each wait for a condition in these tests. It only stops
// a hang: a loaded machine that is slow to get there still passes.
const hangBound = 30 * time.Second

// waitUntil polls cond until it holds, and fails the test, naming what it
// waited for, when it still does not after hangBound.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(hangBound); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", hangBound, what)
		}
	}
}

func decodeJWTHeader(t *testing.T, tok string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (g *gateway) stop() {
	if g.cmd.Process == nil || g.cmd.ProcessState != nil {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-done
	}
}

// backend is a stand-in upstream that records what reaches it.
type backend struct {
	URL   string
	Addr  string
	calls atomic.Int64
	mu    sync.Mutex
	last  http.Header
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		b.mu.Lock()
		b.last = r.Header.Clone()
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	b.URL, b.Addr = srv.URL, strings.TrimPrefix(srv.URL, "http://")
	return b
}

func (b *backend) lastHeaders() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

func request(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	_ = json.Unmarshal(raw, &r.JSON)
	return r
}

func (r response) str(key string) string {
	s, _ := r.JSON[key].(string)
	return s
}

const testSigningKey = "YXV0aGdhdGUtZTJlLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmctb2s=" // 36 bytes

// demoPassword is the password of the test users; demoHash is its bcrypt hash.
const (
	demoPassword = "Demo-Pass-123"
	demoHash     = "$2a$10$sTiPAu0YBTUXvwzTQGjgvOPIBvHHsh/Olryw4fpXjZmEauQhjVxS2"
)

// usersFile writes the test users.
func usersFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.json")
	data := `{"users":[
	 {"id":"1001","credentialsType":"ROOT","email":"alice@example.com","password":"` + demoHash + `",
	  "identities":[{"type":"CONSUMER","id":"2001","name":"Alice"},{"type":"CORPORATE","id":"3001","name":"Acme"}],
	  "factors":{"otp":["SMS"],"push":["AUTHY"]},"phone":"+35699000001"},
	 {"id":"1002","credentialsType":"USER","email":"bob@example.com","password":"` + demoHash + `",
	  "identities":[{"type":"CORPORATE","id":"3001","name":"Acme"}]}
	]}`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
