package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// stepUpConfig guards /pay/* with a step-up within 10 minutes.
func stepUpConfig(store, users, backend string, global ...string) string {
	cfg := gatewayConfig(store, users, backend, global...)
	return strings.Replace(cfg, "\thandle /any/* {", `	handle /pay/* {
		authgate_protect {
			stepup 10m
		}
		reverse_proxy `+backend+`
	}
	handle /any/* {`, 1)
}

// webhookReceiver stands in for an SMS or push provider's webhook.
type webhookReceiver struct {
	URL    string
	secret string
	mu     sync.Mutex
	bodies []map[string]any
	badSig int
}

func newWebhookReceiver(t *testing.T, secret string) *webhookReceiver {
	rcv := &webhookReceiver{secret: secret}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		if !authcore.VerifyHMAC(body, []byte(secret), r.Header.Get("signature")) {
			rcv.badSig++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		rcv.bodies = append(rcv.bodies, m)
	}))
	t.Cleanup(srv.Close)
	rcv.URL = srv.URL
	return rcv
}

func (r *webhookReceiver) last(t *testing.T) map[string]any {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for {
		r.mu.Lock()
		n, bad := len(r.bodies), r.badSig
		var m map[string]any
		if n > 0 {
			m = r.bodies[n-1]
		}
		r.mu.Unlock()
		if bad > 0 {
			t.Fatal("the webhook arrived with a bad signature")
		}
		if m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatal("no webhook arrived")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func bearerH(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func TestStepUpFlowThroughCaddy(t *testing.T) {
	redis := storetest.StartRedis(t)
	for _, store := range []string{"memory", "redis redis://" + redis.Addr() + "/0"} {
		t.Run(strings.Fields(store)[0], func(t *testing.T) {
			be := newBackend(t)
			sms := newWebhookReceiver(t, "sms-secret")
			push := newWebhookReceiver(t, "push-secret")
			g := startGateway(t, stepUpConfig(store, usersFile(t), be.Addr,
				"otp_sender webhook "+sms.URL+" sms-secret",
				"push_sender webhook "+push.URL+" push-secret"))
			access := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CONSUMER", "2001")

			calls := be.calls.Load()
			r := request(t, "GET", g.URL+"/pay/p1", "", bearerH(access)...)
			wantChallenge := `Bearer error="insufficient_user_authentication", error_description="a step-up within the last 10m0s is required", max_age=600`
			if r.Status != 403 || r.str("errorCode") != "STEP_UP_REQUIRED" || r.Header.Get("WWW-Authenticate") != wantChallenge {
				t.Fatalf("before step-up: %d %s %q", r.Status, r.Body, r.Header.Get("WWW-Authenticate"))
			}
			if be.calls.Load() != calls {
				t.Fatal("the backend saw a request that needed step-up")
			}

			r = request(t, "POST", g.URL+"/multi/stepup/challenges/otp/SMS", "", bearerH(access)...)
			if r.Status != 204 {
				t.Fatalf("issue: %d %s", r.Status, r.Body)
			}
			msg := sms.last(t)
			code, _ := msg["code"].(string)
			if msg["to"] != "+35699000001" || len(code) != 6 || msg["channel"] != "SMS" || msg["purpose"] != "stepup" || msg["expiresAt"] == nil {
				t.Fatalf("SMS webhook body %v", msg)
			}
			if r := request(t, "POST", g.URL+"/multi/stepup/challenges/otp/SMS", "", bearerH(access)...); r.Status != 409 || r.str("errorCode") != "RETRY_IN_15SEC" {
				t.Fatalf("re-issue: %d %s", r.Status, r.Body)
			}
			if r := request(t, "POST", g.URL+"/multi/stepup/challenges/otp/SMS/verify", `{"verificationCode":"`+code+`"}`, bearerH(access)...); r.Status != 204 {
				t.Fatalf("verify: %d %s", r.Status, r.Body)
			}
			r = request(t, "GET", g.URL+"/pay/p1", "", bearerH(access)...)
			if r.Status != 200 || be.lastHeaders().Get("X-Authgate-Stepped-Up") != "true" {
				t.Fatalf("after step-up: %d %s stepped-up=%q", r.Status, r.Body, be.lastHeaders().Get("X-Authgate-Stepped-Up"))
			}
			r = request(t, "POST", g.URL+"/multi/access_token", `{"identity":{"type":"CONSUMER","id":"2001"}}`, bearerH(access)...)
			if r.str("status") != "STEPPED_UP" {
				t.Fatalf("access_token after step-up: %s", r.Body)
			}

			// Push: a new session steps up through the provider's signed resolve.
			access2 := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CONSUMER", "2001")
			r = request(t, "POST", g.URL+"/multi/stepup/challenges/push/AUTHY", "", bearerH(access2)...)
			id := r.str("id")
			if r.Status != 200 || id == "" || strings.Trim(id, "0123456789") != "" {
				t.Fatalf("push: %d %s", r.Status, r.Body)
			}
			if got := push.last(t); got["challengeId"] != id || got["channel"] != "AUTHY" {
				t.Fatalf("push webhook body %v", got)
			}
			body := `{"status":"VERIFIED"}`
			resolve := g.URL + "/multi/stepup/challenges/push/AUTHY/" + id + "/resolve"
			if r := request(t, "POST", resolve, body, "signature", authcore.SignHMAC([]byte(body), []byte("wrong"))); r.Status != 401 {
				t.Fatalf("badly signed resolve: %d", r.Status)
			}
			if r := request(t, "GET", g.URL+"/pay/p1", "", bearerH(access2)...); r.Status != 403 {
				t.Fatalf("before resolve: %d", r.Status)
			}
			if r := request(t, "POST", resolve, body, "signature", authcore.SignHMAC([]byte(body), []byte("push-secret"))); r.Status != 204 {
				t.Fatalf("resolve: %d %s", r.Status, r.Body)
			}
			r = request(t, "GET", g.URL+"/multi/stepup/challenges/push/AUTHY/"+id, "", bearerH(access2)...)
			if r.str("status") != "VERIFIED" {
				t.Fatalf("push status: %s", r.Body)
			}
			if r := request(t, "GET", g.URL+"/pay/p1", "", bearerH(access2)...); r.Status != 200 {
				t.Fatalf("after push: %d %s", r.Status, r.Body)
			}

			if strings.Contains(g.logs.String(), `"`+code+`"`) || strings.Contains(g.logs.String(), "sms-secret") ||
				strings.Contains(g.logs.String(), access) {
				t.Fatal("a code, secret or token appears in the logs")
			}
		})
	}
}

func TestSandboxPushSimulatorThroughCaddy(t *testing.T) {
	be := newBackend(t)
	g := startGateway(t, stepUpConfig("memory", usersFile(t), be.Addr, "sandbox"))
	// Alice enrols push (needs a step-up first, done with the sandbox code).
	access := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CONSUMER", "2001")
	if r := request(t, "POST", g.URL+"/multi/authentication_factors/push/BIOMETRIC", "", bearerH(access)...); r.Status != 403 || r.str("errorCode") != "STEP_UP_REQUIRED" {
		t.Fatalf("enrol push without step-up: %d %s", r.Status, r.Body)
	}
	request(t, "POST", g.URL+"/multi/stepup/challenges/otp/SMS", "", bearerH(access)...)
	if r := request(t, "POST", g.URL+"/multi/stepup/challenges/otp/SMS/verify", `{"verificationCode":"123456"}`, bearerH(access)...); r.Status != 204 {
		t.Fatalf("sandbox verify: %d %s", r.Status, r.Body)
	}
	if r := request(t, "POST", g.URL+"/multi/authentication_factors/push/BIOMETRIC", "", bearerH(access)...); r.Status != 204 {
		t.Fatalf("enrol push: %d %s", r.Status, r.Body)
	}
	r := request(t, "GET", g.URL+"/multi/authentication_factors", "", bearerH(access)...)
	if r.Status != 200 || !strings.Contains(string(r.Body), `{"type":"PUSH","status":"ACTIVE","channel":"BIOMETRIC"}`) {
		t.Fatalf("factors: %d %s", r.Status, r.Body)
	}

	// A fresh session steps up by push through the simulator.
	access2 := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CONSUMER", "2001")
	id := request(t, "POST", g.URL+"/multi/stepup/challenges/push/BIOMETRIC", "", bearerH(access2)...).str("id")
	r = request(t, "POST", g.URL+"/multi/simulate/api/factors/1001/challenges/"+id+"/verify_success", "")
	if r.Status != 200 || r.str("code") != "COMPLETED" {
		t.Fatalf("simulator: %d %s", r.Status, r.Body)
	}
	if r := request(t, "GET", g.URL+"/pay/x", "", bearerH(access2)...); r.Status != 200 {
		t.Fatalf("after simulated push: %d %s", r.Status, r.Body)
	}
}
