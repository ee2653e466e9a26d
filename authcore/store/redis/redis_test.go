package redis_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
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

// newClient connects to addr the way the gateway does: through ParseURL,
// so the tests run with the production timeouts and retries.
func newClient(t testing.TB, addr string) goredis.UniversalClient {
	t.Helper()
	opts, err := redis.ParseURL("redis://" + addr + "/0")
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	return goredis.NewUniversalClient(opts)
}

// TestConformance runs the suite with the session cache (the default) and
// without it.
func TestConformance(t *testing.T) {
	srv := storetest.StartRedis(t)
	var n atomic.Int64
	for _, mode := range []struct{ name, query string }{{"Cached", ""}, {"Uncached", "?client_cache=false"}} {
		t.Run(mode.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) authcore.Store {
				opts, err := redis.Parse("redis://" + srv.Addr() + "/0" + mode.query)
				if err != nil {
					t.Fatal(err)
				}
				s := redis.Open(opts, fmt.Sprintf("conf%d:", n.Add(1)))
				if s.Cached() != (mode.query == "") {
					t.Fatalf("store Cached() = %v for %q", s.Cached(), mode.query)
				}
				// A fresh prefix per subtest keeps subtests apart on one server.
				return s
			})
		})
	}
}

// testSession is shaped like a real login: digit ids, stepped up.
func testSession(id string) *authcore.Session {
	now := time.Now()
	return &authcore.Session{
		ID:              id,
		CredentialsID:   "110104413000181234",
		CredentialsType: "ROOT",
		Identity:        authcore.IdentityRef{Type: "CONSUMER", ID: "110104413000187654"},
		Created:         now,
		LastUsed:        now,
		Expires:         now.Add(12 * time.Hour),
		SteppedUp:       now,
		StepUpMethod:    authcore.StepUpOTP,
	}
}

// sessionID is shaped like the gateway's: 16 random bytes, base64url.
const sessionID = "q3Vz7bXh0JmTnL2kPa9wYg"

func TestKeysInRedis(t *testing.T) {
	srv := storetest.StartRedis(t)
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = raw.Close() })
	const prefix = "authgate:"
	s := redis.New(newClient(t, srv.Addr()), prefix)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	const ttl = 5 * time.Minute
	wantKey := "authgate:s:{" + sessionID + "}"

	checkTTL := func(after string) {
		t.Helper()
		pttl, err := raw.PTTL(ctx, wantKey).Result()
		if err != nil {
			t.Fatalf("PTTL after %s: %v", after, err)
		}
		if pttl <= 0 || pttl > ttl {
			t.Errorf("PTTL after %s = %v, want in (0, %v]: every key must expire", after, pttl, ttl)
		}
	}

	sess := testSession(sessionID)
	if err := s.CreateSession(ctx, sess, ttl); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	// The test server is ours alone, so listing its keys is fine here.
	keys, err := raw.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	if len(keys) != 1 || keys[0] != wantKey {
		t.Fatalf("keys after CreateSession = %q, want exactly [%q]", keys, wantKey)
	}
	checkTTL("create")

	// Touch resets the TTL: shorten it by hand first so the reset shows.
	if err := raw.PExpire(ctx, wantKey, time.Second).Err(); err != nil {
		t.Fatalf("PEXPIRE: %v", err)
	}
	if _, err := s.TouchSession(ctx, sessionID, ttl); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	checkTTL("touch")
	if pttl := raw.PTTL(ctx, wantKey).Val(); pttl <= time.Second {
		t.Errorf("PTTL after touch = %v: TouchSession did not slide the TTL", pttl)
	}

	if err := raw.PExpire(ctx, wantKey, time.Second).Err(); err != nil {
		t.Fatalf("PEXPIRE: %v", err)
	}
	sess.StepUpMethod = authcore.StepUpPush
	if err := s.SaveSession(ctx, sess, ttl); err != nil {
		t.Fatalf("SaveSession: %v", err)
	}
	checkTTL("save")
	if pttl := raw.PTTL(ctx, wantKey).Val(); pttl <= time.Second {
		t.Errorf("PTTL after save = %v: SaveSession did not set the TTL", pttl)
	}

	// The value is the shared encoding, so other tools can read it.
	data, err := raw.Get(ctx, wantKey).Bytes()
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	got, err := authcore.UnmarshalSession(sessionID, data)
	if err != nil {
		t.Fatalf("stored value does not decode: %v", err)
	}
	if got.StepUpMethod != authcore.StepUpPush {
		t.Errorf("stored StepUpMethod = %q, want %q", got.StepUpMethod, authcore.StepUpPush)
	}

	if err := s.DeleteSession(ctx, sessionID); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if n := raw.Exists(ctx, wantKey).Val(); n != 0 {
		t.Errorf("key still exists after DeleteSession")
	}
}

func TestKVKeysInRedis(t *testing.T) {
	srv := storetest.StartRedis(t)
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = raw.Close() })
	const prefix = "authgate:"
	s := redis.New(newClient(t, srv.Addr()), prefix)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	const ttl = 5 * time.Minute
	var (
		setKey  = authcore.Keys.Code(authcore.Keys.StepUpScope(sessionID, authcore.PurposeStepUp))
		nxKey   = authcore.Keys.PushResolution(sessionID)
		incrKey = authcore.Keys.RateLimit(authcore.LimitLogin, "203.0.113.7", 1)
		takeKey = authcore.Keys.MFASession(sessionID, "token")
	)
	if err := s.Set(ctx, setKey, []byte("123456"), ttl); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if ok, err := s.SetNX(ctx, nxKey, []byte("x"), ttl); err != nil || !ok {
		t.Fatalf("SetNX = (%v, %v), want true", ok, err)
	}
	for range 2 {
		if _, err := s.Incr(ctx, incrKey, ttl); err != nil {
			t.Fatalf("Incr: %v", err)
		}
	}
	if err := s.Set(ctx, takeKey, []byte("t"), ttl); err != nil {
		t.Fatalf("Set: %v", err)
	}

	// The test server is ours alone, so listing its keys is fine here.
	keys, err := raw.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	slices.Sort(keys)
	want := []string{prefix + setKey, prefix + incrKey, prefix + nxKey, prefix + takeKey}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("keys = %q, want exactly %q (<prefix><key>)", keys, want)
	}
	for _, k := range keys {
		pttl, err := raw.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", k, err)
		}
		if pttl <= 0 || pttl > ttl {
			t.Errorf("PTTL %s = %v, want in (0, %v]: every key must expire", k, pttl, ttl)
		}
	}
	if v := raw.Get(ctx, prefix+incrKey).Val(); v != "2" {
		t.Errorf("counter value in Redis = %q, want \"2\"", v)
	}

	// Incr leaves an existing TTL alone (PEXPIRE ... NX): shorten it by
	// hand, increment, and it stays short.
	if err := raw.PExpire(ctx, prefix+incrKey, 10*time.Second).Err(); err != nil {
		t.Fatalf("PEXPIRE: %v", err)
	}
	if n, err := s.Incr(ctx, incrKey, ttl); err != nil || n != 3 {
		t.Fatalf("Incr = (%d, %v), want 3", n, err)
	}
	if pttl := raw.PTTL(ctx, prefix+incrKey).Val(); pttl <= 0 || pttl > 10*time.Second {
		t.Errorf("PTTL after a later Incr = %v, want <= 10s: Incr extended the counter", pttl)
	}

	if _, err := s.TakeOnce(ctx, takeKey); err != nil {
		t.Fatalf("TakeOnce: %v", err)
	}
	if err := s.Delete(ctx, setKey); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if n := raw.Exists(ctx, prefix+takeKey, prefix+setKey).Val(); n != 0 {
		t.Errorf("%d keys still exist after TakeOnce and Delete", n)
	}
}

// countingHook counts what a client sends: each command and each
// pipeline (a MULTI/EXEC transaction included) is one round trip.
type countingHook struct{ n atomic.Int64 }

func (h *countingHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *countingHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

func TestKVOneRoundTrip(t *testing.T) {
	// SPEC §4: at most one round trip per guarded request, so every store
	// call is one.
	srv := storetest.StartRedis(t)
	client := newClient(t, srv.Addr())
	hook := &countingHook{}
	client.AddHook(hook)
	s := redis.New(client, "rt:")
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	// Dial outside the count: a new connection's handshake (HELLO, CLIENT
	// SETINFO) passes through the hooks too, and go-redis keeps pipelines,
	// MULTI/EXEC included, in a pool of their own, so warm up both pools.
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if _, err := s.Incr(ctx, "warm-up", time.Minute); err != nil {
		t.Fatalf("Incr: %v", err)
	}
	key := authcore.Keys.PushIssues(sessionID)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Incr (new)", func() error { _, err := s.Incr(ctx, key, time.Minute); return err }},
		{"Incr (existing)", func() error { _, err := s.Incr(ctx, key, time.Minute); return err }},
		{"Get", func() error { _, err := s.Get(ctx, key); return err }},
		{"Set", func() error { return s.Set(ctx, key, []byte("v"), time.Minute) }},
		{"SetNX", func() error { _, err := s.SetNX(ctx, key, []byte("v"), time.Minute); return err }},
		{"TakeOnce", func() error { _, err := s.TakeOnce(ctx, key); return err }},
		{"Delete", func() error { return s.Delete(ctx, key) }},
		{"TouchSession", func() error {
			_, err := s.TouchSession(ctx, sessionID, time.Minute)
			if errors.Is(err, authcore.ErrNotFound) {
				return nil
			}
			return err
		}},
	} {
		before := hook.n.Load()
		if err := tc.call(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n := hook.n.Load() - before; n != 1 {
			t.Errorf("%s took %d round trips, want 1", tc.name, n)
		}
	}
}

func TestTTLMustBePositive(t *testing.T) {
	// A zero TTL would become PERSIST or a key without expiry; the store
	// refuses it instead of keeping a session forever.
	srv := storetest.StartRedis(t)
	s := redis.New(newClient(t, srv.Addr()), "ttl:")
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	sess := testSession(sessionID)
	if err := s.CreateSession(ctx, sess, 0); err == nil {
		t.Error("CreateSession with ttl 0: no error")
	}
	if err := s.CreateSession(ctx, sess, time.Minute); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if _, err := s.TouchSession(ctx, sess.ID, 0); err == nil {
		t.Error("TouchSession with ttl 0: no error")
	}
	if err := s.SaveSession(ctx, sess, -time.Second); err == nil {
		t.Error("SaveSession with ttl -1s: no error")
	}
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = raw.Close() })
	if pttl := raw.PTTL(ctx, "ttl:s:{"+sessionID+"}").Val(); pttl <= 0 {
		t.Errorf("PTTL = %v after refused calls, want the key to keep its TTL", pttl)
	}
}

func TestSessionMemoryUsage(t *testing.T) {
	// SPEC §11: at most 512 bytes of Redis memory per live session,
	// key included, for the largest session there is: a browser session
	// (with its secret's digest) from the longest IPv6 address, with a
	// user agent as long as a session keeps.
	srv := storetest.StartRedis(t)
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = raw.Close() })
	s := redis.New(newClient(t, srv.Addr()), "authgate:")
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	largest := testSession(sessionID)
	largest.Kind, largest.SecretHash = authcore.KindBrowser, strings.Repeat("h", 43)
	largest.ClientIP = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	largest.UserAgent = strings.Repeat("u", authcore.MaxUserAgentLen)
	if err := s.CreateSession(ctx, largest, 5*time.Minute); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	used, err := raw.MemoryUsage(ctx, "authgate:s:{"+sessionID+"}").Result()
	if err != nil {
		t.Fatalf("MEMORY USAGE: %v", err)
	}
	t.Logf("MEMORY USAGE of a session key: %d bytes", used)
	if used > 512 {
		t.Errorf("a session takes %d bytes in Redis, want <= 512", used)
	}
}

func TestParseURL(t *testing.T) {
	const secret = "hunter2"
	good := []struct {
		name  string
		url   string
		check func(t *testing.T, o *goredis.UniversalOptions)
	}{
		{"plain", "redis://localhost:6379/0", func(t *testing.T, o *goredis.UniversalOptions) {
			eq(t, "Addrs", o.Addrs, []string{"localhost:6379"})
			eq(t, "DB", o.DB, 0)
			eq(t, "Password", o.Password, "")
			eq(t, "TLS", o.TLSConfig != nil, false)
			eq(t, "MasterName", o.MasterName, "")
			eq(t, "IsClusterMode", o.IsClusterMode, false)
		}},
		{"password and db", "redis://:" + secret + "@10.0.0.1:6380/2", func(t *testing.T, o *goredis.UniversalOptions) {
			eq(t, "Addrs", o.Addrs, []string{"10.0.0.1:6380"})
			eq(t, "DB", o.DB, 2)
			eq(t, "Username", o.Username, "")
			eq(t, "Password", o.Password, secret)
		}},
		{"user and escaped password", "redis://gate:p%40ss%3Aw%2Fd@cache:6379", func(t *testing.T, o *goredis.UniversalOptions) {
			eq(t, "Username", o.Username, "gate")
			eq(t, "Password", o.Password, "p@ss:w/d")
		}},
		{"default port", "redis://cache", func(t *testing.T, o *goredis.UniversalOptions) {
			eq(t, "Addrs", o.Addrs, []string{"cache:6379"})
		}},
		{"ipv6", "redis://[::1]:6380/1", func(t *testing.T, o *goredis.UniversalOptions) {
			eq(t, "Addrs", o.Addrs, []string{"[::1]:6380"})
			eq(t, "DB", o.DB, 1)
		}},
		{"tls", "rediss://:" + secret + "@redis.example.com:6380/1", func(t *testing.T, o *goredis.UniversalOptions) {
			if o.TLSConfig == nil {
				t.Fatal("no TLS config for rediss://")
			}
			eq(t, "ServerName", o.TLSConfig.ServerName, "redis.example.com")
			eq(t, "Password", o.Password, secret)
			eq(t, "DB", o.DB, 1)
		}},
		{"defaults", "redis://cache:6379", func(t *testing.T, o *goredis.UniversalOptions) {
			eq(t, "DialTimeout", o.DialTimeout, redis.DefaultDialTimeout)
			eq(t, "ReadTimeout", o.ReadTimeout, redis.DefaultReadTimeout)
			eq(t, "WriteTimeout", o.WriteTimeout, redis.DefaultWriteTimeout)
			eq(t, "MaxRetries", o.MaxRetries, redis.DefaultMaxRetries)
			eq(t, "DialerRetries", o.DialerRetries, redis.DefaultDialerRetries)
		}},
		{"query options win over defaults", "redis://cache:6379/0?dial_timeout=3s&read_timeout=2s&max_retries=-1&pool_size=7", func(t *testing.T, o *goredis.UniversalOptions) {
			eq(t, "DialTimeout", o.DialTimeout, 3*time.Second)
			eq(t, "ReadTimeout", o.ReadTimeout, 2*time.Second)
			eq(t, "MaxRetries", o.MaxRetries, -1)
			eq(t, "PoolSize", o.PoolSize, 7)
		}},
		{"sentinel", "redis-sentinel://:" + secret + "@s1:26379,s2:26380,s3/3?master=mymaster", func(t *testing.T, o *goredis.UniversalOptions) {
			eq(t, "Addrs", o.Addrs, []string{"s1:26379", "s2:26380", "s3:26379"})
			eq(t, "MasterName", o.MasterName, "mymaster")
			eq(t, "DB", o.DB, 3)
			eq(t, "Password", o.Password, secret)
			eq(t, "SentinelPassword", o.SentinelPassword, "")
			eq(t, "DialTimeout", o.DialTimeout, redis.DefaultDialTimeout)
		}},
		{"sentinel with sentinel auth", "redis-sentinel://s1:26379?master=m&sentinel_password=" + secret, func(t *testing.T, o *goredis.UniversalOptions) {
			eq(t, "SentinelPassword", o.SentinelPassword, secret)
			eq(t, "Password", o.Password, "")
		}},
		{"sentinel tls", "rediss-sentinel://s1:26379?master=m", func(t *testing.T, o *goredis.UniversalOptions) {
			eq(t, "TLS", o.TLSConfig != nil, true)
		}},
		{"cluster", "redis-cluster://:" + secret + "@n1:7000,n2:7001", func(t *testing.T, o *goredis.UniversalOptions) {
			eq(t, "Addrs", o.Addrs, []string{"n1:7000", "n2:7001"})
			eq(t, "IsClusterMode", o.IsClusterMode, true)
			eq(t, "Password", o.Password, secret)
			eq(t, "ReadTimeout", o.ReadTimeout, redis.DefaultReadTimeout)
		}},
		{"cluster with one seed", "redis-cluster://n1:7000", func(t *testing.T, o *goredis.UniversalOptions) {
			eq(t, "Addrs", o.Addrs, []string{"n1:7000"})
			eq(t, "IsClusterMode", o.IsClusterMode, true)
		}},
		{"cluster tls", "rediss-cluster://n1:7000,n2:7000", func(t *testing.T, o *goredis.UniversalOptions) {
			eq(t, "TLS", o.TLSConfig != nil, true)
		}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			o, err := redis.ParseURL(tc.url)
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tc.url, err)
			}
			tc.check(t, o)
		})
	}

	// Each client kind comes out of NewUniversalClient as intended.
	for _, tc := range []struct {
		url  string
		want string
	}{
		{"redis://cache:6379/0", "*redis.Client"},
		{"redis-sentinel://s1:26379,s2:26379?master=m", "*redis.Client"}, // sentinel-backed failover client
		{"redis-cluster://n1:7000", "*redis.ClusterClient"},
		{"redis-cluster://n1:7000,n2:7001", "*redis.ClusterClient"},
	} {
		o, err := redis.ParseURL(tc.url)
		if err != nil {
			t.Fatalf("ParseURL(%q): %v", tc.url, err)
		}
		c := goredis.NewUniversalClient(o)
		if got := fmt.Sprintf("%T", c); got != tc.want {
			t.Errorf("NewUniversalClient(ParseURL(%q)) is a %s, want %s", tc.url, got, tc.want)
		}
		_ = c.Close()
	}

	bad := []struct {
		name, url, wantInErr string
	}{
		{"empty", "", "empty"},
		{"no scheme", secret + "@cache:6379", "scheme"},
		{"other scheme", "http://:" + secret + "@cache:6379", `"http"`},
		{"unix socket", "unix://:" + secret + "@/tmp/redis.sock", `"unix"`},
		{"missing host", "redis://:" + secret + "@:6379/0", "host"},
		{"nothing after credentials", "redis://:" + secret + "@", "host"},
		{"bad port", "redis://:" + secret + "@cache:port/0", "port"},
		{"port out of range", "redis://:" + secret + "@cache:70000/0", "port"},
		{"bad db", "redis://:" + secret + "@cache:6379/zero", "database"},
		{"two path segments", "redis://:" + secret + "@cache:6379/0/1", "path"},
		{"unknown option", "redis://:" + secret + "@cache:6379/0?colour=blue", "colour"},
		{"bad duration", "redis://:" + secret + "@cache:6379/0?dial_timeout=soon", "dial_timeout"},
		{"several hosts for redis://", "redis://:" + secret + "@a:1,b:2/0", "one host"},
		{"empty host in list", "redis-cluster://:" + secret + "@a:1,,b:2", "empty host"},
		{"bad escape in password", "redis://:hunter2%zz@cache:6379", "password"},
		{"sentinel without master", "redis-sentinel://:" + secret + "@s1:26379,s2:26379/0", "master"},
		{"sentinel with empty master", "redis-sentinel://:" + secret + "@s1:26379?master=", "master"},
		{"cluster with db", "redis-cluster://:" + secret + "@n1:7000,n2:7001/2", "database"},
		{"malformed query", "redis://:" + secret + "@cache:6379/0?a=%zz", "query"},
		{"garbage before ://", "x:" + secret + "@cache://h:1", "scheme"},
		// Unescaped delimiters in the password: the error must not quote
		// what it took for a host, port or path.
		{"unescaped slash in password", "redis://:hunter/2@cache:6379/0", "percent-encode"},
		{"unescaped question mark in password", "redis://:hunter?2@cache:6379/0", "percent-encode"},
		{"unescaped hash in password", "redis://:hunter#2@cache:6379/0", "percent-encode"},
		{"password that looks like a port", "redis://user:6379/hunter@cache:6379", "percent-encode"},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			o, err := redis.ParseURL(tc.url)
			if err == nil {
				t.Fatalf("ParseURL(%q) = %+v, want an error", tc.url, o)
			}
			msg := err.Error()
			if strings.Contains(msg, "hunter") {
				t.Errorf("error %q contains the password", msg)
			}
			if !strings.Contains(msg, tc.wantInErr) {
				t.Errorf("error %q does not mention %q", msg, tc.wantInErr)
			}
			if msg != strings.ToLower(msg[:1])+msg[1:] {
				t.Errorf("error %q does not start in lower case", msg)
			}
		})
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// TestOutage kills Redis under traffic: calls fail fast with
// ErrUnavailable (never a hang, never ErrNotFound), and the same client
// works again once Redis is back, with no reconnect code.
func TestOutage(t *testing.T) {
	// go-redis logs every failed dial; keep the count, not the flood.
	dialLog := &countingLogger{}
	goredis.SetLogger(dialLog)
	srv := storetest.StartRedis(t)
	s := newNode(t, srv.Addr(), "outage:")
	ctx := t.Context()
	sess := testSession(sessionID)
	if err := s.CreateSession(ctx, sess, time.Minute); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}

	// Background traffic, so connections are in use when Redis dies.
	var (
		wg   sync.WaitGroup
		stop atomic.Bool
		slow atomic.Int64 // longest call, in ns
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				start := time.Now()
				_, err := s.TouchSession(ctx, sessionID, time.Minute)
				d := time.Since(start)
				for {
					old := slow.Load()
					if int64(d) <= old || slow.CompareAndSwap(old, int64(d)) {
						break
					}
				}
				if err != nil && !errors.Is(err, authcore.ErrUnavailable) && !errors.Is(err, authcore.ErrNotFound) {
					t.Errorf("TouchSession under outage: unexpected error %v", err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	srv.Stop()
	// A session held in memory may be served for RevocationWindow after
	// the last answer from Redis (the rule of tracking.go); after that,
	// every kind of call reports the outage as ErrUnavailable, quickly.
	time.Sleep(redis.RevocationWindow)
	for name, call := range map[string]func() error{
		"TouchSession": func() error { _, err := s.TouchSession(ctx, sessionID, time.Minute); return err },
		"CreateSession": func() error {
			return s.CreateSession(ctx, testSession("other"), time.Minute)
		},
		"SaveSession":   func() error { return s.SaveSession(ctx, sess, time.Minute) },
		"DeleteSession": func() error { return s.DeleteSession(ctx, sessionID) },
		"Ping":          func() error { return s.Ping(ctx) },
		"Get":           func() error { _, err := s.Get(ctx, "k"); return err },
		"Set":           func() error { return s.Set(ctx, "k", []byte("v"), time.Minute) },
		"SetNX":         func() error { _, err := s.SetNX(ctx, "k", []byte("v"), time.Minute); return err },
		"Incr":          func() error { _, err := s.Incr(ctx, "k", time.Minute); return err },
		"Delete":        func() error { return s.Delete(ctx, "k") },
		"TakeOnce":      func() error { _, err := s.TakeOnce(ctx, "k"); return err },
	} {
		start := time.Now()
		err := call()
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s took %v with Redis down, want < 2s", name, d)
		}
		if !errors.Is(err, authcore.ErrUnavailable) {
			t.Errorf("%s with Redis down: error = %v, want ErrUnavailable", name, err)
		} else {
			t.Logf("%s with Redis down: %v after %v", name, err, time.Since(start).Round(time.Microsecond))
		}
		if errors.Is(err, authcore.ErrNotFound) {
			t.Errorf("%s with Redis down reports ErrNotFound: an outage must not look like a logout", name)
		}
	}

	srv.Start()
	// The server restarts empty; wait until the same client gets through.
	deadline := time.Now().Add(30 * time.Second) // bounds a hang only
	var err error
	for {
		if err = s.Ping(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store still failing 30s after Redis came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	// The server came back empty: the session held in memory before the
	// outage must not be served.
	if _, err := s.TouchSession(ctx, sessionID, time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("TouchSession after Redis came back empty: %v, want ErrNotFound", err)
	}
	if d := time.Duration(slow.Load()); d > 2*time.Second {
		t.Errorf("slowest TouchSession during the outage took %v, want < 2s", d)
	} else {
		t.Logf("slowest TouchSession under traffic: %v; go-redis logged %d lines", d.Round(time.Microsecond), dialLog.n.Load())
	}

	if err := s.CreateSession(ctx, sess, time.Minute); err != nil {
		t.Fatalf("CreateSession after Redis came back: %v", err)
	}
	if _, err := s.TouchSession(ctx, sessionID, time.Minute); err != nil {
		t.Fatalf("TouchSession after Redis came back: %v", err)
	}
}

// TestHungServer freezes Redis instead of killing it: connections stay
// open but nothing answers. The read timeout must turn that into
// ErrUnavailable quickly; once Redis answers again, so does the store.
func TestHungServer(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := newNode(t, srv.Addr(), "hung:")
	ctx := t.Context()
	sess := testSession(sessionID)
	if err := s.CreateSession(ctx, sess, time.Minute); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	srv.Pause()
	start := time.Now()
	_, err := s.TouchSession(ctx, sessionID, time.Minute)
	d := time.Since(start)
	srv.Resume()
	if !errors.Is(err, authcore.ErrUnavailable) {
		t.Fatalf("TouchSession with Redis hung: error = %v, want ErrUnavailable", err)
	}
	if d > 2*time.Second {
		t.Errorf("TouchSession with Redis hung took %v, want < 2s", d)
	}
	t.Logf("TouchSession with Redis hung: %v after %v", err, d.Round(time.Millisecond))
	// Paused, not restarted: the session is still there.
	deadline := time.Now().Add(30 * time.Second) // bounds a hang only
	for {
		_, err := s.TouchSession(ctx, sessionID, time.Minute)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TouchSession still failing 30s after Redis resumed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countingLogger is a go-redis logger that only counts.
type countingLogger struct{ n atomic.Int64 }

func (l *countingLogger) Printf(context.Context, string, ...any) { l.n.Add(1) }

// TestUnavailableWrapsCause keeps the go-redis cause visible to callers
// (for logs) next to the sentinel.
func TestUnavailableWrapsCause(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := redis.New(newClient(t, srv.Addr()), "cause:")
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.TouchSession(ctx, sessionID, time.Minute)
	if !errors.Is(err, authcore.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("TouchSession with a canceled context: error = %v, want ErrUnavailable wrapping context.Canceled", err)
	}
}

// Only a store that did not answer is ErrUnavailable: a WRONGTYPE reply
// (a key used as another kind, a bug) and a non-positive TTL keep their
// own kind, so that they are answered and logged as internal errors.
func TestErrorsThatAreNoOutageAreNotErrUnavailable(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := redis.New(newClient(t, srv.Addr()), "kinds:")
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	key := authcore.Keys.UserSessions("1001")
	if err := s.Set(ctx, key, []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Members(ctx, key); err == nil || errors.Is(err, authcore.ErrUnavailable) {
		t.Errorf("Members of a string key: %v, want a WRONGTYPE error that is not ErrUnavailable", err)
	}
	if err := s.Set(ctx, key, []byte("x"), 0); err == nil || errors.Is(err, authcore.ErrUnavailable) {
		t.Errorf("Set with ttl 0: %v, want an error that is not ErrUnavailable", err)
	}
}

// Every option go-redis parses from a URL reaches the client's options
// under its own name: UniversalOptions is filled from go-redis's parse,
// not field by field here, so a new go-redis option is not dropped. (The
// user info is ours to place, and zero values may get our defaults.)
func TestParseURLKeepsEveryOptionGoRedisParses(t *testing.T) {
	const query = "?dial_timeout=2s&read_timeout=3s&write_timeout=4s&max_retries=2&min_retry_backoff=1ms" +
		"&max_retry_backoff=9ms&pool_size=7&pool_timeout=5s&min_idle_conns=1&max_idle_conns=3&max_active_conns=9" +
		"&conn_max_idle_time=1m&conn_max_lifetime=1h&pool_fifo=true&protocol=2&client_name=gw"
	for _, tc := range []struct {
		ours   string
		theirs func() (any, error)
	}{
		{"redis://:pw@h:1/2" + query, func() (any, error) { return goredis.ParseURL("redis://h:1/2" + query) }},
		{"redis-sentinel://:pw@h:1,h:2/2" + query + "&master=m&route_randomly=true&dialer_retries=3", func() (any, error) {
			return goredis.ParseFailoverURL("redis://h:1/2" + query + "&addr=h:2&master_name=m&route_randomly=true&dialer_retries=3")
		}},
		{"redis-cluster://:pw@h:1,h:2" + query + "&read_only=true&dialer_retries=3", func() (any, error) {
			return goredis.ParseClusterURL("redis://h:1" + query + "&addr=h:2&read_only=true&dialer_retries=3")
		}},
	} {
		ours, err := redis.ParseURL(tc.ours)
		if err != nil {
			t.Fatalf("ParseURL(%q): %v", tc.ours, err)
		}
		theirs, err := tc.theirs()
		if err != nil {
			t.Fatalf("go-redis parsing the plain form of %q: %v", tc.ours, err)
		}
		got, want := reflect.ValueOf(ours).Elem(), reflect.ValueOf(theirs).Elem()
		compared := 0
		for i := range want.NumField() {
			f, v := want.Type().Field(i), want.Field(i)
			g := got.FieldByName(f.Name)
			if !f.IsExported() || !g.IsValid() || g.Type() != f.Type || v.IsZero() {
				continue
			}
			compared++
			if !reflect.DeepEqual(g.Interface(), v.Interface()) {
				t.Errorf("%s: %s = %v, go-redis parsed %v", tc.ours, f.Name, g.Interface(), v.Interface())
			}
		}
		if compared < 15 {
			t.Errorf("%s: only %d options compared", tc.ours, compared)
		}
	}
}
