package storetest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisStartTimeout bounds how long StartRedis and Start wait for a fresh
// redis-server to answer PING.
const redisStartTimeout = 5 * time.Second

// RedisServer is a throwaway redis-server for tests: no persistence, bound
// to 127.0.0.1 on a port of its own, its files in a temporary directory.
// Stop and Start kill it and bring it back on the same address, Pause and
// Resume freeze and thaw it, so tests can simulate a Redis outage in the
// middle of traffic. Its methods call
// t.Fatal on failure and so belong on the test's own goroutine.
type RedisServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// StartRedis starts a redis-server on a free 127.0.0.1 port, waits until it
// answers PING and stops it when the test ends. There is no skip when
// redis-server is missing: CI installs it, and the Redis tests must run.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found on PATH (install it, e.g. apt-get install redis-server): %v", err)
	}
	s := &RedisServer{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.stop)
	// A port found free can be taken before redis-server binds it; try a
	// few times before failing.
	var lastErr error
	for range 5 {
		if s.port, err = freePort(); err != nil {
			t.Fatalf("finding a free port for redis-server: %v", err)
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

// Addr returns the server's "127.0.0.1:port"; it stays the same across
// Stop and Start.
func (s *RedisServer) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop kills the server (SIGKILL, as in a crash: clients see their
// connections drop at once) and waits for the process to exit. Stopping a
// stopped server does nothing. Data is lost: there is no persistence.
func (s *RedisServer) Stop() {
	s.t.Helper()
	s.stop()
}

// Pause freezes the server (SIGSTOP) without closing anything: the kernel
// still accepts connections and queues commands, but nothing answers, as
// with a hung server or a black-holed network. Resume undoes it. When it
// returns the process is stopped (the kernel reports it so), so nothing
// the server answers can date from after Pause.
func (s *RedisServer) Pause() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
	s.mu.Lock()
	pid := s.cmd.Process.Pid
	s.mu.Unlock()
	waitStopped(s.t, pid)
}

// waitStopped returns once the kernel reports process pid stopped.
func waitStopped(t testing.TB, pid int) {
	t.Helper()
	for range 1000 {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return // no /proc: trust the signal
		}
		// "pid (comm) S ...": the state follows the last ')'.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'T' {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("process %d did not stop after SIGSTOP", pid)
}

// Resume lets a paused server run again; it answers what was queued.
func (s *RedisServer) Resume() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *RedisServer) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("redis-server on %s is not running", s.Addr())
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signalling redis-server on %s: %v", s.Addr(), err)
	}
}

// Start starts the stopped server again on the same address and waits
// until it answers PING. It starts empty.
func (s *RedisServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		s.t.Fatalf("redis-server on %s is already running", s.Addr())
	}
	// The old process is gone but the kernel may still hold its listening
	// port for a moment; retry briefly.
	deadline := time.Now().Add(redisStartTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("restarting redis-server on %s: %v", s.Addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// start launches redis-server and waits for PING; on failure the process
// is gone and the error carries its log.
func (s *RedisServer) start() error {
	log := &lockedBuffer{}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "",
		"--loglevel", "warning",
	)
	cmd.Stdout = log
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(redisStartTimeout)
	for {
		select {
		case <-done:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, strings.TrimSpace(log.String()))
		default:
		}
		if err := ping(s.Addr()); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("redis-server on port %d did not answer PING within %v: %v; log: %s",
				s.port, redisStartTimeout, err, strings.TrimSpace(log.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *RedisServer) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// freePort asks the kernel for an unused 127.0.0.1 port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects the server's output; exec copies into it from its
// own goroutine while the test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
