package main

// Scale-out end to end: two gateway processes on a 3-master Redis Cluster
// and on a Sentinel-managed primary/replica pair agree on sessions,
// step-up, lockout and rate limits; a Sentinel failover in the middle of
// traffic costs only 503s, and both nodes serve again by themselves.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore/store/storetest"
)

// topoClientIPs hands out a fresh client IP per login, so that the login
// rate limit (3 a minute here, per client IP) only bites where a test
// means it to. The gateways trust X-Forwarded-For from 127.0.0.1.
var topoClientIPs atomic.Int64

func topoIP() string {
	n := topoClientIPs.Add(1)
	return fmt.Sprintf("10.%d.%d.%d", 100+n/65536%100, n/256%256, n%256)
}

// topoConfig: the step-up config with the sandbox (code 123456), a login
// limit of 3 a minute, and 127.0.0.1 trusted as a proxy.
func topoConfig(t *testing.T, storeURL, backend string) string {
	cfg := stepUpConfig("redis "+storeURL, usersFile(t), backend, "sandbox", "rate_limit login 3 1m")
	return strings.Replace(cfg, "\tauto_https off\n",
		"\tauto_https off\n\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}\n", 1)
}

// startTopoPair starts two gateways on one store URL, same signing key.
func startTopoPair(t *testing.T, storeURL string) (a, b *gateway, be *backend) {
	t.Helper()
	be = newBackend(t)
	cfg := topoConfig(t, storeURL, be.Addr)
	return startGateway(t, cfg), startGateway(t, cfg), be
}

func topoLogin(t *testing.T, g *gateway, email, password, ip string) response {
	t.Helper()
	return request(t, "POST", g.URL+"/multi/login_with_password",
		`{"email":"`+email+`","password":{"value":"`+password+`"}}`, "X-Forwarded-For", ip)
}

func topoLoginOK(t *testing.T, g *gateway, email string) string {
	t.Helper()
	r := topoLogin(t, g, email, demoPassword, topoIP())
	if r.Status != 200 || r.str("token") == "" {
		t.Fatalf("login %s on %s: %d %s", email, g.URL, r.Status, r.Body)
	}
	return r.str("token")
}

// jwtSID returns the sid claim of a token.
func jwtSID(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(raw, &c); err != nil || c.SID == "" {
		t.Fatalf("no sid in the token claims: %v", err)
	}
	return c.SID
}

// checkNodeLogs fails on what must never show up in a gateway's log on a
// scale-out topology.
func checkNodeLogs(t *testing.T, gs ...*gateway) {
	t.Helper()
	for _, g := range gs {
		logs := g.logs.String()
		for _, bad := range []string{"CROSSSLOT", "panic"} {
			if strings.Contains(logs, bad) {
				i := strings.Index(logs, bad)
				t.Errorf("gateway %s logged %q: ...%s...", g.URL, bad, logs[max(0, i-300):min(len(logs), i+300)])
			}
		}
	}
}

// twoNodesAgree is the scenario both topologies must pass: whatever one
// node does to a session, a lockout or a rate limit, the other sees.
func twoNodesAgree(t *testing.T, a, b *gateway, be *backend) {
	nodes := []*gateway{a, b}

	t.Run("sessions and step-up", func(t *testing.T) {
		auth := topoLoginOK(t, a, "alice@example.com")
		access := accessToken(t, b, auth, "CONSUMER", "2001") // a's token, used on b
		for _, g := range nodes {
			if r := request(t, "GET", g.URL+"/api/x", "", bearerH(access)...); r.Status != 200 {
				t.Fatalf("guarded request on %s: %d %s", g.URL, r.Status, r.Body)
			}
			r := request(t, "GET", g.URL+"/pay/x", "", bearerH(access)...)
			if r.Status != 403 || r.str("errorCode") != "STEP_UP_REQUIRED" {
				t.Fatalf("step-up route before step-up on %s: %d %s", g.URL, r.Status, r.Body)
			}
		}
		// The challenge issued on a is verified on b.
		if r := request(t, "POST", a.URL+"/multi/stepup/challenges/otp/SMS", "", append(bearerH(access), "X-Forwarded-For", topoIP())...); r.Status != 204 {
			t.Fatalf("issue step-up OTP on a: %d %s", r.Status, r.Body)
		}
		// b sees a's challenge: an immediate re-issue is refused there.
		if r := request(t, "POST", b.URL+"/multi/stepup/challenges/otp/SMS", "", append(bearerH(access), "X-Forwarded-For", topoIP())...); r.Status != 409 || r.str("errorCode") != "RETRY_IN_15SEC" {
			t.Fatalf("re-issue on b right after a: %d %s, want 409 RETRY_IN_15SEC", r.Status, r.Body)
		}
		if r := request(t, "POST", b.URL+"/multi/stepup/challenges/otp/SMS/verify", `{"verificationCode":"123456"}`, append(bearerH(access), "X-Forwarded-For", topoIP())...); r.Status != 204 {
			t.Fatalf("verify on b the OTP issued on a: %d %s", r.Status, r.Body)
		}
		// Verified once, on b: a knows.
		if r := request(t, "POST", a.URL+"/multi/stepup/challenges/otp/SMS/verify", `{"verificationCode":"123456"}`, append(bearerH(access), "X-Forwarded-For", topoIP())...); r.Status != 409 {
			t.Fatalf("second verify on a: %d %s, want 409", r.Status, r.Body)
		}
		for _, g := range nodes {
			r := request(t, "GET", g.URL+"/pay/x", "", bearerH(access)...)
			if r.Status != 200 || be.lastHeaders().Get("X-Authgate-Stepped-Up") != "true" {
				t.Fatalf("step-up route after step-up on %s: %d %s stepped-up=%q", g.URL, r.Status, r.Body, be.lastHeaders().Get("X-Authgate-Stepped-Up"))
			}
			// The auth token from before the step-up is stepped up too.
			r = request(t, "POST", g.URL+"/multi/access_token", `{"identity":{"type":"CONSUMER","id":"2001"}}`, bearerH(auth)...)
			if r.Status != 200 || r.str("status") != "STEPPED_UP" {
				t.Fatalf("access_token on %s after step-up: %d %s", g.URL, r.Status, r.Body)
			}
		}
		// Logout on b kills the session on a (and on b).
		if r := request(t, "POST", b.URL+"/multi/logout", "", bearerH(access)...); r.Status != 204 {
			t.Fatalf("logout on b: %d %s", r.Status, r.Body)
		}
		for _, g := range []*gateway{a, b} {
			for _, tc := range []struct{ path, tok string }{{"/api/x", access}, {"/pay/x", access}, {"/any/x", auth}} {
				if r := request(t, "GET", g.URL+tc.path, "", bearerH(tc.tok)...); r.Status != 401 {
					t.Fatalf("%s on %s after logout on b: %d %s, want 401", tc.path, g.URL, r.Status, r.Body)
				}
			}
		}
	})

	t.Run("lockout", func(t *testing.T) {
		// Five wrong passwords, alternating nodes and client IPs: the count
		// is the account's, on every node.
		for i := range 5 {
			g := nodes[i%2]
			r := topoLogin(t, g, "bob@example.com", "Wrong-Pass-1", topoIP())
			if r.Status != 403 {
				t.Fatalf("wrong password %d on %s: %d %s, want 403", i+1, g.URL, r.Status, r.Body)
			}
		}
		for _, g := range nodes {
			r := topoLogin(t, g, "bob@example.com", demoPassword, topoIP())
			if r.Status != 423 {
				t.Fatalf("right password after 5 failures on %s: %d %s, want 423", g.URL, r.Status, r.Body)
			}
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		// The limit is a fixed one-minute window (epoch minutes, on this
		// machine's clock): an attempt whose requests did not all fall in
		// one, however long a loaded machine took over them, proves
		// nothing and is made again from a fresh IP.
		var email string
		for attempt := 1; ; attempt++ {
			window := time.Now().Unix() / 60
			ip := topoIP()
			email = fmt.Sprintf("nobody-%d@example.com", time.Now().UnixNano())
			var rs []response
			for i := range 3 {
				rs = append(rs, topoLogin(t, nodes[i%2], email, "x", ip))
			}
			for _, g := range []*gateway{b, a} {
				rs = append(rs, topoLogin(t, g, email, "x", ip))
			}
			if time.Now().Unix()/60 != window && attempt < 3 {
				t.Logf("attempt %d crossed a minute boundary: again", attempt)
				continue
			}
			for i, r := range rs[:3] {
				if r.Status != 403 {
					t.Fatalf("login %d of 3 allowed on %s: %d %s, want 403", i+1, nodes[i%2].URL, r.Status, r.Body)
				}
			}
			for i, g := range []*gateway{b, a} {
				if r := rs[3+i]; r.Status != 429 || r.Header.Get("x-ratelimit-limit") != "3" || r.Header.Get("Retry-After") == "" {
					t.Fatalf("4th login from one IP on %s: %d %s %v, want 429 with x-ratelimit-limit 3", g.URL, r.Status, r.Body, r.Header)
				}
			}
			break
		}
		// Another client IP is not limited.
		if r := topoLogin(t, a, email, "x", topoIP()); r.Status != 403 {
			t.Fatalf("login from another IP: %d %s, want 403", r.Status, r.Body)
		}
	})
}

// topoKeys checks the keys a gateway pair left in Redis: every one has a
// TTL and a hash tag. do sends a command to a node; nodes are the data
// nodes to list (KEYS is fine here: these servers are the test's own).
func topoKeys(t *testing.T, nodes []string, do func(addr string, args ...string) (any, error)) map[string]string {
	t.Helper()
	where := map[string]string{} // key -> node
	for _, n := range nodes {
		v, err := do(n, "KEYS", "*")
		if err != nil {
			t.Fatalf("KEYS on %s: %v", n, err)
		}
		keys, _ := v.([]any)
		for _, k := range keys {
			key, _ := k.(string)
			where[key] = n
			ms, err := do(n, "PTTL", key)
			if err != nil {
				t.Fatalf("PTTL %s on %s: %v", key, n, err)
			}
			if ms == int64(-1) {
				t.Errorf("key %s has no TTL: every key must expire", key)
			}
			if o := strings.IndexByte(key, '{'); o < 0 || !strings.Contains(key[o+1:], "}") || strings.Index(key[o+1:], "}") == 0 {
				t.Errorf("key %s has no hash tag", key)
			}
		}
	}
	if len(where) == 0 {
		t.Fatal("no keys at all in Redis: the gateways did not use this store")
	}
	return where
}

func TestTopologyClusterTwoGateways(t *testing.T) {
	c := storetest.StartCluster(t)
	a, b, be := startTopoPair(t, c.URL())
	twoNodesAgree(t, a, b, be)

	t.Run("a session's keys share one slot and every key expires", func(t *testing.T) {
		// A live session with a pending challenge: its session, challenge
		// and counter keys must all sit in the session's slot.
		auth := topoLoginOK(t, a, "alice@example.com")
		access := accessToken(t, b, auth, "CONSUMER", "2001")
		if r := request(t, "POST", b.URL+"/multi/stepup/challenges/otp/SMS", "", append(bearerH(access), "X-Forwarded-For", topoIP())...); r.Status != 204 {
			t.Fatalf("issue step-up OTP: %d %s", r.Status, r.Body)
		}
		if r := request(t, "POST", a.URL+"/multi/stepup/challenges/otp/SMS/verify", `{"verificationCode":"000000"}`, append(bearerH(access), "X-Forwarded-For", topoIP())...); r.Status != 409 {
			t.Fatalf("wrong code: %d %s", r.Status, r.Body)
		}
		sid := jwtSID(t, access)
		where := topoKeys(t, c.Addrs(), c.Do)
		sessionKey := "authgate:s:{" + sid + "}"
		home, ok := where[sessionKey]
		if !ok {
			keys := make([]string, 0, len(where))
			for k := range where {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			t.Fatalf("session key %s not found; keys: %q", sessionKey, keys)
		}
		slot := c.KeySlot(sessionKey)
		var mine []string
		for k, n := range where {
			if !strings.Contains(k, "{"+sid+"}") {
				continue
			}
			mine = append(mine, k)
			if n != home {
				t.Errorf("key %s of the session is on %s, the session on %s", k, n, home)
			}
			if s := c.KeySlot(k); s != slot {
				t.Errorf("CLUSTER KEYSLOT %s = %d, want the session's %d", k, s, slot)
			}
		}
		slices.Sort(mine)
		if len(mine) < 2 {
			t.Errorf("keys of the session: %q, want the session and its challenge keys", mine)
		}
		t.Logf("session %s: %d keys in slot %d on %s: %q", sid, len(mine), slot, home, mine)
	})
	checkNodeLogs(t, a, b)
}

func TestTopologySentinelTwoGateways(t *testing.T) {
	set := storetest.StartSentinel(t)
	a, b, be := startTopoPair(t, set.URL())
	twoNodesAgree(t, a, b, be)
	t.Run("every key expires", func(t *testing.T) {
		topoKeys(t, []string{set.PrimaryAddr()}, set.Do)
	})
	t.Run("failover under traffic", func(t *testing.T) {
		sentinelFailover(t, set, a, b)
	})
	checkNodeLogs(t, a, b)
}

// topoResult is what one request of the background traffic got.
type topoResult struct {
	status int
	body   string
	err    error
}

func topoGet(c *http.Client, url, tok string) topoResult {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return topoResult{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return topoResult{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
		return topoResult{status: 503, body: string(body), err: fmt.Errorf("503 without Retry-After")}
	}
	return topoResult{status: resp.StatusCode, body: string(body)}
}

// sentinelFailover kills the primary while both nodes serve guarded
// requests for sessions that reached the replica: every answer is 200 or
// 503 (never 401: the sessions survive; never another 5xx), and both nodes
// serve again within 30s of the kill, without a restart.
func sentinelFailover(t *testing.T, set *storetest.SentinelSet, a, b *gateway) {
	nodes := []*gateway{a, b}
	var tokens []string
	for i := range 4 {
		auth := topoLoginOK(t, nodes[i%2], "alice@example.com")
		tokens = append(tokens, accessToken(t, nodes[(i+1)%2], auth, "CONSUMER", "2001"))
	}
	for _, tok := range tokens {
		for _, g := range nodes {
			if r := request(t, "GET", g.URL+"/api/x", "", bearerH(tok)...); r.Status != 200 {
				t.Fatalf("guarded request before the failover on %s: %d %s", g.URL, r.Status, r.Body)
			}
		}
	}
	// The sessions are on the replica before the primary dies.
	set.WaitReplicated(5 * time.Second)

	const (
		workersPerNode = 2
		maxPerWorker   = 20000
		trafficLimit   = 60 * time.Second
	)
	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		mu       sync.Mutex
		statuses = map[string]map[int]int{} // phase -> status -> count
		bad      []string
		phase    atomic.Value
	)
	phase.Store("before")
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(trafficLimit)
	for w := range 2 * workersPerNode {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := nodes[w%2]
			for i := 0; i < maxPerWorker && !stop.Load() && time.Now().Before(deadline); i++ {
				tok := tokens[(i+w)%len(tokens)]
				ph := phase.Load().(string)
				start := time.Now()
				res := topoGet(client, g.URL+"/api/x", tok)
				took := time.Since(start)
				mu.Lock()
				if statuses[ph] == nil {
					statuses[ph] = map[int]int{}
				}
				statuses[ph][res.status]++
				if (res.err != nil || (res.status != 200 && res.status != 503) || took > 5*time.Second) && len(bad) < 20 {
					bad = append(bad, fmt.Sprintf("%s %s (%s): status %d after %v, err %v, body %s",
						g.URL, ph, time.Now().Format("15:04:05.000"), res.status, took.Round(time.Millisecond), res.err, res.body))
				}
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	// answered200 counts the 200s the background traffic got in phase ph.
	answered200 := func(ph string) int {
		mu.Lock()
		defer mu.Unlock()
		return statuses[ph][200]
	}

	waitUntil(t, "background traffic answered before the kill", func() bool { return answered200("before") >= 20 })
	phase.Store("failover")
	killed := time.Now()
	old := set.PrimaryAddr()
	set.KillPrimary()
	newPrimary := set.WaitFailover(30 * time.Second)
	t.Logf("primary %s killed; sentinels promoted %s after %v", old, newPrimary, time.Since(killed).Round(time.Millisecond))

	// Both nodes serve again by themselves: the old sessions, and new
	// logins, within 30s of the kill.
	recoverBy := killed.Add(30 * time.Second)
	for _, g := range nodes {
		for {
			okAll := true
			var last topoResult
			for _, tok := range tokens {
				if last = topoGet(client, g.URL+"/api/x", tok); last.status != 200 {
					okAll = false
					break
				}
			}
			if okAll {
				break
			}
			if last.status == 401 {
				t.Fatalf("a replicated session is gone on %s after the failover: %d %s", g.URL, last.status, last.body)
			}
			if time.Now().After(recoverBy) {
				t.Fatalf("%s still not serving 30s after the kill: %d %s %v\n%s", g.URL, last.status, last.body, last.err, g.logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	phase.Store("after")
	t.Logf("both nodes serve the old sessions %v after the kill", time.Since(killed).Round(time.Millisecond))
	// untilRecovered repeats a request while it answers 503 and recoverBy
	// has not passed: each node finds the new primary for its reads and
	// for its writes by itself, and a node that serves reads again may
	// still be switching its writes over.
	untilRecovered := func(do func() response) response {
		for {
			if r := do(); r.Status != 503 || time.Now().After(recoverBy) {
				return r
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i, g := range nodes {
		r := untilRecovered(func() response { return topoLogin(t, g, "alice@example.com", demoPassword, topoIP()) })
		if r.Status != 200 {
			t.Fatalf("login on %s after the failover: %d %s, want 200 (or 503 while it recovers, up to 30s after the kill)", g.URL, r.Status, r.Body)
		}
		// Written on the new primary through one node, read through the other.
		other, auth := nodes[(i+1)%2], r.str("token")
		r = untilRecovered(func() response {
			return request(t, "POST", other.URL+"/multi/access_token", `{"identity":{"type":"CONSUMER","id":"2001"}}`, bearerH(auth)...)
		})
		access := r.str("token")
		if r.Status != 200 || access == "" {
			t.Fatalf("access_token on %s after the failover: %d %s", other.URL, r.Status, r.Body)
		}
		for _, h := range nodes {
			if r := untilRecovered(func() response { return request(t, "GET", h.URL+"/api/x", "", bearerH(access)...) }); r.Status != 200 {
				t.Fatalf("new session after the failover on %s: %d %s", h.URL, r.Status, r.Body)
			}
		}
	}
	t.Logf("both nodes log in and serve new sessions %v after the kill", time.Since(killed).Round(time.Millisecond))

	waitUntil(t, "background traffic answered after the failover", func() bool { return answered200("after") >= 20 })
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("traffic by phase and status: %v", statuses)
	for _, s := range bad {
		t.Errorf("during the failover: %s (want 200 or 503 with Retry-After, within 5s)", s)
	}
	if statuses["after"][200] == 0 {
		t.Error("background traffic got no 200 after the failover")
	}
	if statuses["before"][200] == 0 {
		t.Error("background traffic got no 200 before the kill")
	}
}
