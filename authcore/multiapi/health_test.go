package multiapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/authtest"
	"github.com/authgate/authgate/authcore/store/redis"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// GET /health needs neither a token nor the api-key, and says whether
// the store answers (SPEC §10).
func TestHealthOnTheMemoryStore(t *testing.T) {
	srv := newServer(t, "the-api-key")
	resp, body, raw := do(t, srv, call{method: "GET", path: "/health"})
	if resp.StatusCode != http.StatusOK || body["status"] != "ok" || body["store"] != "ok" || len(body) != 2 {
		t.Fatalf("GET /health = %d %s, want 200 {status: ok, store: ok}", resp.StatusCode, raw)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("request-ref") == "" {
		t.Errorf("headers %v", resp.Header)
	}
	if resp, _, _ := do(t, srv, call{method: "POST", path: "/health"}); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /health = %d, want 405", resp.StatusCode)
	}
}

// With Redis stopped, /health and the routes that need the store answer
// 503, the outage is logged once however many requests it refuses, and
// once more when Redis is back, when /health is 200 again by itself.
func TestHealthAndQuietOutageOnRedis(t *testing.T) {
	rs := storetest.StartRedis(t)
	o, err := redis.Parse("redis://" + rs.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	store := redis.Open(o, "health:")
	t.Cleanup(func() { _ = store.Close() })
	core, logs := observer.New(zap.InfoLevel)
	clk := authtest.NewClock(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)) // the outage's 10 s never pass
	srv := newServerWith(t, func(opts *authcore.Options) {
		opts.Store, opts.Logger, opts.Now = store, zap.New(core), clk.Now
		opts.RateLimits = map[string]authcore.RateLimit{}
	})
	health := func() (int, map[string]any) {
		resp, body, _ := do(t, srv, call{method: "GET", path: "/health"})
		return resp.StatusCode, body
	}
	if code, body := health(); code != http.StatusOK || body["store"] != "ok" {
		t.Fatalf("GET /health with Redis up = %d %v", code, body)
	}

	rs.Stop()
	code, body := health()
	if code != http.StatusServiceUnavailable || body["status"] != "unavailable" || body["store"] != "unavailable" {
		t.Fatalf("GET /health with Redis down = %d %v, want 503 {status: unavailable, store: unavailable}", code, body)
	}
	const logins = 30
	for range logins {
		resp, _, raw := do(t, srv, call{method: "POST", path: "/login_with_password",
			body: `{"email": "alice@example.com", "password": {"value": "` + password + `"}}`})
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("login with Redis down = %d %s, want 503 with Retry-After", resp.StatusCode, raw)
		}
	}
	if n := logs.FilterMessageSnippet("store").Len(); n != 1 {
		t.Errorf("%d refused requests logged %d store lines, want the outage's first line only", logins+1, n)
	}

	rs.Start()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for code, _ := health(); code != http.StatusOK; code, _ = health() {
		if ctx.Err() != nil {
			t.Fatalf("GET /health stayed %d after Redis came back", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ended := logs.FilterMessage("session store available again").All()
	// The health checks made while Redis came back were refused too.
	if len(ended) != 1 || ended[0].ContextMap()["refused"].(int64) < logins+1 {
		t.Errorf("end of outage lines %v, want one counting at least %d refused requests", ended, logins+1)
	}
}

// A password change through /passwords/update is one audit line (SPEC
// §10), with the request's id and the user, never the passwords.
func TestPasswordChangeWritesOneAuditLine(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	srv := newServerWith(t, func(o *authcore.Options) {
		o.Logger = zap.New(core)
		o.RateLimits = map[string]authcore.RateLimit{}
	})
	_, body, raw := do(t, srv, call{method: "POST", path: "/login_with_password",
		body: `{"email": "alice@example.com", "password": {"value": "` + password + `"}}`})
	token, _ := body["token"].(string)
	if token == "" {
		t.Fatalf("login: %s", raw)
	}
	before := logs.Len()
	resp, _, raw := do(t, srv, call{method: "POST", path: "/passwords/update", headers: map[string]string{"Authorization": "Bearer " + token},
		body: `{"oldPassword": {"value": "` + password + `"}, "newPassword": {"value": "Brand-New-Pass-9"}}`})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("passwords/update = %d %s", resp.StatusCode, raw)
	}
	lines := logs.All()[before:]
	if len(lines) != 1 || lines[0].Message != "password changed" || lines[0].ContextMap()["credentials_id"] != "1001" ||
		lines[0].ContextMap()["request_ref"] == "" {
		t.Fatalf("a password change wrote %d lines: %v, want one \"password changed\" line for 1001", len(lines), lines)
	}
}
