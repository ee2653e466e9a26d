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
	st := s.tr.single
	ctx := context.Background()
	for !st.live.Load() {
		time.Sleep(time.Millisecond)
	}
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
