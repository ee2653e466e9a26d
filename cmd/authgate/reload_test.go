package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore/store/storetest"
)

// reload posts a new Caddyfile to the gateway's admin endpoint, as
// `caddy reload` does.
func (g *gateway) reload(t *testing.T, admin int, caddyfile string) {
	t.Helper()
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/load", admin), strings.NewReader(caddyfile))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reload: %d", resp.StatusCode)
	}
	// The old server closes its idle connections; a POST on one of them
	// would fail rather than be retried.
	http.DefaultClient.CloseIdleConnections()
	// A connection accepted in the moment of the switch can still be
	// reset (Caddy's listeners are SO_REUSEPORT): wait until a fresh
	// connection is answered twice running before the test goes on.
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	ok := 0
	waitUntil(t, "the gateway to answer twice running after the reload", func() bool {
		resp, err := probe.Get(g.URL + "/")
		if err != nil {
			ok = 0
			return false
		}
		resp.Body.Close()
		ok++
		return ok == 2
	})
}

// settledGoroutines returns the process's goroutine count once it has
// stopped falling: servers retired by a reload wind down in their own
// time, later on a loaded machine.
func settledGoroutines(t *testing.T, admin int) int {
	t.Helper()
	n := goroutines(t, admin)
	waitUntil(t, "the goroutine count to settle", func() bool {
		prev := n
		n = goroutines(t, admin)
		return n >= prev
	})
	return n
}

// goroutines reads the process's goroutine count from Caddy's admin pprof.
func goroutines(t *testing.T, admin int) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", admin))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	m := regexp.MustCompile(`total (\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no goroutine total in %q", line)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// redisClients counts the connections Redis has, minus the one asking.
func redisClients(t *testing.T, addr string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "CLIENT LIST\r\n")
	r := bufio.NewReader(c)
	header, _ := r.ReadString('\n') // $<len>
	n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(header, "$")))
	buf := make([]byte, n)
	_, _ = io.ReadFull(r, buf)
	return strings.Count(string(buf), "\n") - 1
}

func TestReloadsKeepSessionsAndLeakNothing(t *testing.T) {
	redis := storetest.StartRedis(t)
	for _, store := range []string{"memory", "redis redis://" + redis.Addr() + "/0"} {
		t.Run(strings.Fields(store)[0], func(t *testing.T) {
			be := newBackend(t)
			admin := freePort(t)
			port := freePort(t)
			users := usersFile(t)
			// The guarded route answers itself: reverse_proxy's retired
			// transports keep idle upstream connections (two goroutines each)
			// until their idle timeout, which is Caddy's behaviour, not ours.
			config := func(idle string) string {
				cfg := gatewayConfig(store, users, be.Addr, "session_idle "+idle)
				cfg = strings.Replace(cfg, "\thandle /any/* {", "\thandle /ok {\n\t\tauthgate_protect\n\t\trespond ok\n\t}\n\thandle /any/* {", 1)
				return strings.NewReplacer("{PORT}", strconv.Itoa(port), "{ADMIN}", strconv.Itoa(admin)).Replace(cfg)
			}
			g := startGatewayFixedPorts(t, config("5m"), port, admin)
			access := accessToken(t, g, loginAs(t, g, "alice@example.com"), "CONSUMER", "2001")

			// Warm up, then count.
			g.reload(t, admin, config("6m"))
			// Keep-alive connections of this test's client hold server
			// goroutines; close them so only the gateway's own are counted.
			http.DefaultClient.CloseIdleConnections()
			baseG, baseC := settledGoroutines(t, admin), redisClients(t, redis.Addr())
			for i := 0; i < 20; i++ {
				g.reload(t, admin, config(fmt.Sprintf("%dm", 7+i%2)))
				if r := request(t, "GET", g.URL+"/ok", "", bearerH(access)...); r.Status != 200 {
					t.Fatalf("after reload %d the session is gone: %d %s", i+1, r.Status, r.Body)
				}
			}
			http.DefaultClient.CloseIdleConnections()
			// What the retired servers held ends in its own time: the
			// counts are taken once they are back within bounds, or at
			// hangBound, when they show the leak.
			var gotG, gotC int
			for deadline := time.Now().Add(hangBound); ; time.Sleep(50 * time.Millisecond) {
				gotG, gotC = goroutines(t, admin), redisClients(t, redis.Addr())
				if gotG <= baseG+10 && gotC <= baseC+2 || time.Now().After(deadline) {
					break
				}
			}
			if gotG > baseG+10 {
				t.Errorf("goroutines grew from %d to %d over 20 reloads:\n%s", baseG, gotG, goroutineGroups(t, admin, 10))
			}
			if gotC > baseC+2 {
				t.Errorf("Redis connections grew from %d to %d over 20 reloads", baseC, gotC)
			}
			t.Logf("goroutines %d -> %d, redis clients %d -> %d", baseG, gotG, baseC, gotC)
		})
	}
}

// goroutineGroups lists the stacks shared by at least min goroutines.
func goroutineGroups(t *testing.T, admin, min int) string {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", admin))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out strings.Builder
	for _, group := range strings.Split(string(body), "\n\n") {
		var n int
		if _, err := fmt.Sscanf(group, "%d @", &n); err == nil && n >= min {
			out.WriteString(group + "\n\n")
		}
	}
	return out.String()
}
