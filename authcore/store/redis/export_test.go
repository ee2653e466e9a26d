package redis

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore/store/storetest"
)

// BenchmarkHeartbeatCPU bounds what one heartbeat costs this process in
// CPU (user + system, from getrusage; Redis's own work is in another
// process): a busy gateway sends about one per RefreshAge per stream. Each iteration is a full round trip on the tracking
// connection (write, read, parse, proof update) in an otherwise idle
// process, so it also pays for parking and waking the runtime each time,
// which a busy gateway shares with its other work: an upper bound.
func BenchmarkHeartbeatCPU(b *testing.B) {
	srv := storetest.StartRedis(b)
	o, err := Parse("redis://" + srv.Addr() + "/0")
	if err != nil {
		b.Fatal(err)
	}
	s := Open(o, "hb:")
	defer s.Close()
	AwaitTracking(b, s)
	st := s.tr.single
	ctx := context.Background()
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	n := 0
	for b.Loop() {
		// A read of a missing key: the same frames as a PING and its reply.
		if _, err := st.fetch(ctx, "hb:none", false, 0); err == nil {
			b.Fatal("the key exists")
		}
		n++
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/beat")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n)*float64(time.Second/RefreshAge)/1e7, "%core-at-busy-rate")
}

// AwaitTracking waits until s's tracking connection is up, for a
// standalone or Sentinel store (a Cluster's connect on first use). Open
// connects it in the background, and on a loaded machine a test's first
// session reads can come before it: they then go through the pool
// (GETEX) and are not cached, which the counting tests would take for a
// defect. The deadline only bounds a hang.
func AwaitTracking(t testing.TB, s *Store) {
	t.Helper()
	if s.tr == nil || s.tr.single == nil {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for !s.tr.single.live.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the tracking connection did not come up within 30s")
		}
		time.Sleep(time.Millisecond)
	}
}

// AwaitAnswered waits until every command s sent over its tracking
// connection (standalone or Sentinel) has been answered, so Redis has run
// and counted each. The deadline only bounds a hang.
func AwaitAnswered(t testing.TB, s *Store) {
	t.Helper()
	if s.tr == nil || s.tr.single == nil {
		return
	}
	st := s.tr.single
	deadline := time.Now().Add(30 * time.Second)
	for {
		st.mu.Lock()
		n := len(st.pending)
		st.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d commands on the tracking connection still unanswered after 30s", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Pump reads and handles what s's tracking connections hold, as a request
// that finds a command unanswered does, and returns how many frames it
// handled.
func Pump(s *Store) int {
	if s.tr == nil {
		return 0
	}
	n := 0
	if s.tr.single != nil {
		n += s.tr.single.pump()
	}
	s.tr.mu.RLock()
	streams := make([]*stream, 0, len(s.tr.streams))
	for _, st := range s.tr.streams {
		streams = append(streams, st)
	}
	s.tr.mu.RUnlock()
	for _, st := range streams {
		n += st.pump()
	}
	return n
}

// Pumpable reports whether requests can read s's (standalone or Sentinel)
// tracking connection themselves: it has a descriptor.
func Pumpable(s *Store) bool {
	w := s.tr.single.w.Load()
	return w != nil && w.fd >= 0
}

// BetweenProofAndLookUp makes every tracked touch run f between reading
// its proof and looking its session up, until the test ends.
func BetweenProofAndLookUp(t testing.TB, f func()) {
	testHookProofRead = f
	t.Cleanup(func() { testHookProofRead = nil })
}

// AwaitFreshProof makes s's (standalone or Sentinel) stream send a
// heartbeat and waits for its answer: every invalidation Redis sent
// before it has then been applied, and the proof is fresh.
func AwaitFreshProof(t testing.TB, s *Store) {
	t.Helper()
	if err := s.tr.single.awaitProof(context.Background(), mono(time.Now())); err != nil {
		t.Fatalf("awaiting a fresh proof: %v", err)
	}
}
