package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore/store/storetest"
)

// TestStoreOutageThroughTheBinary: with Redis stopped, GET /health, logins,
// guarded requests and the Manage API answer 503; the outage is a few log
// lines for all of them, never one a request; the refused logins and the
// Manage requests are counted; once Redis is back, /health is 200 again by
// itself and the end of the outage is logged (SPEC §10).
func TestStoreOutageThroughTheBinary(t *testing.T) {
	redis := storetest.StartRedis(t)
	be := newBackend(t)
	port, admin := freePort(t), freePort(t)
	config := adminConfig(redis.Addr(), manageUsersFile(t), be.Addr)
	g := startGatewayFixedPorts(t, config, port, admin)
	health := func() response { return request(t, "GET", g.URL+"/multi/health", "") }
	if r := health(); r.Status != 200 || r.JSON["status"] != "ok" || r.JSON["store"] != "ok" {
		t.Fatalf("GET /health with Redis up: %d %s", r.Status, r.Body)
	}
	access := accessToken(t, g, loginAs(t, g, "bob@example.com"), "CORPORATE", "3001")
	if r := request(t, "GET", g.URL+"/api/x", "", bearerH(access)...); r.Status != 200 {
		t.Fatalf("guarded request with Redis up: %d %s", r.Status, r.Body)
	}

	redis.Stop()
	before := len(g.logs.String())
	const rounds = 20
	for range rounds {
		for _, r := range []response{
			request(t, "POST", g.URL+"/multi/login_with_password", `{"email":"bob@example.com","password":{"value":"`+demoPassword+`"}}`),
			request(t, "GET", g.URL+"/api/x", "", bearerH(access)...),
			request(t, "POST", g.URL+"/manage/v2/user/bob/validate/password", `{"password":"`+demoPassword+`"}`, "Authorization", basicAuth("crm")),
			health(),
		} {
			if r.Status != 503 {
				t.Fatalf("with Redis down: %d %s", r.Status, r.Body)
			}
		}
	}
	if be.calls.Load() != 1 {
		t.Errorf("the backend was called %d times, want once (before the outage)", be.calls.Load())
	}
	waitUntil(t, "the start of the outage logged", func() bool {
		return strings.Contains(g.logs.String()[before:], "session store unavailable")
	})
	during := g.logs.String()[before:]
	if n := strings.Count(during, "\n"); n > 4 {
		t.Errorf("%d refused requests wrote %d log lines, want a few for the whole outage:\n%s", 4*rounds, n, during)
	}
	for series, want := range map[string]float64{
		`authgate_logins_total{api="multi",result="unavailable"}`:                        rounds,
		`authgate_logins_total{api="manage",result="unavailable"}`:                       rounds,
		`authgate_manage_requests_total{result="unavailable",route="validate_password"}`: rounds,
		`authgate_guard_decisions_total{result="unavailable"}`:                           rounds,
	} {
		if got := scrape(t, admin, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}

	redis.Start()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for r := health(); r.Status != 200; r = health() {
		if ctx.Err() != nil {
			t.Fatalf("GET /health stayed %d after Redis came back", r.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The line is written before /health answers, but it reaches the test
	// through the process's output pipe, maybe a moment later.
	waitUntil(t, "the end of the outage logged", func() bool {
		return strings.Contains(g.logs.String(), "session store available again")
	})
}
