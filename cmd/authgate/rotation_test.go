package main

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore/store/storetest"
)

const otherSigningKey = "YW5vdGhlci1lMmUtdGVzdC1rZXktd2l0aC0zMi1ieXRlcy1vaw==" // 35 bytes

// TestKeyRotationUnderLoadLogsNobodyOut reloads with a new signing key and
// the old one as previous_key while requests keep coming: old tokens keep
// working, new ones use the new key, and no request fails.
func TestKeyRotationUnderLoadLogsNobodyOut(t *testing.T) {
	redis := storetest.StartRedis(t)
	be := newBackend(t)
	port, admin := freePort(t), freePort(t)
	users := usersFile(t)
	config := func(global ...string) string {
		cfg := gatewayConfig("redis redis://"+redis.Addr()+"/0", users, be.Addr, global...)
		cfg = strings.Replace(cfg, "\thandle /any/* {", "\thandle /ok {\n\t\tauthgate_protect\n\t\trespond ok\n\t}\n\thandle /any/* {", 1)
		return strings.NewReplacer("{PORT}", strconv.Itoa(port), "{ADMIN}", strconv.Itoa(admin)).Replace(cfg)
	}
	g := startGatewayFixedPorts(t, config(), port, admin)
	oldToken := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CONSUMER", "2001")
	oldKid := decodeJWTHeader(t, oldToken)

	// A client that never stops while the key rotates.
	var stop atomic.Bool
	defer stop.Store(true) // also when a wait below fails the test
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				req, _ := http.NewRequest("GET", g.URL+"/ok", nil)
				req.Header.Set("Authorization", "Bearer "+oldToken)
				resp, err := client.Do(req)
				if err != nil {
					continue // a connection closed by the old server: no answer, not a refusal
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	// Counted, not timed: requests answered before the reload, and as
	// many answered after it (a refusal ends the wait; it fails below).
	const each = 20
	waitUntil(t, "requests answered before the rotation", func() bool { return ok.Load() >= each || failed.Load() > 0 })
	rotated := config("previous_key " + testSigningKey)
	rotated = strings.Replace(rotated, "signing_key "+testSigningKey, "signing_key "+otherSigningKey, 1)
	g.reload(t, admin, rotated)
	reloaded := ok.Load()
	waitUntil(t, "requests answered after the rotation", func() bool { return ok.Load() >= reloaded+each || failed.Load() > 0 })
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("during the rotation: %d refused, %d admitted", failed.Load(), ok.Load())
	}

	newToken := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CONSUMER", "2001")
	if decodeJWTHeader(t, newToken) == oldKid {
		t.Fatal("new tokens still name the old key")
	}
	for _, tok := range []string{oldToken, newToken} {
		if r := request(t, "GET", g.URL+"/ok", "", bearerH(tok)...); r.Status != 200 {
			t.Fatalf("after rotation: %d", r.Status)
		}
	}
	// Once the previous key is dropped, its tokens stop working.
	g.reload(t, admin, strings.Replace(rotated, "previous_key "+testSigningKey, "", 1))
	if r := request(t, "GET", g.URL+"/ok", "", bearerH(oldToken)...); r.Status != 401 {
		t.Fatalf("old token after its key was dropped: %d", r.Status)
	}
	if r := request(t, "GET", g.URL+"/ok", "", bearerH(newToken)...); r.Status != 200 {
		t.Fatalf("new token: %d", r.Status)
	}
}
