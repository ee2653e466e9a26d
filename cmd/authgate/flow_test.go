package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	redisstore "github.com/authgate/authgate/authcore/store/redis"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// gatewayConfig is a Caddyfile with the Multi API on /multi/, an access-token
// route on /api/ and a CONSUMER-only route on /consumer/, all proxied to
// the backend.
func gatewayConfig(store, users, backend string, extraGlobal ...string) string {
	return `{
	admin 127.0.0.1:{ADMIN}
	auto_https off
	authgate {
		store ` + store + `
		signing_key ` + testSigningKey + `
		issuer https://auth.test
		users_file ` + users + `
		` + strings.Join(extraGlobal, "\n\t\t") + `
	}
}
:{PORT} {
	handle_path /multi/* {
		authgate_api
	}
	handle /api/* {
		authgate_protect
		reverse_proxy ` + backend + `
	}
	handle /consumer/* {
		authgate_protect {
			identity_type CONSUMER
			header_prefix X-Auth-
		}
		reverse_proxy ` + backend + `
	}
	handle /any/* {
		authgate_protect {
			token any
		}
		reverse_proxy ` + backend + `
	}
}
`
}

func loginAs(t *testing.T, g *gateway, email string) string {
	t.Helper()
	r := request(t, "POST", g.URL+"/multi/login_with_password",
		`{"email":"`+email+`","password":{"value":"`+demoPassword+`"}}`)
	if r.Status != 200 || r.str("token") == "" {
		t.Fatalf("login %s: %d %s", email, r.Status, r.Body)
	}
	return r.str("token")
}

func accessToken(t *testing.T, g *gateway, auth, identityType, identityID string) string {
	t.Helper()
	r := request(t, "POST", g.URL+"/multi/access_token",
		fmt.Sprintf(`{"identity":{"type":%q,"id":%q}}`, identityType, identityID), "Authorization", "Bearer "+auth)
	if r.Status != 200 || r.str("token") == "" {
		t.Fatalf("access_token: %d %s", r.Status, r.Body)
	}
	return r.str("token")
}

func TestWalkingGatewayOnBothStores(t *testing.T) {
	redis := storetest.StartRedis(t)
	for _, store := range []string{"memory", "redis redis://" + redis.Addr() + "/0"} {
		t.Run(strings.Fields(store)[0], func(t *testing.T) {
			be := newBackend(t)
			g := startGateway(t, gatewayConfig(store, usersFile(t), be.Addr))

			// No token, or an AUTH token where an access token is needed:
			// refused, and the backend never sees the request.
			r := request(t, "GET", g.URL+"/api/accounts", "")
			if r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Bearer realm="authgate"` || r.str("message") == "" {
				t.Fatalf("no token: %d %q %s", r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
			}
			auth := loginAs(t, g, "alice@example.com")
			r = request(t, "GET", g.URL+"/api/accounts", "", "Authorization", "Bearer "+auth)
			if r.Status != 403 || r.str("errorCode") != "ACCESS_TOKEN_REQUIRED" {
				t.Fatalf("auth token on access route: %d %s", r.Status, r.Body)
			}
			if r := request(t, "GET", g.URL+"/any/x", "", "Authorization", "Bearer "+auth); r.Status != 200 {
				t.Fatalf("auth token on token-any route: %d %s", r.Status, r.Body)
			}
			be.calls.Store(0)

			access := accessToken(t, g, auth, "CORPORATE", "3001")
			r = request(t, "GET", g.URL+"/api/accounts", "", "Authorization", "Bearer "+access,
				"X-Authgate-Credentials-Id", "9999", "X_Authgate_Identity_Id", "666", "x-authgate-stepped-up", "true",
				"X-Authgate-Admin", "yes", "x-authgate-role", "admin")
			if r.Status != 200 || string(r.Body) != `{"path":"/api/accounts"}` {
				t.Fatalf("guarded call: %d %s", r.Status, r.Body)
			}
			h := be.lastHeaders()
			t.Logf("DEBUG %v", h)
			want := map[string]string{
				"X-Authgate-Credentials-Id": "1001", "X-Authgate-Credentials-Type": "ROOT",
				"X-Authgate-Identity-Id": "3001", "X-Authgate-Identity-Type": "CORPORATE",
				"X-Authgate-Stepped-Up": "false", "Authorization": "Bearer " + access,
			}
			for k, v := range want {
				if got := h.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("backend got %s = %q, want %q", k, got, v)
				}
			}
			if h.Get("X-Authgate-Auth-Time") == "" {
				t.Error("backend got no X-Authgate-Auth-Time")
			}
			for k := range h {
				if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-authgate-") {
					if _, ok := want[http.CanonicalHeaderKey(k)]; !ok && http.CanonicalHeaderKey(k) != "X-Authgate-Auth-Time" {
						t.Errorf("client look-alike header %s reached the backend", k)
					}
				}
			}

			// identity_type CONSUMER: the corporate token is refused.
			r = request(t, "GET", g.URL+"/consumer/x", "", "Authorization", "Bearer "+access)
			if r.Status != 403 || r.str("errorCode") != "INSUFFICIENT_PERMISSIONS" {
				t.Fatalf("wrong identity type: %d %s", r.Status, r.Body)
			}
			consumer := accessToken(t, g, auth, "CONSUMER", "2001")
			if r := request(t, "GET", g.URL+"/consumer/x", "", "Authorization", "Bearer "+consumer); r.Status != 200 {
				t.Fatalf("consumer route: %d %s", r.Status, r.Body)
			}
			if got := be.lastHeaders().Get("X-Auth-Identity-Id"); got != "2001" {
				t.Fatalf("header_prefix X-Auth-: identity id %q", got)
			}
			calls := be.calls.Load()

			// Logout kills every token of the session.
			if r := request(t, "POST", g.URL+"/multi/logout", "", "Authorization", "Bearer "+access); r.Status != 204 {
				t.Fatalf("logout: %d %s", r.Status, r.Body)
			}
			for _, tok := range []string{auth, access, consumer} {
				r := request(t, "GET", g.URL+"/any/x", "", "Authorization", "Bearer "+tok)
				if r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Bearer realm="authgate", error="invalid_token"` {
					t.Fatalf("after logout: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
				}
			}
			if got := be.calls.Load(); got != calls {
				t.Fatalf("backend called %d times by rejected requests", got-calls)
			}
			for _, secret := range []string{demoPassword, auth, access, testSigningKey} {
				if strings.Contains(g.logs.String(), secret) {
					t.Fatalf("a secret appears in the logs")
				}
			}
		})
	}
}

func TestTwoGatewaysOnOneRedisAgree(t *testing.T) {
	redis := storetest.StartRedis(t)
	be := newBackend(t)
	cfg := gatewayConfig("redis redis://"+redis.Addr()+"/0", usersFile(t), be.Addr)
	a, b := startGateway(t, cfg), startGateway(t, cfg)

	auth := loginAs(t, a, "bob@example.com")
	access := accessToken(t, b, auth, "CORPORATE", "3001") // token of a, used on b
	for _, g := range []*gateway{a, b} {
		if r := request(t, "GET", g.URL+"/api/x", "", "Authorization", "Bearer "+access); r.Status != 200 {
			t.Fatalf("token on node %s: %d %s", g.URL, r.Status, r.Body)
		}
	}
	if r := request(t, "POST", b.URL+"/multi/logout", "", "Authorization", "Bearer "+auth); r.Status != 204 {
		t.Fatalf("logout on b: %d", r.Status)
	}
	// The logout holds on every node when it answers: a node serves a
	// session from memory only under a proof at most RevocationWindow old,
	// and the logout answers only after that long.
	for _, g := range []*gateway{a, b} {
		if r := request(t, "GET", g.URL+"/api/x", "", "Authorization", "Bearer "+access); r.Status != 401 {
			t.Fatalf("right after the logout on b answered, node %s answered %d", g.URL, r.Status)
		}
	}
}

func TestStoreDownIs503AndNeverFailsOpen(t *testing.T) {
	redis := storetest.StartRedis(t)
	be := newBackend(t)
	g := startGateway(t, gatewayConfig("redis redis://"+redis.Addr()+"/0", usersFile(t), be.Addr))
	auth := loginAs(t, g, "bob@example.com")
	access := accessToken(t, g, auth, "CORPORATE", "3001")

	redis.Stop()
	// A session the node holds may be admitted for RevocationWindow after
	// Redis last answered (the proof rule); after that, never.
	time.Sleep(redisstore.RevocationWindow)
	calls := be.calls.Load()
	r := request(t, "GET", g.URL+"/api/x", "", "Authorization", "Bearer "+access)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.str("message") == "" {
		t.Fatalf("guard with Redis down: %d %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	r = request(t, "POST", g.URL+"/multi/login_with_password", `{"email":"bob@example.com","password":{"value":"`+demoPassword+`"}}`)
	if r.Status != 503 {
		t.Fatalf("login with Redis down: %d %s", r.Status, r.Body)
	}
	if be.calls.Load() != calls {
		t.Fatal("the backend was called while the store was down")
	}

	redis.Start()
	if r := request(t, "GET", g.URL+"/api/x", "", "Authorization", "Bearer "+access); r.Status != 401 {
		// The throwaway Redis keeps nothing on disk: the session is gone,
		// but the gateway answers again without a restart.
		t.Fatalf("after Redis came back: %d %s", r.Status, r.Body)
	}
	if r := request(t, "GET", g.URL+"/api/x", "", "Authorization", "Bearer "+accessToken(t, g, loginAs(t, g, "bob@example.com"), "CORPORATE", "3001")); r.Status != 200 {
		t.Fatalf("new session after Redis came back: %d %s", r.Status, r.Body)
	}
}

func TestMultiAPIThroughCaddy(t *testing.T) {
	be := newBackend(t)
	g := startGateway(t, gatewayConfig("memory", usersFile(t), be.Addr, "api_key k-123"))
	r := request(t, "POST", g.URL+"/multi/login_with_password", `{}`)
	if r.Status != 400 || !strings.Contains(string(r.Body), `"fieldName":"api-key"`) || r.Header.Get("request-ref") == "" {
		t.Fatalf("no api-key: %d %s", r.Status, r.Body)
	}
	if r := request(t, "POST", g.URL+"/multi/login_with_password", `{}`, "api-key", "nope"); r.Status != 401 {
		t.Fatalf("bad api-key: %d", r.Status)
	}
	if r := request(t, "GET", g.URL+"/multi/nope", "", "api-key", "k-123"); r.Status != 404 || r.str("message") == "" {
		t.Fatalf("unknown route: %d %s", r.Status, r.Body)
	}
	if r := request(t, "DELETE", g.URL+"/multi/logout", "", "api-key", "k-123"); r.Status != 405 || r.str("message") == "" {
		t.Fatalf("wrong method: %d %s", r.Status, r.Body)
	}
	r = request(t, "POST", g.URL+"/multi/login_with_password", `{"email":"alice@example.com","password":{"value":"`+demoPassword+`"}}`, "api-key", "k-123")
	if r.Status != 200 || r.str("tokenType") != "AUTH" {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	if r := request(t, "GET", g.URL+"/multi/.well-known/jwks.json", ""); r.Status != 404 {
		t.Fatalf("jwks with HS256: %d", r.Status)
	}
}
