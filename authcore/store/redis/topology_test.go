package redis_test

// The store on real scale-out topologies, started by the tests from the
// redis-server binary: a 3-master Redis Cluster and a Sentinel-managed
// primary/replica pair. The conformance suite must pass on both, with no
// CROSSSLOT error anywhere, and a failover must cost a session nothing
// that had reached the replica.

import (
	"context"
	"errors"
	"fmt"
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

// crossSlotHook records every reply that is a CROSSSLOT error (or any
// other cluster refusal of a multi-key command), whatever the caller did
// with it.
type crossSlotHook struct {
	mu   sync.Mutex
	errs []string
}

func (h *crossSlotHook) check(cmd goredis.Cmder) {
	if err := cmd.Err(); err != nil && strings.Contains(err.Error(), "CROSSSLOT") {
		h.mu.Lock()
		h.errs = append(h.errs, fmt.Sprintf("%v: %v", cmd.Args(), err))
		h.mu.Unlock()
	}
}

func (h *crossSlotHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *crossSlotHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		h.check(cmd)
		return err
	}
}

func (h *crossSlotHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			h.check(c)
		}
		return err
	}
}

func (h *crossSlotHook) verify(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.errs {
		t.Errorf("CROSSSLOT: %s", e)
	}
}

// openURL opens a store through Parse and Open, as the gateway does, and
// adds hook when non-nil.
func openURL(t testing.TB, url, prefix string, hook goredis.Hook) *redis.Store {
	t.Helper()
	o, err := redis.Parse(url)
	if err != nil {
		t.Fatalf("Parse(%q): %v", url, err)
	}
	s := redis.Open(o, prefix)
	if hook != nil {
		s.Client().AddHook(hook)
	}
	return s
}

// The conformance suite on both topologies, with the session cache (the
// default) and without it.
func TestTopologyClusterConformance(t *testing.T) {
	c := storetest.StartCluster(t)
	for _, mode := range []string{"", "?client_cache=false"} {
		t.Run("cache"+mode, func(t *testing.T) {
			hook := &crossSlotHook{}
			var n atomic.Int64
			storetest.Run(t, func(t *testing.T) authcore.Store {
				return openURL(t, c.URL()+mode, fmt.Sprintf("cl%d:", n.Add(1)), hook)
			})
			hook.verify(t)
		})
	}
}

func TestTopologySentinelConformance(t *testing.T) {
	// go-redis logs every sentinel lookup of every client; keep the count.
	goredis.SetLogger(&countingLogger{})
	s := storetest.StartSentinel(t)
	for _, mode := range []string{"", "&client_cache=false"} {
		t.Run("cache"+mode, func(t *testing.T) {
			hook := &crossSlotHook{}
			var n atomic.Int64
			storetest.Run(t, func(t *testing.T) authcore.Store {
				return openURL(t, s.URL()+mode, fmt.Sprintf("se%d:", n.Add(1)), hook)
			})
			hook.verify(t)
		})
	}
}

// TestTopologyClusterSessionKeysShareASlot: a session's key and the keys of
// its challenges carry the session id as hash tag, so they land in one
// slot (one node) and can be used together in one script or transaction.
func TestTopologyClusterSessionKeysShareASlot(t *testing.T) {
	c := storetest.StartCluster(t)
	hook := &crossSlotHook{}
	const prefix = "authgate:"
	s := openURL(t, c.URL(), prefix, hook)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	const ttl = 5 * time.Minute

	sess := testSession(sessionID)
	if err := s.CreateSession(ctx, sess, ttl); err != nil {
		t.Fatalf("CreateSession on the cluster: %v", err)
	}
	sessionKey := authcore.Keys.Session(prefix, sessionID)
	// The per-session keys of authcore (step-up code challenges, push
	// issue counter).
	k := authcore.Keys
	var perSession []string
	for _, purpose := range []string{authcore.PurposeStepUp, authcore.PurposeEnrolment} {
		scope := k.StepUpScope(sessionID, purpose)
		perSession = append(perSession, k.Code(scope), k.CodeIssues(scope), k.CodeCooldown(scope),
			k.CodeTries(scope), k.CodeUsed(scope, "1"))
	}
	perSession = append(perSession, k.PushIssues(sessionID))
	for _, k := range perSession {
		if err := s.Set(ctx, k, []byte("x"), ttl); err != nil {
			t.Fatalf("Set %s on the cluster: %v", k, err)
		}
		if _, err := s.Incr(ctx, k+":cnt", ttl); err != nil {
			t.Fatalf("Incr %s:cnt on the cluster: %v", k, err)
		}
	}
	want := c.KeySlot(sessionKey)
	all := []string{sessionKey}
	for _, k := range perSession {
		for _, full := range []string{prefix + k, prefix + k + ":cnt"} {
			if got := c.KeySlot(full); got != want {
				t.Errorf("CLUSTER KEYSLOT %s = %d, want %d (the slot of %s)", full, got, want, sessionKey)
			}
			all = append(all, full)
		}
	}

	// The proof that matters: one script over all of them runs on the
	// cluster without CROSSSLOT, and sees every key with a TTL.
	raw := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = raw.Close() })
	ttls, err := raw.Eval(ctx, `local out = {}
for i, k in ipairs(KEYS) do out[i] = redis.call('PTTL', k) end
return out`, all).Int64Slice()
	if err != nil {
		t.Fatalf("one script over a session's keys on the cluster: %v", err)
	}
	for i, ms := range ttls {
		if ms <= 0 || time.Duration(ms)*time.Millisecond > ttl {
			t.Errorf("PTTL %s = %dms, want in (0, %v]: every key must expire", all[i], ms, ttl)
		}
	}
	// And the check can fail: keys of two sessions in one script are
	// refused (unless both ids happen to share a slot, which these don't).
	other := authcore.Keys.Session(prefix, sessionID+"x")
	if c.KeySlot(other) == want {
		t.Fatalf("test ids share a slot; pick others")
	}
	if err := raw.Eval(ctx, `return 1`, []string{sessionKey, other}).Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("a script over two sessions' keys: error = %v, want CROSSSLOT (the check above would prove nothing)", err)
	}
	hook.verify(t)
}

// TestTopologySentinelFailover kills the primary under traffic: calls
// fail with ErrUnavailable only (never ErrNotFound for a session the
// replica had), and the same store serves every session again once the
// sentinels have promoted the replica, with no reconnect code.
func TestTopologySentinelFailover(t *testing.T) {
	dialLog := &countingLogger{}
	goredis.SetLogger(dialLog)
	set := storetest.StartSentinel(t)
	s := openURL(t, set.URL(), "fo:", nil)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()

	const sessions = 20
	ids := make([]string, sessions)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%02d", sessionID, i)
		if err := s.CreateSession(ctx, testSession(ids[i]), time.Minute); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	if _, err := s.Incr(ctx, authcore.Keys.RateLimit(authcore.LimitLogin, "203.0.113.7", 1), time.Minute); err != nil {
		t.Fatalf("Incr: %v", err)
	}
	set.WaitReplicated(5 * time.Second)

	var (
		wg                     sync.WaitGroup
		stop                   atomic.Bool
		ok, unavailable, notOK atomic.Int64
		slowest                atomic.Int64
		badMu                  sync.Mutex
		bad                    []string
		trafficDeadline              = time.Now().Add(60 * time.Second)
		maxCallsPerWorker      int64 = 200000
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); i < maxCallsPerWorker && !stop.Load() && time.Now().Before(trafficDeadline); i++ {
				id := ids[(int(i)+w)%sessions]
				start := time.Now()
				_, err := s.TouchSession(ctx, id, time.Minute)
				for d := int64(time.Since(start)); ; {
					old := slowest.Load()
					if d <= old || slowest.CompareAndSwap(old, d) {
						break
					}
				}
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, authcore.ErrUnavailable):
					unavailable.Add(1)
					time.Sleep(5 * time.Millisecond)
				default:
					notOK.Add(1)
					badMu.Lock()
					if len(bad) < 10 {
						bad = append(bad, fmt.Sprintf("TouchSession(%s): %v", id, err))
					}
					badMu.Unlock()
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	waitFor(t, "traffic before the kill", func() bool { return ok.Load() >= 50 })
	killed := time.Now()
	set.KillPrimary()
	newPrimary := set.WaitFailover(30 * time.Second)
	t.Logf("sentinels promoted %s %v after the kill", newPrimary, time.Since(killed).Round(time.Millisecond))

	// The store finds the new primary by itself: every session is there,
	// and writes go through (reads and writes use different connections).
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		for _, id := range ids {
			if _, err = s.TouchSession(ctx, id, time.Minute); err != nil {
				break
			}
		}
		if err == nil {
			err = s.Set(ctx, "probe", []byte("x"), time.Minute)
		}
		if err == nil {
			break
		}
		if errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("a replicated session is gone after the failover: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("store still failing 15s after the failover: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("store serves again %v after the kill", time.Since(killed).Round(time.Millisecond))
	// Writes go to the new primary.
	if n, err := s.Incr(ctx, authcore.Keys.RateLimit(authcore.LimitLogin, "203.0.113.7", 1), time.Minute); err != nil || n != 2 {
		t.Errorf("Incr after the failover = (%d, %v), want 2 (the counter written before it survived)", n, err)
	}
	if err := s.CreateSession(ctx, testSession(sessionID+"new"), time.Minute); err != nil {
		t.Errorf("CreateSession after the failover: %v", err)
	}
	okBefore := ok.Load()
	waitFor(t, "traffic after the failover", func() bool { return ok.Load() > okBefore })
	stop.Store(true)
	wg.Wait()
	// The fast path is back on the new primary: hot sessions are served
	// from memory again, not read from Redis on every touch. The tracking
	// connection reconnects with a back-off of up to a second, after the
	// pool: touches made before it is up read Redis, as they should.
	redis.AwaitTracking(t, s)
	resetStats(t, newPrimary)
	for range 50 {
		for _, id := range ids {
			if _, err := s.TouchSession(ctx, id, time.Minute); err != nil {
				t.Fatalf("TouchSession after the failover: %v", err)
			}
		}
	}
	if calls := commandCalls(t, newPrimary); calls["get"]+calls["getex"] > 50*sessions/10 {
		t.Errorf("%d touches after the failover read Redis %d times (GET %d, GETEX %d), want the cache to serve most",
			50*sessions, calls["get"]+calls["getex"], calls["get"], calls["getex"])
	}
	if ok.Load() == okBefore {
		t.Error("background traffic made no progress after the failover")
	}
	t.Logf("traffic: %d ok, %d unavailable, %d other; slowest call %v; go-redis logged %d lines",
		ok.Load(), unavailable.Load(), notOK.Load(), time.Duration(slowest.Load()).Round(time.Millisecond), dialLog.n.Load())
	for _, b := range bad {
		t.Errorf("during the failover: %s (want success or ErrUnavailable)", b)
	}
	if d := time.Duration(slowest.Load()); d > 3*time.Second {
		t.Errorf("slowest call during the failover took %v, want < 3s (a 503, not a hang)", d)
	}
}

// Another node's writes and expiries reach a node from every master of a
// Cluster, and from the Sentinel primary.
func TestTopologyClusterSeesOtherNodes(t *testing.T) {
	c := storetest.StartCluster(t)
	raw := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs()})
	defer raw.Close()
	seesOtherNodes(t, openNode(t, c.URL(), "clsee:", nil), raw, "clsee:")
}

func TestTopologySentinelSeesOtherNodes(t *testing.T) {
	goredis.SetLogger(&countingLogger{})
	set := storetest.StartSentinel(t)
	raw := goredis.NewClient(&goredis.Options{Addr: set.PrimaryAddr()})
	defer raw.Close()
	seesOtherNodes(t, openNode(t, set.URL(), "sesee:", nil), raw, "sesee:")
}

// A revoked session on a Cluster node whose link stalls, lags or drops,
// and on one whose master freezes: the rules of TestRevokedWhileLinkFails
// and TestFrozenStoreAdmitsNothing hold with a stream per master.
func TestTopologyClusterRevocation(t *testing.T) {
	c := storetest.StartCluster(t)
	for i, f := range linkFaults {
		t.Run(f.name, func(t *testing.T) {
			link := storetest.NewLink(t)
			a := openNode(t, c.URL(), "clrv:", nil)
			d := openNode(t, c.URL(), "clrv:", link.Dialer)
			revokeWhileLinkFails(t, f, link, a, d, fmt.Sprintf("%s%d", sessionID, i))
		})
	}
	t.Run("master frozen", func(t *testing.T) {
		n := openNode(t, c.URL(), "clfz:", nil)
		master := c.MasterOf("clfz:s:{" + sessionID + "}")
		frozenStore(t, 1500*time.Millisecond, func() { c.Pause(master) }, func() { c.Resume(master) }, n, n, sessionID)
	})
}

// The same on Sentinel; the primary's freeze stays under the sentinels'
// down-after, so it is a stall, not a failover.
func TestTopologySentinelRevocation(t *testing.T) {
	goredis.SetLogger(&countingLogger{})
	set := storetest.StartSentinel(t)
	for i, f := range linkFaults {
		t.Run(f.name, func(t *testing.T) {
			link := storetest.NewLink(t)
			a := openNode(t, set.URL(), "serv:", nil)
			d := openNode(t, set.URL(), "serv:", link.Dialer)
			revokeWhileLinkFails(t, f, link, a, d, fmt.Sprintf("%s%d", sessionID, i))
		})
	}
	t.Run("primary frozen", func(t *testing.T) {
		n := openNode(t, set.URL(), "sefz:", nil)
		frozenStore(t, storetest.SentinelDownAfter*7/10, set.PausePrimary, set.ResumePrimary, n, n, sessionID)
	})
}
