package redis_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/store/redis"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// The tests below are about the session cache: session reads served from
// this node's memory, kept exact by Redis's invalidation tracking, and
// only while the node holds fresh proof that it has missed no
// invalidation (tracking.go).

// openNode opens a store the way a gateway node does (Parse, then Open),
// dialling through dial when it is not nil, and returns it once its
// tracking connection is up.
func openNode(t testing.TB, url, prefix string, dial func(context.Context, string, string) (net.Conn, error)) *redis.Store {
	t.Helper()
	o, err := redis.Parse(url)
	if err != nil {
		t.Fatalf("Parse(%q): %v", url, err)
	}
	o.Redis.Dialer = dial
	s := redis.Open(o, prefix)
	t.Cleanup(func() { _ = s.Close() })
	if !s.Cached() {
		t.Fatalf("a store opened from %q has no session cache", url)
	}
	redis.AwaitTracking(t, s)
	return s
}

// waitFor polls cond until it holds, and fails the test, naming what it
// waited for, when it still does not after 30s: a bound that only stops a
// hang, so a loaded machine that is slow to get there still passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
	}
}

// newNode opens a cached node on a single server.
func newNode(t testing.TB, addr, prefix string) *redis.Store {
	t.Helper()
	return openNode(t, "redis://"+addr+"/0", prefix, nil)
}

// commandCalls returns how often the server ran each command, from INFO
// commandstats.
func commandCalls(t *testing.T, addr string) map[string]int {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2})
	defer c.Close()
	info, err := c.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	calls := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		calls[name] = n
	}
	return calls
}

func resetStats(t *testing.T, addr string) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2})
	defer c.Close()
	if err := c.ConfigResetStat(t.Context()).Err(); err != nil {
		t.Fatalf("CONFIG RESETSTAT: %v", err)
	}
}

// createCached creates sess through writer, then reads it through reader
// until reader's cache holds it.
func createCached(t *testing.T, writer, reader *redis.Store, sess *authcore.Session) {
	t.Helper()
	if err := writer.CreateSession(t.Context(), sess, time.Minute); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := reader.TouchSession(t.Context(), sess.ID, time.Minute); err != nil {
			t.Fatalf("touch after create: %v", err)
		}
	}
}

// A hot session costs Redis nothing: after the first read, touches within
// the slide granularity are answered from this node's memory.
func TestSessionCacheServesReads(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := newNode(t, srv.Addr(), "hot:")
	ctx := t.Context()
	if err := s.CreateSession(ctx, testSession(sessionID), time.Minute); err != nil {
		t.Fatal(err)
	}
	resetStats(t, srv.Addr())
	const touches = 500
	for i := range touches {
		got, err := s.TouchSession(ctx, sessionID, time.Minute)
		if err != nil || got.CredentialsID != "110104413000181234" {
			t.Fatalf("touch %d = (%+v, %v)", i, got, err)
		}
	}
	calls := commandCalls(t, srv.Addr())
	// The first touch slides and reads (PEXPIRE, GET); the rest are served
	// locally while the heartbeat keeps the proof fresh, but a heartbeat
	// late on a loaded machine sends a touch to Redis now and then.
	if calls["pexpire"] != 1 || calls["get"] > touches/10 || calls["getex"] != 0 {
		t.Errorf("%d touches ran PEXPIRE %d, GET %d, GETEX %d times, want 1, at most %d, 0",
			touches, calls["pexpire"], calls["get"], calls["getex"], touches/10)
	}
	t.Logf("%d touches: PEXPIRE %d, GET %d, PING %d", touches, calls["pexpire"], calls["get"], calls["ping"])
}

// rawSave writes sess through a plain client, as another node would.
func rawSave(t *testing.T, raw goredis.UniversalClient, key string, sess *authcore.Session) {
	t.Helper()
	data, err := authcore.MarshalSession(sess)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Set(t.Context(), key, data, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
}

// Another node's step-up, logout or an expiry reaches this node through
// Redis's invalidation push, and every touch that starts RevocationWindow
// after the write answered sees it: the proof rule makes that certain, not
// likely, so the assertion holds on a loaded machine too. How soon the
// change is seen in practice is logged.
func TestSessionCacheSeesOtherNodes(t *testing.T) {
	srv := storetest.StartRedis(t)
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer raw.Close()
	seesOtherNodes(t, newNode(t, srv.Addr(), "two:"), raw, "two:")
}

// seesOtherNodes is TestSessionCacheSeesOtherNodes on node a, with raw
// writing as the other node; sessions are 40 ids, so on a Cluster they
// spread over every master.
func seesOtherNodes(t *testing.T, a *redis.Store, raw goredis.UniversalClient, prefix string) {
	ctx := t.Context()
	// seen touches until seen() and fails if a touch that started
	// RevocationWindow after answered missed the change.
	// The pause between touches leaves the node's reader a core, as
	// requests that wait on the network do; a tight loop could hold the
	// only free one until Go preempts it.
	seen := func(what string, answered time.Time, saw func() bool) time.Duration {
		for {
			start := time.Now()
			if saw() {
				return start.Sub(answered)
			}
			if start.Sub(answered) >= redis.RevocationWindow {
				t.Fatalf("a touch %v after %s answered did not see it", start.Sub(answered), what)
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	var saves, deletes, expiries []time.Duration
	for i := range 40 {
		id := sessionID + strconv.Itoa(i)
		key := prefix + "s:{" + id + "}"
		sess := testSession(id)
		sess.StepUpMethod = authcore.StepUpOTP
		createCached(t, a, a, sess)
		sess.StepUpMethod = authcore.StepUpPush
		rawSave(t, raw, key, sess)
		saves = append(saves, seen("a step-up", time.Now(), func() bool {
			got, err := a.TouchSession(ctx, id, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return got.StepUpMethod == authcore.StepUpPush
		}))
		if err := raw.Del(ctx, key).Err(); err != nil {
			t.Fatal(err)
		}
		gone := func() bool {
			_, err := a.TouchSession(ctx, id, time.Minute)
			if err != nil && !errors.Is(err, authcore.ErrNotFound) {
				t.Fatal(err)
			}
			return err != nil
		}
		deletes = append(deletes, seen("a logout", time.Now(), gone))
		// An expiry: Redis deletes the key itself when its TTL runs out.
		createCached(t, a, a, sess)
		if err := raw.PExpire(ctx, key, 30*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		// Keep the entry hot until Redis, asked directly, has deleted the
		// expired key (it expires keys lazily, or in its expiry cycle).
		// Touches stop after a second: a node slides a session it keeps
		// using (in the background once its granularity has passed), and
		// that slide would keep the key alive; after the last touch it
		// expires whatever happened before.
		for hot := time.Now().Add(time.Second); ; {
			if time.Now().Before(hot) {
				gone()
			}
			n, err := raw.Exists(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		expiries = append(expiries, seen("an expiry", time.Now(), gone))
	}
	slices.Sort(saves)
	slices.Sort(deletes)
	slices.Sort(expiries)
	t.Logf("seen on the other node: step-up p50 %v max %v; logout p50 %v max %v; expiry p50 %v max %v",
		saves[len(saves)/2], saves[len(saves)-1], deletes[len(deletes)/2], deletes[len(deletes)-1],
		expiries[len(expiries)/2], expiries[len(expiries)-1])
}

// Requests read the tracking connection themselves when an answer is due
// (wire.go). With goroutines pumping all the time, racing the stream's
// reader for every frame, a node still sees every change another node
// makes, in order and within RevocationWindow; and the pumps did handle
// frames, so the race was run.
func TestSessionCachePumpsRaceTheReader(t *testing.T) {
	srv := storetest.StartRedis(t)
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer raw.Close()
	a := newNode(t, srv.Addr(), "pump:")
	if !redis.Pumpable(a) {
		t.Skip("no descriptor for pumps on this platform")
	}
	var pumped atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				pumped.Add(int64(redis.Pump(a)))
				runtime.Gosched()
			}
		})
	}
	seesOtherNodes(t, a, raw, "pump:")
	close(stop)
	wg.Wait()
	if pumped.Load() == 0 {
		t.Fatal("no frame was handled by a pump")
	}
	t.Logf("pumps handled %d frames", pumped.Load())
}

// A connection whose descriptor the node cannot read (TLS, or a custom
// dialer's own type, as here) is read by its reader goroutine alone: no
// pump touches it, and the node still sees every change in time.
func TestSessionCacheWithoutPumps(t *testing.T) {
	srv := storetest.StartRedis(t)
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer raw.Close()
	wrapped := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		return struct{ net.Conn }{c}, err
	}
	a := openNode(t, "redis://"+srv.Addr()+"/0", "nopump:", wrapped)
	if redis.Pumpable(a) {
		t.Fatal("requests would read a connection without a descriptor")
	}
	seesOtherNodes(t, a, raw, "nopump:")
}

// A logout or step-up on one node holds on every other node when it
// answers (Store.settle): a token replayed on another node at once is
// refused there, a stepped-up request sent elsewhere at once is stepped up.
func TestSessionCacheWritesHoldEverywhereWhenTheyAnswer(t *testing.T) {
	srv := storetest.StartRedis(t)
	a := newNode(t, srv.Addr(), "settle:")
	b := newNode(t, srv.Addr(), "settle:")
	ctx := t.Context()
	for i := range 40 {
		id := sessionID + strconv.Itoa(i)
		sess := testSession(id)
		sess.StepUpMethod = authcore.StepUpOTP
		createCached(t, b, a, sess)
		sess.StepUpMethod = authcore.StepUpPush
		if err := b.SaveSession(ctx, sess, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, err := a.TouchSession(ctx, id, time.Minute); err != nil || got.StepUpMethod != authcore.StepUpPush {
			t.Fatalf("round %d: right after the other node's save answered: (%+v, %v), want the saved session", i, got, err)
		}
		if err := b.DeleteSession(ctx, id); err != nil {
			t.Fatal(err)
		}
		if got, err := a.TouchSession(ctx, id, time.Minute); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("round %d: right after the other node's delete answered: (%+v, %v), want ErrNotFound", i, got, err)
		}
	}
}

// A node sees its own writes at once: a step-up followed by the
// stepped-up request, a logout followed by a replayed token, a read of an
// id before it was created.
func TestSessionCacheSameNode(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := newNode(t, srv.Addr(), "self:")
	ctx := t.Context()
	for i := range 200 {
		id := sessionID + strconv.Itoa(i)
		if _, err := s.TouchSession(ctx, id, time.Minute); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("touch before create: %v", err)
		}
		sess := testSession(id)
		sess.StepUpMethod = authcore.StepUpOTP
		createCached(t, s, s, sess)
		sess.StepUpMethod = authcore.StepUpPush
		if err := s.SaveSession(ctx, sess, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TouchSession(ctx, id, time.Minute); err != nil || got.StepUpMethod != authcore.StepUpPush {
			t.Fatalf("round %d: touch right after save = (%+v, %v), want the saved session", i, got, err)
		}
		if err := s.DeleteSession(ctx, id); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TouchSession(ctx, id, time.Minute); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("round %d: touch right after delete = (%+v, %v), want ErrNotFound", i, got, err)
		}
	}
}

// Requests that find a held session's proof too old (here: after the node
// sat idle) wait for one heartbeat together instead of each reading Redis.
func TestSessionCacheStaleProofSharesAHeartbeat(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := newNode(t, srv.Addr(), "share:")
	createCached(t, s, s, testSession(sessionID))
	const waves, concurrent = 5, 50
	resetStats(t, srv.Addr())
	for range waves {
		time.Sleep(2 * redis.RevocationWindow) // the proof is stale now
		// The touches start together once every goroutine is up: starting
		// goroutines one by one on a loaded machine would spread a wave
		// over more than a proof's life.
		var ready, wg sync.WaitGroup
		start := make(chan struct{})
		for range concurrent {
			ready.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				ready.Done()
				<-start
				if _, err := s.TouchSession(context.Background(), sessionID, time.Minute); err != nil {
					t.Error(err)
				}
			}()
		}
		ready.Wait()
		close(start)
		wg.Wait()
	}
	calls := commandCalls(t, srv.Addr())
	if calls["get"] != 0 || calls["ping"] > 2*waves {
		t.Errorf("%d waves of %d touches with a stale proof ran GET %d and PING %d times, want no GET and at most %d PINGs",
			waves, concurrent, calls["get"], calls["ping"], 2*waves)
	}
	t.Logf("%d waves of %d touches with a stale proof: GET %d, PING %d", waves, concurrent, calls["get"], calls["ping"])
}

// A touch reads its proof before it looks the session up: a logout's
// invalidation and the reply that proves it, both handled in between, leave
// no stale entry to serve. (Looked up first, the session would be found,
// and then the proof found fresh.)
func TestSessionCacheReadsTheProofBeforeTheSession(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := newNode(t, srv.Addr(), "order:")
	other := newNode(t, srv.Addr(), "order:")
	createCached(t, s, s, testSession(sessionID))
	time.Sleep(2 * redis.RevocationWindow) // the proof is stale now
	ran := false
	redis.BetweenProofAndLookUp(t, func() {
		if ran {
			return
		}
		ran = true
		if err := other.DeleteSession(context.Background(), sessionID); err != nil {
			t.Error(err)
		}
		redis.AwaitFreshProof(t, s)
	})
	sess, err := s.TouchSession(t.Context(), sessionID, time.Minute)
	if !ran {
		t.Fatal("the touch did not come between proof and look-up")
	}
	if !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("touch of a session logged out before its proof: %v, %v; want ErrNotFound", sess, err)
	}
}

// Many nodes on one hot session: each slides it at most once per
// granularity and the others' slides do not make it slide again, so the
// cache keeps serving on every node.
func TestSessionCacheNodesShareAHotSession(t *testing.T) {
	srv := storetest.StartRedis(t)
	nodes := []*redis.Store{newNode(t, srv.Addr(), "many:"), newNode(t, srv.Addr(), "many:"), newNode(t, srv.Addr(), "many:")}
	ctx := t.Context()
	if err := nodes[0].CreateSession(ctx, testSession(sessionID), time.Minute); err != nil {
		t.Fatal(err)
	}
	resetStats(t, srv.Addr())
	const rounds = 300
	for i := range rounds {
		for _, n := range nodes {
			if _, err := n.TouchSession(ctx, sessionID, time.Minute); err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		}
	}
	calls := commandCalls(t, srv.Addr())
	if calls["pexpire"] != len(nodes) || calls["get"] > rounds*len(nodes)/10 {
		t.Errorf("%d touches on %d nodes ran PEXPIRE %d and GET %d times, want %d and at most %d",
			rounds*len(nodes), len(nodes), calls["pexpire"], calls["get"], len(nodes), rounds*len(nodes)/10)
	}
	t.Logf("%d touches on %d nodes: PEXPIRE %d, GET %d", rounds*len(nodes), len(nodes), calls["pexpire"], calls["get"])
}

// The idle window is slid at most once per granularity (ttl/8 here) while
// the session is in use, and that keeps it alive; once unused it expires.
func TestSessionCacheSlidesThrottled(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := newNode(t, srv.Addr(), "slide:")
	ctx := t.Context()
	const ttl = 400 * time.Millisecond // slid at most every 50ms
	var (
		id       string
		touches  int
		elapsed  time.Duration
		calls    map[string]int
		deadline = time.Now().Add(30 * time.Second) // bounds the attempts only
	)
	// A touch that misses the session shows that the window was not slid
	// only when it started less than a TTL, less the slide granularity,
	// after the touch before it (the last slide was at most that much
	// earlier): a machine stalled for longer lets the window run out
	// through no fault of the node, and the run starts over.
	for attempt := 1; ; attempt++ {
		id = sessionID + strconv.Itoa(attempt)
		prev := time.Now()
		if err := s.CreateSession(ctx, testSession(id), ttl); err != nil {
			t.Fatal(err)
		}
		resetStats(t, srv.Addr())
		start, stalled := time.Now(), false
		for touches = 0; time.Since(start) < 3*ttl; touches++ {
			touchStart := time.Now()
			if _, err := s.TouchSession(ctx, id, ttl); err != nil {
				if errors.Is(err, authcore.ErrNotFound) && time.Since(prev) >= ttl-ttl/8 && time.Now().Before(deadline) {
					t.Logf("touch %d answered %v after the one before it started: stalled, again", touches, time.Since(prev).Round(time.Millisecond))
					stalled = true
					break
				}
				t.Fatalf("touch %d after %v: %v: the idle window was not slid", touches, time.Since(start), err)
			}
			prev = touchStart
			time.Sleep(5 * time.Millisecond)
		}
		if !stalled {
			elapsed = time.Since(start)
			calls = commandCalls(t, srv.Addr())
			break
		}
	}
	if most := int(elapsed/(ttl/8)) + 1; calls["pexpire"] > most || calls["pexpire"] < 3 {
		t.Errorf("%d touches in %v slid %d times, want between 3 and %d", touches, elapsed.Round(time.Millisecond), calls["pexpire"], most)
	}
	t.Logf("%d touches in %v: PEXPIRE %d, GET %d", touches, elapsed.Round(time.Millisecond), calls["pexpire"], calls["get"])
	time.Sleep(ttl + 150*time.Millisecond)
	if _, err := s.TouchSession(ctx, id, ttl); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("touch one idle window after the last use: %v, want ErrNotFound", err)
	}
}

// A held session whose slide falls due is served without waiting for
// Redis: the slide goes out behind the answer. Redis holds write commands
// back here (CLIENT PAUSE WRITE), so a touch that waited for its PEXPIRE
// could not return before the pause ends; this one returns, PEXPIRE has
// not run yet, and it runs once the pause ends.
func TestSessionCacheSlidesInTheBackground(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := newNode(t, srv.Addr(), "bg:")
	ctx := t.Context()
	const ttl = 20 * time.Second // slid every 2.5 s, in the background for 10 s after a slide
	if err := s.CreateSession(ctx, testSession(sessionID), ttl); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TouchSession(ctx, sessionID, ttl); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2600 * time.Millisecond) // past the granularity, well within half the window
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
	defer raw.Close()
	before := commandCalls(t, srv.Addr())["pexpire"]
	if err := raw.Do(ctx, "client", "pause", 30000, "write").Err(); err != nil {
		t.Fatal(err)
	}
	paused := true
	defer func() {
		if paused {
			raw.Do(context.Background(), "client", "unpause")
		}
	}()
	got, err := s.TouchSession(ctx, sessionID, ttl)
	if err != nil || got.ID != sessionID {
		t.Fatalf("touch with its slide due = (%+v, %v)", got, err)
	}
	if n := commandCalls(t, srv.Addr())["pexpire"]; n != before {
		t.Fatalf("PEXPIRE ran %d times while Redis held writes back, want %d: the touch did not wait for it, so it cannot have run", n, before)
	}
	if err := raw.Do(ctx, "client", "unpause").Err(); err != nil {
		t.Fatal(err)
	}
	paused = false
	for commandCalls(t, srv.Addr())["pexpire"] != before+1 {
		if ctx.Err() != nil {
			t.Fatal("the background slide never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pttl := raw.PTTL(ctx, authcore.Keys.Session("bg:", sessionID)).Val(); pttl < ttl-2*time.Second {
		t.Errorf("TTL after the background slide = %v, want about %v", pttl, ttl)
	}
}

// An idle gateway sends Redis nothing: the heartbeat runs only while
// requests are served, and nothing polls.
func TestSessionCacheIdleSendsNothing(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := newNode(t, srv.Addr(), "idle:")
	ctx := t.Context()
	createCached(t, s, s, testSession(sessionID))
	// The test's own connection is made before the count starts.
	stats := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2, PoolSize: 1})
	defer stats.Close()
	for range 200 {
		if _, err := s.TouchSession(ctx, sessionID, time.Minute); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	// The last touches may have sent a heartbeat without waiting for it:
	// count from when Redis has answered everything sent.
	redis.AwaitAnswered(t, s)
	if err := stats.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	info, err := stats.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls="); ok {
			calls[name] = strings.SplitN(rest, ",", 2)[0]
		}
	}
	delete(calls, "config|resetstat") // the test's own
	if len(calls) != 0 {
		t.Errorf("an idle node sent %v in half a second, want nothing", calls)
	}
}

// Key-value records (challenges, counters, accounts, the session index)
// are never served from memory: another node's write is seen at once.
func TestSessionCacheLeavesKVExact(t *testing.T) {
	srv := storetest.StartRedis(t)
	a := newNode(t, srv.Addr(), "kv:")
	b := newNode(t, srv.Addr(), "kv:")
	ctx := t.Context()
	for i := range 100 {
		v := []byte(strconv.Itoa(i))
		if err := b.Set(ctx, authcore.Keys.Code(authcore.Keys.StepUpScope("x", authcore.PurposeStepUp)), v, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, err := a.Get(ctx, authcore.Keys.Code(authcore.Keys.StepUpScope("x", authcore.PurposeStepUp))); err != nil || string(got) != string(v) {
			t.Fatalf("Get after the other node's Set = (%q, %v), want %q", got, err, v)
		}
		member := "s" + strconv.Itoa(i)
		if err := b.AddMember(ctx, authcore.Keys.UserSessions("u"), member, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, err := a.Members(ctx, authcore.Keys.UserSessions("u")); err != nil || !slices.Contains(got, member) {
			t.Fatalf("Members after the other node's AddMember = (%v, %v), want %s in it", got, err, member)
		}
	}
}

func TestParseURLClientCache(t *testing.T) {
	for _, tc := range []struct {
		url     string
		cached  bool
		entries int
	}{
		{"redis://127.0.0.1:6379", true, redis.DefaultCacheEntries},
		{"redis://127.0.0.1:6379/0?client_cache_entries=10", true, 10},
		{"redis://127.0.0.1:6379/0?client_cache=false", false, redis.DefaultCacheEntries},
		{"redis://127.0.0.1:6379/2", true, redis.DefaultCacheEntries},
		{"redis-cluster://127.0.0.1:7000?client_cache=true", true, redis.DefaultCacheEntries},
		{"redis-sentinel://127.0.0.1:26379?master=m", true, redis.DefaultCacheEntries},
		{"redis-sentinel://127.0.0.1:26379?master=m&client_cache=false", false, redis.DefaultCacheEntries},
	} {
		o, err := redis.Parse(tc.url)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.url, err)
			continue
		}
		if o.SessionCache != tc.cached || o.CacheEntries != tc.entries {
			t.Errorf("Parse(%q): session cache %v with %d entries, want %v with %d", tc.url, o.SessionCache, o.CacheEntries, tc.cached, tc.entries)
		}
		if o.Redis.ClientSideCache != nil {
			t.Errorf("Parse(%q) turned on go-redis's own client-side cache", tc.url)
		}
	}
	for _, bad := range []string{
		"redis://127.0.0.1:6379?client_cache=maybe",
		"redis://127.0.0.1:6379?client_cache_entries=0",
		"redis://127.0.0.1:6379?client_cache_entries=many",
	} {
		if _, err := redis.Parse(bad); err == nil || !strings.Contains(err.Error(), "client_cache") {
			t.Errorf("Parse(%q) error = %v, want one naming client_cache", bad, err)
		}
	}
}

// touch is one TouchSession as a guarded request makes it.
type touch struct {
	start    time.Time
	admitted bool
	err      error
}

// hammering is touches of one session from several goroutines, a touch
// every millisecond each, until stop.
type hammering struct {
	mu      sync.Mutex
	touches []touch
	wg      sync.WaitGroup
	done    chan struct{}
	once    sync.Once
}

// hammer starts hammering id on node; the test's end stops it if the test
// did not.
func hammer(t *testing.T, node *redis.Store, id string) *hammering {
	const workers = 8
	h := &hammering{done: make(chan struct{})}
	for range workers {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for {
				select {
				case <-h.done:
					return
				default:
				}
				start := time.Now()
				_, err := node.TouchSession(context.Background(), id, time.Minute)
				h.mu.Lock()
				h.touches = append(h.touches, touch{start, err == nil, err})
				h.mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	t.Cleanup(func() { h.stop() })
	return h
}

// count returns how many touches so far match.
func (h *hammering) count(match func(touch) bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, tc := range h.touches {
		if match(tc) {
			n++
		}
	}
	return n
}

// stop ends the touches and returns every one made.
func (h *hammering) stop() []touch {
	h.once.Do(func() { close(h.done) })
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.touches
}

// admitted matches a touch that found the session.
func admitted(tc touch) bool { return tc.admitted }

// refusedLate returns a match for touches that started RevocationWindow or
// more after cutoff and failed with want.
func refusedLate(cutoff time.Time, want error) func(touch) bool {
	return func(tc touch) bool {
		return tc.start.Sub(cutoff) >= redis.RevocationWindow && errors.Is(tc.err, want)
	}
}

// refusedAfter fails the test for every touch that started
// RevocationWindow or more after cutoff and was still admitted, and returns
// how many touches started that late, and how many of them found the
// store unavailable.
func refusedAfter(t *testing.T, touches []touch, cutoff time.Time) (late, unavailable int) {
	t.Helper()
	admitted := 0
	for _, tc := range touches {
		if tc.start.Sub(cutoff) < redis.RevocationWindow {
			continue
		}
		late++
		if tc.admitted {
			admitted++
		} else if errors.Is(tc.err, authcore.ErrUnavailable) {
			unavailable++
		} else if !errors.Is(tc.err, authcore.ErrNotFound) {
			t.Errorf("touch %v after the cut-off: %v", tc.start.Sub(cutoff), tc.err)
		}
	}
	if admitted > 0 {
		t.Errorf("%d of %d touches that started %v or more after the cut-off were admitted", admitted, late, redis.RevocationWindow)
	}
	if late == 0 {
		t.Fatal("no touch started after the cut-off: the test tested nothing")
	}
	return late, unavailable
}

// linkFault is one way a node's link to Redis misbehaves, and how it ends.
type linkFault struct {
	name        string
	start, stop func(*storetest.Link)
	// unavailable: the node cannot reach Redis, so late touches are 503s;
	// otherwise they reach Redis and find the session gone.
	unavailable bool
}

var linkFaults = []linkFault{
	{"frozen", (*storetest.Link).Freeze, (*storetest.Link).Thaw, true},
	{"delayed 50ms", func(l *storetest.Link) { l.Delay(50 * time.Millisecond) }, func(l *storetest.Link) { l.Delay(0) }, false},
	{"cut", (*storetest.Link).Cut, (*storetest.Link).Restore, true},
}

// revokeWhileLinkFails: node d reaches Redis through link, node a
// directly; d holds the session hot; the link fails; a logs the session
// out; no touch on d that starts RevocationWindow after the logout
// answered is admitted; when the link recovers d answers "not found" by
// itself.
func revokeWhileLinkFails(t *testing.T, f linkFault, link *storetest.Link, a, d *redis.Store, id string) {
	ctx := t.Context()
	sess := testSession(id)
	createCached(t, a, d, sess)
	h := hammer(t, d, id)
	// Counted, not timed: d serves the hot session, and the test goes on
	// until d has refused late touches as the fault makes it (after its
	// read timeout, when the link does not answer).
	waitFor(t, "touches admitted on d", func() bool { return h.count(admitted) >= 10 })
	f.start(link)
	if err := a.DeleteSession(ctx, id); err != nil {
		t.Fatal(err)
	}
	answered := time.Now()
	refusal := authcore.ErrNotFound
	if f.unavailable {
		refusal = authcore.ErrUnavailable
	}
	waitFor(t, "late touches refused on d", func() bool { return h.count(refusedLate(answered, refusal)) >= 3 })
	touches := h.stop()
	f.stop(link)
	late, unavailable := refusedAfter(t, touches, answered)
	before := 0
	for _, tc := range touches {
		if tc.admitted && tc.start.After(answered) {
			before++
		}
	}
	t.Logf("%s: %d touches, %d admitted after the logout answered (all within %v), %d late touches refused, %d of them unavailable",
		f.name, len(touches), before, redis.RevocationWindow, late, unavailable)
	if f.unavailable && unavailable == 0 {
		t.Errorf("%s: no late touch was refused as unavailable", f.name)
	}
	// Recovery by itself.
	deadline := time.Now().Add(30 * time.Second) // bounds a hang only
	for {
		_, err := d.TouchSession(ctx, id, time.Minute)
		if errors.Is(err, authcore.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: after the link recovered, d still answers %v, want not found", f.name, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRevokedWhileLinkFails(t *testing.T) {
	srv := storetest.StartRedis(t)
	for i, f := range linkFaults {
		t.Run(f.name, func(t *testing.T) {
			link := storetest.NewLink(t)
			a := newNode(t, srv.Addr(), "link:")
			d := openNode(t, "redis://"+srv.Addr()+"/0", "link:", link.Dialer)
			revokeWhileLinkFails(t, f, link, a, d, sessionID+strconv.Itoa(i))
		})
	}
}

// frozenStore: the store itself stops answering (SIGSTOP) while node n
// holds a session hot; no touch that starts RevocationWindow after the
// freeze is admitted, they are refused as unavailable, and when the store
// thaws n serves the session again by itself. The freeze lasts until n
// has refused late touches as unavailable (after its read timeout), or
// maxFreeze, past which the topology would fail the server over.
func frozenStore(t *testing.T, maxFreeze time.Duration, pause, resume func(), writer, n *redis.Store, id string) {
	createCached(t, writer, n, testSession(id))
	h := hammer(t, n, id)
	waitFor(t, "touches admitted on the node", func() bool { return h.count(admitted) >= 10 })
	pause()
	paused := time.Now()
	for h.count(refusedLate(paused, authcore.ErrUnavailable)) < 3 && time.Since(paused) < maxFreeze {
		time.Sleep(5 * time.Millisecond)
	}
	touches := h.stop()
	resume()
	late, unavailable := refusedAfter(t, touches, paused)
	if unavailable != late {
		t.Errorf("%d of %d touches after the freeze were refused as unavailable, want all", unavailable, late)
	}
	t.Logf("store frozen: %d touches, %d late ones all refused as unavailable", len(touches), late)
	deadline := time.Now().Add(30 * time.Second) // bounds a hang only
	for {
		_, err := n.TouchSession(t.Context(), id, time.Minute)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the store thawed, the node still answers %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFrozenStoreAdmitsNothing(t *testing.T) {
	srv := storetest.StartRedis(t)
	n := newNode(t, srv.Addr(), "frozen:")
	frozenStore(t, 30*time.Second, srv.Pause, srv.Resume, n, n, sessionID) // nothing fails a lone server over
}

// readsProcessed is how many reads from clients the server processed
// (INFO stats total_reads_processed): about one per write a client made.
func readsProcessed(t *testing.T, addr string) int {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2})
	defer c.Close()
	info, err := c.Info(t.Context(), "stats").Result()
	if err != nil {
		t.Fatalf("INFO stats: %v", err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_reads_processed:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatal("INFO stats has no total_reads_processed")
	return 0
}

// Background slides of many held sessions go out together, a few writes
// for all of them, and each does slide its session's idle window.
func TestSessionCacheBatchesBackgroundSlides(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := newNode(t, srv.Addr(), "batch:")
	ctx := t.Context()
	const (
		n   = 100
		ttl = 8 * time.Second // slid in the background from 1s to 4s after the last slide
	)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = sessionID + strconv.Itoa(i)
		if err := s.CreateSession(ctx, testSession(ids[i]), ttl); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TouchSession(ctx, ids[i], ttl); err != nil { // read and slid: held, and known
			t.Fatal(err)
		}
	}
	time.Sleep(ttl/8 + 200*time.Millisecond)
	resetStats(t, srv.Addr())
	for _, id := range ids {
		if _, err := s.TouchSession(ctx, id, ttl); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // the slides' delay, so that the look below usually comes once
	waitFor(t, "the background slides", func() bool { return commandCalls(t, srv.Addr())["pexpire"] >= n })
	calls, reads := commandCalls(t, srv.Addr()), readsProcessed(t, srv.Addr())
	// One write per slide would be n reads; each INFO and CONFIG call of
	// this test is a few more.
	if calls["pexpire"] != n || reads > n/2 {
		t.Errorf("%d background slides: PEXPIRE %d times in %d reads by the server, want %d in at most %d",
			n, calls["pexpire"], reads, n, n/2)
	}
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
	defer c.Close()
	for _, id := range []string{ids[0], ids[n-1]} {
		// Created (and slid) over a second ago: without this slide the TTL
		// would be under ttl - 1s.
		if pttl := c.PTTL(ctx, "batch:s:{"+id+"}").Val(); pttl <= ttl-ttl/8 {
			t.Errorf("session %s has %v left: the background slide did not renew its window", id, pttl)
		}
	}
	t.Logf("%d background slides in %d server reads", n, reads)
}
