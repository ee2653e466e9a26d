package redis_test

import (
	"bufio"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/store/redis"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// The tests below are about the client-side cache of a redis:// store:
// session reads served from this node's memory, kept exact by Redis's
// invalidation messages, with the idle window slid at a throttled rate.

// newNode opens a store the way a gateway node does, on its own client.
func newNode(t *testing.T, addr, prefix string) *redis.Store {
	t.Helper()
	s := redis.New(newClient(t, addr), prefix)
	t.Cleanup(func() { _ = s.Close() })
	if !s.Cached() {
		t.Fatal("a redis:// store on db 0 has no client-side cache")
	}
	return s
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
func TestClientCacheServesReads(t *testing.T) {
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
	// The first touch slides (GETEX); its write invalidates the entry, so
	// the second reads once more (GET); the rest are served locally.
	if calls["getex"] != 1 || calls["get"] > 2 {
		t.Errorf("%d touches ran GETEX %d times and GET %d times, want 1 and at most 2",
			touches, calls["getex"], calls["get"])
	}
	t.Logf("%d touches: GETEX %d, GET %d", touches, calls["getex"], calls["get"])
}

// Another node's logout, step-up or password change reaches this node's
// cache through Redis's invalidation message; it is never missed. The
// writes are made with a plain client, so the figures logged are the
// propagation alone (a store's own writes also wait RevocationGrace).
func TestClientCacheSeesOtherNodes(t *testing.T) {
	srv := storetest.StartRedis(t)
	a := newNode(t, srv.Addr(), "two:")
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer raw.Close()
	ctx := t.Context()
	waitFor := func(what string, seen func() bool) time.Duration {
		start := time.Now()
		for !seen() {
			if time.Since(start) > time.Second {
				t.Fatalf("node A still had not seen %s after 1s: the cache missed the invalidation", what)
			}
			time.Sleep(50 * time.Microsecond)
		}
		return time.Since(start)
	}
	var saves, deletes []time.Duration
	for i := range 40 {
		id := sessionID + strconv.Itoa(i)
		sess := testSession(id)
		sess.SteppedUp, sess.StepUpMethod = time.Time{}, ""
		createCached(t, a, a, sess)
		sess.SteppedUp, sess.StepUpMethod = time.Now(), authcore.StepUpPush
		data, err := authcore.MarshalSession(sess)
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.Set(ctx, "two:s:{"+id+"}", data, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		saves = append(saves, waitFor("a step-up", func() bool {
			got, err := a.TouchSession(ctx, id, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return got.StepUpMethod == authcore.StepUpPush
		}))
		if err := raw.Del(ctx, "two:s:{"+id+"}").Err(); err != nil {
			t.Fatal(err)
		}
		deletes = append(deletes, waitFor("a logout", func() bool {
			_, err := a.TouchSession(ctx, id, time.Minute)
			if err != nil && !errors.Is(err, authcore.ErrNotFound) {
				t.Fatal(err)
			}
			return err != nil
		}))
	}
	slices.Sort(saves)
	slices.Sort(deletes)
	t.Logf("seen on the other node: step-up p50 %v max %v; logout p50 %v max %v",
		saves[len(saves)/2], saves[len(saves)-1], deletes[len(deletes)/2], deletes[len(deletes)-1])
}

// A logout or step-up returns only once the other nodes have had time to
// apply the invalidation (redis.RevocationGrace): a token replayed on
// another node right after "logged out" is refused there. Timing on a
// loaded machine may let a rare read slip through; without the grace
// nearly every immediate read would be stale, so allow at most 2 of 40.
func TestClientCacheWritesSettle(t *testing.T) {
	srv := storetest.StartRedis(t)
	a := newNode(t, srv.Addr(), "settle:")
	b := newNode(t, srv.Addr(), "settle:")
	ctx := t.Context()
	staleSave, staleDelete := 0, 0
	for i := range 40 {
		id := sessionID + strconv.Itoa(i)
		sess := testSession(id)
		sess.StepUpMethod = authcore.StepUpOTP
		createCached(t, b, a, sess)
		sess.StepUpMethod = authcore.StepUpPush
		if err := b.SaveSession(ctx, sess, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, err := a.TouchSession(ctx, id, time.Minute); err != nil {
			t.Fatal(err)
		} else if got.StepUpMethod != authcore.StepUpPush {
			staleSave++
		}
		if err := b.DeleteSession(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := a.TouchSession(ctx, id, time.Minute); err == nil {
			staleDelete++
		} else if !errors.Is(err, authcore.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if staleSave > 2 || staleDelete > 2 {
		t.Errorf("right after the other node's write returned, this node read the old session %d/40 times after a save and %d/40 after a delete",
			staleSave, staleDelete)
	}
	t.Logf("stale reads right after the write returned: %d/40 after save, %d/40 after delete", staleSave, staleDelete)
}

// A node sees its own writes at once, with no wait for the invalidation:
// a step-up followed by the stepped-up request, a logout followed by a
// replayed token. The grace is off, so only the eviction can make it so.
func TestClientCacheSameNode(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := newNode(t, srv.Addr(), "self:")
	redis.NoGrace(s)
	ctx := t.Context()
	for i := range 200 {
		id := sessionID + strconv.Itoa(i)
		// A read before the session exists must not leave "missing" behind.
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

// The idle window is slid at most once per granularity (ttl/8 here) while
// the session is in use, and that keeps it alive; once unused it expires.
func TestClientCacheSlidesThrottled(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := newNode(t, srv.Addr(), "slide:")
	ctx := t.Context()
	const ttl = 400 * time.Millisecond // slid at most every 50ms
	if err := s.CreateSession(ctx, testSession(sessionID), ttl); err != nil {
		t.Fatal(err)
	}
	resetStats(t, srv.Addr())
	start, touches := time.Now(), 0
	for time.Since(start) < 3*ttl {
		if _, err := s.TouchSession(ctx, sessionID, ttl); err != nil {
			t.Fatalf("touch %d after %v: %v: the idle window was not slid", touches, time.Since(start), err)
		}
		touches++
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	calls := commandCalls(t, srv.Addr())
	if most := int(elapsed/(ttl/8)) + 1; calls["getex"] > most || calls["getex"] < 3 {
		t.Errorf("%d touches in %v slid %d times, want between 3 and %d", touches, elapsed.Round(time.Millisecond), calls["getex"], most)
	}
	t.Logf("%d touches in %v: GETEX %d, GET %d", touches, elapsed.Round(time.Millisecond), calls["getex"], calls["get"])
	time.Sleep(ttl + 150*time.Millisecond)
	if _, err := s.TouchSession(ctx, sessionID, ttl); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("touch one idle window after the last use: %v, want ErrNotFound", err)
	}
}

// Key-value records (challenges, counters, accounts, the session index)
// are never served from the cache: another node's write is seen at once.
func TestClientCacheLeavesKVExact(t *testing.T) {
	srv := storetest.StartRedis(t)
	a := newNode(t, srv.Addr(), "kv:")
	b := newNode(t, srv.Addr(), "kv:")
	ctx := t.Context()
	for i := range 100 {
		v := []byte(strconv.Itoa(i))
		if err := b.Set(ctx, "c:{x}:otp", v, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, err := a.Get(ctx, "c:{x}:otp"); err != nil || string(got) != string(v) {
			t.Fatalf("Get after the other node's Set = (%q, %v), want %q", got, err, v)
		}
		member := "s" + strconv.Itoa(i)
		if err := b.AddMember(ctx, "us:{u}", member, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, err := a.Members(ctx, "us:{u}"); err != nil || !slices.Contains(got, member) {
			t.Fatalf("Members after the other node's AddMember = (%v, %v), want %s in it", got, err, member)
		}
	}
	if calls := commandCalls(t, srv.Addr()); calls["get"] != 0 {
		t.Errorf("key-value reads went through GET %d times, want none (GET is what the cache serves)", calls["get"])
	}
}

func TestParseURLClientCache(t *testing.T) {
	for _, tc := range []struct {
		url    string
		cached bool
	}{
		{"redis://127.0.0.1:6379", true},
		{"redis://127.0.0.1:6379/0?client_cache_entries=10", true},
		{"redis://127.0.0.1:6379/0?client_cache=false", false},
		{"redis://127.0.0.1:6379/2", false}, // go-redis caches db 0 only
		{"redis-cluster://127.0.0.1:7000?client_cache=true", false},
		{"redis-sentinel://127.0.0.1:26379?master=m", false},
	} {
		opts, err := redis.ParseURL(tc.url)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.url, err)
			continue
		}
		if got := opts.ClientSideCache != nil; got != tc.cached {
			t.Errorf("ParseURL(%q): client-side cache %v, want %v", tc.url, got, tc.cached)
		}
	}
	for _, bad := range []string{
		"redis://127.0.0.1:6379?client_cache=maybe",
		"redis://127.0.0.1:6379?client_cache_entries=0",
		"redis://127.0.0.1:6379?client_cache_entries=many",
	} {
		if _, err := redis.ParseURL(bad); err == nil || !strings.Contains(err.Error(), "client_cache") {
			t.Errorf("ParseURL(%q) error = %v, want one naming client_cache", bad, err)
		}
	}
}
