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
	time.Sleep(30 * time.Millisecond)
	link.Freeze()
	time.Sleep(30 * time.Millisecond)
	if r := request(t, "POST", a.URL+"/multi/logout", "", "Authorization", "Bearer "+auth); r.Status != 204 {
		t.Fatalf("logout on a: %d", r.Status)
	}
	answered := time.Now()
	time.Sleep(1500 * time.Millisecond)
	close(done)
	wg.Wait()
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

	deadline := time.Now().Add(10 * time.Second)
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
