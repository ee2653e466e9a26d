package caddymodule

import (
	"net"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/authgate/authgate/authcore/store/storetest"
)

// TestForeignListenersSeesOtherProcessesOnly: a port another process
// listens on (a redis-server) is reported; one this process listens on is
// not, whatever the order in which Caddy starts its apps.
func TestForeignListenersSeesOtherProcessesOnly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	redis := storetest.StartRedis(t)
	_, p, _ := net.SplitHostPort(redis.Addr())
	other, _ := strconv.ParseUint(p, 10, 16)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	own := uint(ln.Addr().(*net.TCPAddr).Port)

	got := foreignListeners([]uint{uint(other), own})
	if !slices.Equal(got, []uint{uint(other)}) {
		t.Fatalf("foreign listeners %v, want only redis's port %d (own %d)", got, other, own)
	}
	if got := foreignListeners([]uint{own}); len(got) != 0 {
		t.Fatalf("this process's own port reported: %v", got)
	}
}
