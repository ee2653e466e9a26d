package main

import (
	"strings"
	"testing"

	"github.com/authgate/authgate/authcore/store/storetest"
)

// loginWith logs in with any password and returns the answer.
func loginWith(t *testing.T, g *gateway, email, password string) response {
	t.Helper()
	return request(t, "POST", g.URL+"/multi/login_with_password",
		`{"email":"`+email+`","password":{"value":"`+password+`"}}`)
}

func credentialsID(r response) string {
	creds, _ := r.JSON["credentials"].(map[string]any)
	id, _ := creds["id"].(string)
	return id
}

// TestUsersAddedWithTheCLILogInAtOnceOnEveryNode runs two gateways on one
// Redis with `users store` next to a users file, and manages a user with
// the CLI while they run: no reload anywhere.
func TestUsersAddedWithTheCLILogInAtOnceOnEveryNode(t *testing.T) {
	redis := storetest.StartRedis(t)
	url := "redis://" + redis.Addr() + "/0"
	users := usersFile(t) // alice 1001, bob 1002
	be := newBackend(t)
	config := gatewayConfig("redis "+url, users, be.Addr, "users store", "rate_limit login 100 1m")
	nodes := []*gateway{startGateway(t, config), startGateway(t, config)}
	cli := func(stdin, command string, args ...string) cliResult {
		return runCLI(t, stdin, append([]string{"user", command, "--redis", url}, args...)...)
	}
	const newPassword = "New-Pass-456!"

	// Unknown at first, on both nodes.
	for _, g := range nodes {
		if r := loginWith(t, g, "carol@example.com", demoPassword); r.Status != 403 {
			t.Fatalf("carol before add: %d %s", r.Status, r.Body)
		}
	}
	cli(demoPassword+"\n", "add", "--id", "1003", "--email", "carol@example.com", "--credentials-type", "USER",
		"--identity", "CONSUMER:2003:Carol").want(t, 0, "added user 1003")

	// At once, on both nodes; a token from one node works on the other.
	tokens := map[*gateway]string{}
	for _, g := range nodes {
		tokens[g] = loginAs(t, g, "Carol@Example.com")
	}
	if r := request(t, "GET", nodes[1].URL+"/any/x", "", "Authorization", "Bearer "+tokens[nodes[0]]); r.Status != 200 {
		t.Fatalf("node 1's token on node 2: %d %s", r.Status, r.Body)
	}
	if h := be.lastHeaders(); h.Get("X-Authgate-Credentials-Id") != "1003" || h.Get("X-Authgate-Identity-Id") != "2003" {
		t.Fatalf("backend saw %v", h)
	}

	// passwd: the old password is refused, the new one works, and the
	// sessions opened with the old one have ended on every node.
	cli(newPassword+"\n", "passwd", "--id", "1003").want(t, 0, "changed the password of user 1003")
	for _, g := range nodes {
		if r := request(t, "GET", g.URL+"/any/x", "", "Authorization", "Bearer "+tokens[g]); r.Status != 401 {
			t.Fatalf("a session outlived passwd: %d %s", r.Status, r.Body)
		}
		if r := loginWith(t, g, "carol@example.com", demoPassword); r.Status != 403 {
			t.Fatalf("old password after passwd: %d %s", r.Status, r.Body)
		}
		if r := loginWith(t, g, "carol@example.com", newPassword); r.Status != 200 || credentialsID(r) != "1003" {
			t.Fatalf("new password after passwd: %d %s", r.Status, r.Body)
		}
	}

	// The clash rule: the users file wins. A stored user with a file
	// user's email is ignored as a whole; alice still logs in as 1001.
	cli(newPassword+"\n", "add", "--id", "1009", "--email", "ALICE@example.com", "--credentials-type", "USER",
		"--identity", "CONSUMER:2009").want(t, 0, "added user 1009")
	cli(newPassword+"\n", "add", "--id", "1010", "--email", "alice@example.com", "--credentials-type", "USER",
		"--identity", "CONSUMER:2010", "--users-file", users).want(t, 1, "the users file has a user with email")
	for _, g := range nodes {
		if r := loginWith(t, g, "alice@example.com", demoPassword); r.Status != 200 || credentialsID(r) != "1001" {
			t.Fatalf("file alice: %d %s", r.Status, r.Body)
		}
		if r := loginWith(t, g, "alice@example.com", newPassword); r.Status != 403 {
			t.Fatalf("the stored alice logged in: %d %s", r.Status, r.Body)
		}
	}

	// del: 403 at once on both nodes.
	cli("", "del", "--id", "1003").want(t, 0, "deleted user 1003")
	for _, g := range nodes {
		if r := loginWith(t, g, "carol@example.com", newPassword); r.Status != 403 {
			t.Fatalf("deleted user: %d %s", r.Status, r.Body)
		}
	}
	if logs := nodes[0].logs.String() + nodes[1].logs.String(); strings.Contains(logs, newPassword) || strings.Contains(logs, "$argon2id$") {
		t.Fatal("a gateway logged a password or hash")
	}
}
