package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/authcore/store/storetest"
)

// TestAuthenticationProviderAndPlaceholders uses the guard as a provider of
// Caddy's standard authentication handler (JSON config) and checks the
// {http.auth.user.*} placeholders on both the provider and authgate_protect.
func TestAuthenticationProviderAndPlaceholders(t *testing.T) {
	be := newBackend(t)
	users := usersFile(t)
	cfg := `{
	"admin": {"listen": "127.0.0.1:{ADMIN}"},
	"apps": {
		"authgate": {"store": "memory", "signing_key": "` + testSigningKey + `", "users_file": "` + users + `"},
		"http": {"servers": {"srv0": {"listen": [":{PORT}"], "automatic_https": {"disable": true}, "routes": [
			{"match": [{"path": ["/multi/*"]}], "handle": [
				{"handler": "rewrite", "strip_path_prefix": "/multi"},
				{"handler": "authgate_api"}]},
			{"match": [{"path": ["/provider/*"]}], "handle": [
				{"handler": "authentication", "providers": {"authgate": {"token": "any"}}},
				{"handler": "headers", "request": {"set": {"X-Placeholder-User": ["{http.auth.user.id}/{http.auth.user.identity_type}/{http.auth.user.stepped_up}"]}}},
				{"handler": "reverse_proxy", "upstreams": [{"dial": "` + be.Addr + `"}]}]},
			{"match": [{"path": ["/protect/*"]}], "handle": [
				{"handler": "authgate_protect", "token": "any"},
				{"handler": "static_response", "body": "{http.auth.user.id} {http.auth.user.credentials_type} {http.auth.user.identity_id}"}]}
		]}}}
	}
}`
	g := startGatewayJSON(t, cfg)

	r := request(t, "GET", g.URL+"/provider/x", "", "X-Authgate-Credentials-Id", "9999")
	if r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Bearer realm="authgate"` {
		t.Fatalf("provider without token: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	if be.calls.Load() != 0 {
		t.Fatal("backend called without a token")
	}
	auth := loginAs(t, g, "bob@example.com")
	r = request(t, "GET", g.URL+"/provider/x", "", bearerH(auth)...)
	if r.Status != 200 {
		t.Fatalf("provider with token: %d %s", r.Status, r.Body)
	}
	h := be.lastHeaders()
	if h.Get("X-Authgate-Credentials-Id") != "1002" || h.Get("X-Placeholder-User") != "1002/CORPORATE/false" {
		t.Fatalf("backend headers via provider: %v", h)
	}
	r = request(t, "GET", g.URL+"/protect/x", "", bearerH(auth)...)
	if r.Status != 200 || string(r.Body) != "1002 USER 3001" {
		t.Fatalf("placeholders via authgate_protect: %d %q", r.Status, r.Body)
	}
}

// startGatewayJSON is startGateway for a JSON config.
func startGatewayJSON(t *testing.T, cfg string) *gateway {
	t.Helper()
	return startGatewayAdapter(t, cfg, "json")
}

func TestJWKSPublishesTheEd25519Key(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	be := newBackend(t)
	cfg := strings.Replace(gatewayConfig("memory", usersFile(t), be.Addr),
		"signing_key "+testSigningKey, "signing_key_file "+keyFile, 1)
	g := startGateway(t, cfg)
	r := request(t, "GET", g.URL+"/multi/.well-known/jwks.json", "")
	keys, _ := r.JSON["keys"].([]any)
	if r.Status != 200 || len(keys) != 1 {
		t.Fatalf("jwks: %d %s", r.Status, r.Body)
	}
	k := keys[0].(map[string]any)
	if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["kid"] == "" {
		t.Fatalf("jwk %v", k)
	}
	// Tokens name that kid and work on the guard.
	auth := loginAs(t, g, "alice@example.com")
	if !strings.Contains(decodeJWTHeader(t, auth), `"kid":"`+k["kid"].(string)+`"`) {
		t.Fatalf("token header %s lacks kid %v", decodeJWTHeader(t, auth), k["kid"])
	}
	if r := request(t, "GET", g.URL+"/any/x", "", bearerH(auth)...); r.Status != 200 {
		t.Fatalf("guard with EdDSA token: %d", r.Status)
	}
}

func TestFactorsSurviveAGatewayRestartOnRedis(t *testing.T) {
	redis := storetest.StartRedis(t)
	be := newBackend(t)
	cfg := gatewayConfig("redis redis://"+redis.Addr()+"/0", usersFile(t), be.Addr, "sandbox")
	g := startGateway(t, cfg)
	auth := loginAs(t, g, "bob@example.com")
	if r := request(t, "POST", g.URL+"/multi/authentication_factors/otp/SMS", "", bearerH(auth)...); r.Status != 409 || r.str("errorCode") != "MOBILE_NUMBER_NOT_AVAILABLE" {
		t.Fatalf("bob has no phone: %d %s", r.Status, r.Body)
	}
	auth = loginAs(t, g, "alice@example.com")
	request(t, "POST", g.URL+"/multi/stepup/challenges/otp/SMS", "", bearerH(auth)...)
	request(t, "POST", g.URL+"/multi/stepup/challenges/otp/SMS/verify", `{"verificationCode":"123456"}`, bearerH(auth)...)
	if r := request(t, "POST", g.URL+"/multi/authentication_factors/push/BIOMETRIC", "", bearerH(auth)...); r.Status != 204 {
		t.Fatalf("enrol: %d %s", r.Status, r.Body)
	}
	g.stop()

	g2 := startGateway(t, cfg)
	// The session survived the restart too (it lives in Redis).
	r := request(t, "GET", g2.URL+"/multi/authentication_factors", "", bearerH(auth)...)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"channel":"BIOMETRIC"`) {
		t.Fatalf("factors after restart: %d %s", r.Status, r.Body)
	}
}
