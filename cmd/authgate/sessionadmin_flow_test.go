package main

import (
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
