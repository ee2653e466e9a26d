package main

import (
	"strings"
	"testing"
)

// TestGuardLogsNothingAtInfoPerRequest: at Caddy's default level, guarded
// requests, admitted or refused, write no log line (SPEC §10).
func TestGuardLogsNothingAtInfoPerRequest(t *testing.T) {
	be := newBackend(t)
	g := startGateway(t, gatewayConfig("memory", usersFile(t), be.Addr))
	access := accessToken(t, g, loginAs(t, g, "bob@example.com"), "CORPORATE", "3001")
	before := strings.Count(g.logs.String(), "\n")
	for i := 0; i < 20; i++ {
		request(t, "GET", g.URL+"/api/x", "", bearerH(access)...) // admitted
		request(t, "GET", g.URL+"/api/x", "")                     // no token
		request(t, "GET", g.URL+"/api/x", "", bearerH("junk")...) // invalid token
	}
	if n := strings.Count(g.logs.String(), "\n") - before; n != 0 {
		t.Fatalf("60 guarded requests wrote %d log lines:\n%s", n, g.logs.String())
	}
}

// TestOversizedHeadersAre431: a request whose headers exceed the server's
// limit is refused before any handler, never with a 5xx (SPEC §9).
func TestOversizedHeadersAre431(t *testing.T) {
	be := newBackend(t)
	g := startGateway(t, gatewayConfig("memory", usersFile(t), be.Addr))
	huge := strings.Repeat("a", 2<<20)
	for _, path := range []string{"/api/x", "/multi/login_with_password"} {
		if r := request(t, "POST", g.URL+path, "{}", "Authorization", "Bearer "+huge); r.Status != 431 {
			t.Errorf("%s with a 2 MiB header: %d", path, r.Status)
		}
	}
	if be.calls.Load() != 0 {
		t.Fatal("the backend saw the oversized request")
	}
}
