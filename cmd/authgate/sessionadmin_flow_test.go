package main

import (
	"strings"
	"testing"

	"github.com/authgate/authgate/authcore/store/storetest"
)

// adminConfig is a gateway on Redis with the Multi API, the Manage API
// (client crm with every scope) and a guarded /api/.
func adminConfig(redisAddr, users, backend string) string {
	return `{
	admin 127.0.0.1:{ADMIN}
	auto_https off
	authgate {
		store redis redis://` + redisAddr + `/0
		signing_key ` + testSigningKey + `
		users_file ` + users + `
		sandbox
		service_client crm ` + demoHash + ` manage.user.read manage.session.admin token.introspect token.revoke
	}
}
:{PORT} {
	handle_path /multi/* {
		authgate_api
	}
	handle_path /manage/* {
		authgate_manage
	}
	handle /api/* {
		authgate_protect
		reverse_proxy ` + backend + `
	}
}
`
}

// TestSessionRevokedByAdminOnOneNodeIsRefusedOnAnother: two gateways on one
// Redis; a session listed and ended through node A's Manage API is refused
// on node B at once, and a token revoked through node B's /revoke on node
// A (SPEC §13, §4).
func TestSessionRevokedByAdminOnOneNodeIsRefusedOnAnother(t *testing.T) {
	redis := storetest.StartRedis(t)
	be := newBackend(t)
	users := manageUsersFile(t)
	a := startGateway(t, adminConfig(redis.Addr(), users, be.Addr))
	b := startGateway(t, adminConfig(redis.Addr(), users, be.Addr))

	access := accessToken(t, b, loginAs(t, b, "bob@example.com"), "CORPORATE", "3001")
	if r := request(t, "GET", b.URL+"/api/x", "", bearerH(access)...); r.Status != 200 {
		t.Fatalf("node B before: %d %s", r.Status, r.Body)
	}
	r := request(t, "GET", a.URL+"/manage/v2/user/bob/sessions", "", "Authorization", basicAuth("crm"))
	list, _ := r.JSON["sessions"].([]any)
	if r.Status != 200 || len(list) != 1 {
		t.Fatalf("node A lists bob's sessions: %d %s", r.Status, r.Body)
	}
	id := list[0].(map[string]any)["id"].(string)
	if r := request(t, "DELETE", a.URL+"/manage/v2/user/bob/sessions/"+id, "", "Authorization", basicAuth("crm")); r.Status != 200 {
		t.Fatalf("node A ends it: %d %s", r.Status, r.Body)
	}
	// The DELETE answered after the change holds on every node (README,
	// Session reads on Redis): the very next request is refused.
	if r := request(t, "GET", b.URL+"/api/x", "", bearerH(access)...); r.Status != 401 {
		t.Fatalf("node B after node A ended the session: %d %s, want 401", r.Status, r.Body)
	}

	access = accessToken(t, a, loginAs(t, a, "bob@example.com"), "CORPORATE", "3001")
	if r := request(t, "GET", a.URL+"/api/x", "", bearerH(access)...); r.Status != 200 {
		t.Fatalf("node A before revoke: %d %s", r.Status, r.Body)
	}
	if r := request(t, "POST", b.URL+"/manage/revoke", "token="+access, "Authorization", basicAuth("crm"),
		"Content-Type", "application/x-www-form-urlencoded"); r.Status != 200 {
		t.Fatalf("node B revokes: %d %s", r.Status, r.Body)
	}
	if r := request(t, "GET", a.URL+"/api/x", "", bearerH(access)...); r.Status != 401 {
		t.Fatalf("node A after node B revoked the token: %d %s, want 401", r.Status, r.Body)
	}
	if r := request(t, "POST", a.URL+"/manage/introspect", "token="+access, "Authorization", basicAuth("crm"),
		"Content-Type", "application/x-www-form-urlencoded"); r.Status != 200 || r.JSON["active"] != false {
		t.Fatalf("introspect a revoked token: %d %s", r.Status, r.Body)
	}
}

// TestSessionCLI: `authgate session list|revoke` and `authgate user unlock`
// do what the Manage API's session routes do, on the gateway's Redis, and
// a gateway on that Redis sees it at once (SPEC §13).
func TestSessionCLI(t *testing.T) {
	redis := storetest.StartRedis(t)
	be := newBackend(t)
	users := manageUsersFile(t)
	g := startGateway(t, adminConfig(redis.Addr(), users, be.Addr))
	url := "redis://" + redis.Addr() + "/0"
	first := accessToken(t, g, loginAs(t, g, "bob@example.com"), "CORPORATE", "3001")
	second := accessToken(t, g, loginAs(t, g, "bob@example.com"), "CORPORATE", "3001")

	// bob lives in the users file: without it the CLI cannot find him.
	runCLI(t, "", "session", "list", "bob", "--redis", url).want(t, 1, `no user "bob"`)
	list := runCLI(t, "", "authgate", "session", "list", "bob", "--redis", url, "--users-file", users)
	list.want(t, 0, "ID")
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(list.stdout), "\n")[1:] {
		ids = append(ids, strings.Fields(line)[0])
		if !strings.Contains(line, "api") || !strings.Contains(line, "127.0.0.1") {
			t.Errorf("listing line %q lacks the kind or the client address", line)
		}
	}
	if len(ids) != 2 {
		t.Fatalf("bob's sessions listed: %q", list.stdout)
	}

	runCLI(t, "", "session", "revoke", "1002", ids[0], "--redis", url, "--users-file", users).want(t, 0, "ended session "+ids[0])
	codes := []int{
		request(t, "GET", g.URL+"/api/x", "", bearerH(first)...).Status,
		request(t, "GET", g.URL+"/api/x", "", bearerH(second)...).Status,
	}
	if codes[0]+codes[1] != 200+401 {
		t.Fatalf("after revoking one session of two: %v, want one 401 and one 200", codes)
	}
	runCLI(t, "", "session", "revoke", "1002", "--all", "--redis", url, "--users-file", users).want(t, 0, "ended every session of user 1002")
	for _, tok := range []string{first, second} {
		if r := request(t, "GET", g.URL+"/api/x", "", bearerH(tok)...); r.Status != 401 {
			t.Fatalf("after --all: %d", r.Status)
		}
	}
	runCLI(t, "", "session", "revoke", "1002", "--redis", url, "--users-file", users).want(t, 2, "give a session id or --all")

	// Lock bob out, then unlock him from the CLI.
	for range 5 {
		request(t, "POST", g.URL+"/multi/login_with_password", `{"email":"bob@example.com","password":{"value":"wrong"}}`)
	}
	login := func() int {
		return request(t, "POST", g.URL+"/multi/login_with_password", `{"email":"bob@example.com","password":{"value":"`+demoPassword+`"}}`).Status
	}
	if code := login(); code != 423 {
		t.Fatalf("after five wrong passwords: %d, want 423", code)
	}
	runCLI(t, "", "user", "unlock", "bob@example.com", "--redis", url, "--users-file", users).want(t, 0, "unlocked user 1002")
	if code := login(); code != 200 {
		t.Fatalf("after unlock: %d, want 200", code)
	}
}
