package main

import (
	"sync"
	"testing"
	"time"

	redisstore "github.com/authgate/authgate/authcore/store/redis"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// A gateway whose own link to Redis stalls (node d, through a link that
// freezes) never admits a token revoked on another node (a) in a request
// sent RevocationWindow or more after the logout answered: it answers 503
// while it cannot check, and 401 by itself once the link recovers.
func TestStalledNodeRefusesRevokedToken(t *testing.T) {
	redis := storetest.StartRedis(t)
	link := storetest.NewLink(t)
	be := newBackend(t)
	users := usersFile(t)
	a := startGateway(t, gatewayConfig("redis redis://"+redis.Addr()+"/0", users, be.Addr))
	d := startGateway(t, gatewayConfig("redis redis://"+link.To(redis.Addr())+"/0", users, be.Addr))

	auth := loginAs(t, a, "bob@example.com")
	access := accessToken(t, a, auth, "CORPORATE", "3001")
	for range 5 {
		if r := request(t, "GET", d.URL+"/api/x", "", "Authorization", "Bearer "+access); r.Status != 200 {
			t.Fatalf("token on d: %d %s", r.Status, r.Body)
		}
	}

	type result struct {
		start  time.Time
		status int
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	done := make(chan struct{})
	stopped := sync.OnceFunc(func() { close(done); wg.Wait() })
	defer stopped() // also when a wait below fails the test
	// counted returns how many requests have been answered, and how many
	// of those sent RevocationWindow or more after since answered 503.
	counted := func(since time.Time) (all, late503 int) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range results {
			if r.start.Sub(since) >= redisstore.RevocationWindow && r.status == 503 {
				late503++
			}
		}
		return len(results), late503
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				start := time.Now()
				r := request(t, "GET", d.URL+"/api/x", "", "Authorization", "Bearer "+access)
				mu.Lock()
				results = append(results, result{start, r.Status})
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	// Counted, not timed: d serves the token before the freeze, and the
	// stall is tested once d has refused some requests sent after the
	// logout answered as unavailable (its read timeout ran out).
	waitUntil(t, "requests answered by d before the freeze", func() bool { all, _ := counted(time.Now()); return all >= 10 })
	link.Freeze()
	if r := request(t, "POST", a.URL+"/multi/logout", "", "Authorization", "Bearer "+auth); r.Status != 204 {
		t.Fatalf("logout on a: %d", r.Status)
	}
	answered := time.Now()
	waitUntil(t, "503s from d for requests sent after the logout", func() bool { _, late503 := counted(answered); return late503 >= 3 })
	stopped()
	link.Thaw()

	late, unavailable := 0, 0
	for _, r := range results {
		if r.start.Sub(answered) < redisstore.RevocationWindow {
			continue
		}
		late++
		switch r.status {
		case 503:
			unavailable++
		case 200:
			t.Errorf("d admitted the revoked token in a request sent %v after the logout answered", r.start.Sub(answered))
		case 401:
		default:
			t.Errorf("d answered %d", r.status)
		}
	}
	if late == 0 || unavailable == 0 {
		t.Fatalf("%d requests sent after the logout, %d answered 503: the stall was not tested", late, unavailable)
	}
	t.Logf("%d requests on the stalled node, %d after the logout: %d answered 503, none admitted", len(results), late, unavailable)

	deadline := time.Now().Add(hangBound)
	for {
		r := request(t, "GET", d.URL+"/api/x", "", "Authorization", "Bearer "+access)
		if r.Status == 401 {
			break
		}
		if r.Status == 200 || time.Now().After(deadline) {
			t.Fatalf("after the link recovered, d answered %d", r.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
