package main

import (
	"strings"
	"testing"
	"time"

	redisstore "github.com/authgate/authgate/authcore/store/redis"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// TestRateLimitUsesCaddysClientIP: X-Forwarded-For counts only from a
// trusted proxy; otherwise the connection's address is the client.
func TestRateLimitUsesCaddysClientIP(t *testing.T) {
	body := `{"email":"nobody@example.com","password":{"value":"x"}}`
	for _, tc := range []struct {
		name    string
		servers string
		want3rd int
	}{
		{"untrusted proxy: X-Forwarded-For ignored", "", 429},
		{"trusted proxy: each forwarded client has its own limit", "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := gatewayConfig("memory", usersFile(t), newBackend(t).Addr, "rate_limit login 2 1m")
			cfg = strings.Replace(cfg, "\tauto_https off\n", "\tauto_https off\n\t"+tc.servers+"\n", 1)
			g := startGateway(t, cfg)
			var r response
			for i, xff := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
				r = request(t, "POST", g.URL+"/multi/login_with_password", body, "X-Forwarded-For", xff)
				if i < 2 && r.Status != 403 {
					t.Fatalf("request %d: %d %s", i+1, r.Status, r.Body)
				}
			}
			if r.Status != tc.want3rd {
				t.Fatalf("3rd request: %d %s, want %d", r.Status, r.Body, tc.want3rd)
			}
			if r.Status == 429 && (r.Header.Get("x-ratelimit-limit") != "2" || r.Header.Get("Retry-After") == "") {
				t.Fatalf("429 headers: %v", r.Header)
			}
		})
	}
}

func TestStepUpRoutesAre503WhenRedisIsDown(t *testing.T) {
	redis := storetest.StartRedis(t)
	be := newBackend(t)
	g := startGateway(t, stepUpConfig("redis redis://"+redis.Addr()+"/0", usersFile(t), be.Addr, "sandbox"))
	access := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CONSUMER", "2001")
	redis.Stop()
	// A session the node holds may be served for RevocationWindow after
	// Redis last answered (the proof rule); after that, every route is 503.
	time.Sleep(redisstore.RevocationWindow)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/multi/stepup/challenges/otp/SMS", ""},
		{"POST", "/multi/stepup/challenges/otp/SMS/verify", `{"verificationCode":"123456"}`},
		{"POST", "/multi/stepup/challenges/push/AUTHY", ""},
		{"GET", "/multi/authentication_factors", ""},
		{"GET", "/multi/identities", ""},
		{"GET", "/pay/x", ""},
	} {
		r := request(t, c.method, g.URL+c.path, c.body, bearerH(access)...)
		if r.Status != 503 || r.str("message") == "" {
			t.Errorf("%s %s with Redis down: %d %s", c.method, c.path, r.Status, r.Body)
		}
	}
	redis.Start()
	if r := request(t, "POST", g.URL+"/multi/login_with_password", `{"email":"alice@example.com","password":{"value":"`+demoPassword+`"}}`); r.Status != 200 {
		t.Fatalf("after Redis came back: %d %s", r.Status, r.Body)
	}
}
