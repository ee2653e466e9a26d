package storetest

// Throwaway Redis topologies for scale-out tests: a 3-master Redis Cluster
// and a Sentinel-managed primary/replica pair, each started from the
// redis-server binary (the only one needed: the cluster is built with
// CLUSTER commands sent over plain RESP, so no redis-cli, and sentinels run
// as redis-sentinel when it is on PATH, else as redis-server --sentinel).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timing of the topologies. Sentinel's own timers are short so that a
// failover takes a few seconds: the primary is deemed down after
// SentinelDownAfter without an answer, and a failover that stalls is
// retried after 2*SentinelFailoverTimeout.
const (
	// SentinelMaster is the master name the sentinels monitor; sentinel
	// URLs name it with ?master=.
	SentinelMaster = "authgate"
	// SentinelDownAfter is sentinel's down-after-milliseconds.
	SentinelDownAfter = time.Second
	// SentinelFailoverTimeout is sentinel's failover-timeout.
	SentinelFailoverTimeout = 5 * time.Second

	clusterSlots       = 16384
	topoReadyTimeout   = 30 * time.Second
	topoCommandTimeout = 2 * time.Second
)

// Cluster is a throwaway Redis Cluster of three masters (no replicas),
// slots split evenly, bound to 127.0.0.1, without persistence. Its methods
// call t.Fatal on failure and so belong on the test's own goroutine.
type Cluster struct {
	t     testing.TB
	nodes []*topoProc
}

// StartCluster starts three cluster-enabled redis-servers on free ports,
// assigns each a third of the slots, joins them with CLUSTER MEET and waits
// until every node reports cluster_state:ok and knows all three masters.
// The nodes are killed when the test ends. There is no skip when
// redis-server is missing: CI installs it.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := topoLookPath(t, "redis-server")
	c := &Cluster{t: t}
	for i := range 3 {
		dir := t.TempDir()
		p := startTopoProc(t, fmt.Sprintf("cluster node %d", i), bin, func(port int) []string {
			return []string{
				"--port", strconv.Itoa(port),
				"--bind", "127.0.0.1",
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", "3000",
				"--cluster-announce-ip", "127.0.0.1",
				"--save", "",
				"--appendonly", "no",
				"--dir", dir,
				"--daemonize", "no",
				"--logfile", "",
				"--loglevel", "warning",
			}
		})
		c.nodes = append(c.nodes, p)
	}

	// Distinct config epochs (as redis-cli --cluster create sets them)
	// spare the nodes the epoch collision dance; then each node takes its
	// third of the slots and the first one meets the others.
	for i, n := range c.nodes {
		lo := i * clusterSlots / len(c.nodes)
		hi := (i+1)*clusterSlots/len(c.nodes) - 1
		c.must(n.addr, "CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1))
		if _, err := topoCmd(n.addr, "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			// ADDSLOTSRANGE is Redis 7.0; older servers take the list.
			args := []string{"CLUSTER", "ADDSLOTS"}
			for s := lo; s <= hi; s++ {
				args = append(args, strconv.Itoa(s))
			}
			c.must(n.addr, args...)
		}
	}
	for _, n := range c.nodes[1:] {
		host, port, _ := net.SplitHostPort(n.addr)
		c.must(c.nodes[0].addr, "CLUSTER", "MEET", host, port)
	}

	deadline := time.Now().Add(topoReadyTimeout)
	for _, n := range c.nodes {
		for {
			info, err := topoCmd(n.addr, "CLUSTER", "INFO")
			s, _ := info.(string)
			f := infoFields(s)
			if err == nil && f["cluster_state"] == "ok" && f["cluster_known_nodes"] == "3" &&
				f["cluster_slots_ok"] == strconv.Itoa(clusterSlots) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redis cluster not ready within %v: node %s: CLUSTER INFO = %q, %v; log: %s",
					topoReadyTimeout, n.addr, strings.TrimSpace(s), err, n.log.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Every node must also see the others' slots, or a client seeded with
	// it could get a partial map.
	for _, n := range c.nodes {
		for {
			slots, err := topoCmd(n.addr, "CLUSTER", "SLOTS")
			if arr, ok := slots.([]any); err == nil && ok && len(arr) == len(c.nodes) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redis cluster node %s does not see all slot ranges within %v: %v, %v",
					n.addr, topoReadyTimeout, slots, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

func (c *Cluster) must(addr string, args ...string) any {
	c.t.Helper()
	v, err := topoCmd(addr, args...)
	if err != nil {
		c.t.Fatalf("redis cluster: %s on %s: %v", strings.Join(args[:min(len(args), 3)], " "), addr, err)
	}
	return v
}

// Addrs returns the masters' "127.0.0.1:port" addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr
	}
	return addrs
}

// URL returns the store URL of the cluster: redis-cluster://a,b,c.
func (c *Cluster) URL() string {
	return "redis-cluster://" + strings.Join(c.Addrs(), ",")
}

// KeySlot asks the cluster for key's hash slot (CLUSTER KEYSLOT).
func (c *Cluster) KeySlot(key string) int64 {
	c.t.Helper()
	n, ok := c.must(c.nodes[0].addr, "CLUSTER", "KEYSLOT", key).(int64)
	if !ok {
		c.t.Fatalf("CLUSTER KEYSLOT %q: not an integer", key)
	}
	return n
}

// Do sends one command to the node at addr and returns its reply: a
// string, an int64, nil or a []any of those. A Redis error reply is an
// error. It is for inspection in tests (KEYS, PTTL, ...).
func (c *Cluster) Do(addr string, args ...string) (any, error) {
	return topoCmd(addr, args...)
}

// Pause freezes the node at addr (SIGSTOP) as RedisServer.Pause does;
// Resume thaws it.
func (c *Cluster) Pause(addr string) { c.t.Helper(); c.node(addr).pause(c.t) }

// Resume thaws a node that Pause froze.
func (c *Cluster) Resume(addr string) { c.t.Helper(); c.node(addr).resume(c.t) }

// MasterOf returns the address of the master that serves key.
func (c *Cluster) MasterOf(key string) string {
	c.t.Helper()
	slot := int(c.KeySlot(key))
	for i, n := range c.nodes {
		// The slot split of StartCluster.
		if slot <= (i+1)*clusterSlots/len(c.nodes)-1 {
			return n.addr
		}
	}
	c.t.Fatalf("redis cluster: no node has slot %d", slot)
	return ""
}

func (c *Cluster) node(addr string) *topoProc {
	c.t.Helper()
	for _, n := range c.nodes {
		if n.addr == addr {
			return n
		}
	}
	c.t.Fatalf("redis cluster: no node %s", addr)
	return nil
}

// Stop kills every node (SIGKILL) and waits for them to exit. It runs by
// itself when the test ends.
func (c *Cluster) Stop() {
	for _, n := range c.nodes {
		n.kill()
	}
}

// SentinelSet is a throwaway primary/replica pair watched by three
// sentinels (quorum 2) under the master name SentinelMaster, all bound to
// 127.0.0.1 without persistence. Its methods call t.Fatal on failure and so
// belong on the test's own goroutine.
type SentinelSet struct {
	t         testing.TB
	sentinels []*topoProc

	mu      sync.Mutex
	primary *topoProc // the node the sentinels last reported as primary
	replica *topoProc // the other data node
}

// StartSentinel starts a primary, one replica of it (--replicaof) and three
// sentinels monitoring it with a 1s down-after and a 5s failover timeout,
// and waits until the replica is in sync and every sentinel knows the
// replica and the two other sentinels, so that a failover can happen. All
// are killed when the test ends.
func StartSentinel(t testing.TB) *SentinelSet {
	t.Helper()
	bin := topoLookPath(t, "redis-server")
	sentinelBin, sentinelArgs := bin, []string{"--sentinel"}
	if sb, err := exec.LookPath("redis-sentinel"); err == nil {
		sentinelBin, sentinelArgs = sb, nil
	}
	s := &SentinelSet{t: t}

	dataArgs := func(dir string, port int, extra ...string) []string {
		return append([]string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
			"--daemonize", "no",
			"--logfile", "",
			"--loglevel", "warning",
			// Replicas must not ping-pong between full resyncs on a busy
			// CI machine.
			"--repl-diskless-sync", "yes",
			"--repl-diskless-sync-delay", "0",
		}, extra...)
	}
	pdir, rdir := t.TempDir(), t.TempDir()
	s.primary = startTopoProc(t, "sentinel primary", bin, func(port int) []string { return dataArgs(pdir, port) })
	phost, pport, _ := net.SplitHostPort(s.primary.addr)
	s.replica = startTopoProc(t, "sentinel replica", bin, func(port int) []string {
		return dataArgs(rdir, port, "--replicaof", phost, pport)
	})

	deadline := time.Now().Add(topoReadyTimeout)
	for {
		info, err := topoCmd(s.replica.addr, "INFO", "replication")
		str, _ := info.(string)
		if err == nil && infoFields(str)["master_link_status"] == "up" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not in sync with %s within %v: %q, %v; log: %s",
				s.replica.addr, s.primary.addr, topoReadyTimeout, strings.TrimSpace(str), err, s.replica.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	for i := range 3 {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		p := startTopoProc(t, fmt.Sprintf("sentinel %d", i), sentinelBin, func(port int) []string {
			// Sentinel rewrites its config file, so each start writes a
			// fresh one.
			data := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\ndaemonize no\nlogfile \"\"\nloglevel warning\n"+
				"sentinel resolve-hostnames no\n"+
				"sentinel monitor %s %s %s 2\n"+
				"sentinel down-after-milliseconds %s %d\n"+
				"sentinel failover-timeout %s %d\n"+
				"sentinel parallel-syncs %s 1\n",
				port, dir, SentinelMaster, phost, pport,
				SentinelMaster, SentinelDownAfter.Milliseconds(),
				SentinelMaster, SentinelFailoverTimeout.Milliseconds(),
				SentinelMaster)
			if err := os.WriteFile(conf, []byte(data), 0o600); err != nil {
				t.Fatalf("writing %s: %v", conf, err)
			}
			return append([]string{conf}, sentinelArgs...)
		})
		s.sentinels = append(s.sentinels, p)
	}

	// A failover needs every sentinel to know the replica (learnt from
	// the primary's INFO) and the other sentinels (learnt from hello
	// messages every 2s).
	for _, sn := range s.sentinels {
		for {
			m, err := sentinelMaster(sn.addr)
			if err == nil && m["flags"] == "master" && m["num-slaves"] == "1" && m["num-other-sentinels"] == "2" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sentinel %s not ready within %v: SENTINEL MASTER %s = %v, %v; log: %s",
					sn.addr, topoReadyTimeout, SentinelMaster, m, err, sn.log.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return s
}

// SentinelAddrs returns the sentinels' "127.0.0.1:port" addresses.
func (s *SentinelSet) SentinelAddrs() []string {
	addrs := make([]string, len(s.sentinels))
	for i, n := range s.sentinels {
		addrs[i] = n.addr
	}
	return addrs
}

// URL returns the store URL: redis-sentinel://s1,s2,s3/0?master=authgate.
func (s *SentinelSet) URL() string {
	return "redis-sentinel://" + strings.Join(s.SentinelAddrs(), ",") + "/0?master=" + SentinelMaster
}

// PrimaryAddr returns the address of the current primary (the one started
// as primary, or the replica once WaitFailover has seen it promoted).
func (s *SentinelSet) PrimaryAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.primary.addr
}

// ReplicaAddr returns the address of the other data node.
func (s *SentinelSet) ReplicaAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replica.addr
}

// Do sends one command to the node at addr (a data node or a sentinel)
// and returns its reply, as Cluster.Do.
func (s *SentinelSet) Do(addr string, args ...string) (any, error) {
	return topoCmd(addr, args...)
}

// WaitReplicated waits until the replica has received everything the
// primary had written when it was called (its replication offset caught up
// with the primary's), so that a failover after it loses none of those
// writes.
func (s *SentinelSet) WaitReplicated(timeout time.Duration) {
	s.t.Helper()
	primary, replica := s.PrimaryAddr(), s.ReplicaAddr()
	want, err := replOffset(primary, "master_repl_offset")
	if err != nil {
		s.t.Fatalf("INFO replication on primary %s: %v", primary, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		got, err := replOffset(replica, "slave_repl_offset")
		if err == nil && got >= want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("replica %s did not reach the primary's offset %d within %v: at %d, %v",
				replica, want, timeout, got, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// PausePrimary freezes the current primary (SIGSTOP) as RedisServer.Pause
// does; ResumePrimary thaws it. Keep the pause shorter than
// SentinelDownAfter unless a failover is wanted.
func (s *SentinelSet) PausePrimary() { s.t.Helper(); s.current().pause(s.t) }

// ResumePrimary thaws the primary that PausePrimary froze.
func (s *SentinelSet) ResumePrimary() { s.t.Helper(); s.current().resume(s.t) }

func (s *SentinelSet) current() *topoProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.primary
}

// KillPrimary kills the current primary with SIGKILL, as in a crash, and
// waits for the process to exit. It stays down.
func (s *SentinelSet) KillPrimary() {
	s.t.Helper()
	s.mu.Lock()
	p := s.primary
	s.mu.Unlock()
	p.kill()
}

// WaitFailover waits until every sentinel names the replica as the new
// primary and the replica reports role:master, and returns its address.
// Call it after KillPrimary.
func (s *SentinelSet) WaitFailover(timeout time.Duration) string {
	s.t.Helper()
	s.mu.Lock()
	old, next := s.primary, s.replica
	s.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for _, sn := range s.sentinels {
		for {
			v, err := topoCmd(sn.addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster)
			arr, _ := v.([]any)
			if err == nil && len(arr) == 2 {
				host, _ := arr[0].(string)
				port, _ := arr[1].(string)
				if net.JoinHostPort(host, port) == next.addr {
					break
				}
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("sentinel %s names %v as primary %v after the kill of %s, want %s (err %v); log: %s",
					sn.addr, v, timeout, old.addr, next.addr, err, sn.log.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for {
		info, err := topoCmd(next.addr, "INFO", "replication")
		str, _ := info.(string)
		if err == nil && infoFields(str)["role"] == "master" {
			break
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("promoted replica %s does not report role:master within %v: %q, %v",
				next.addr, timeout, strings.TrimSpace(str), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.mu.Lock()
	s.primary, s.replica = next, old
	s.mu.Unlock()
	return next.addr
}

// Stop kills every process (SIGKILL) and waits for them to exit. It runs
// by itself when the test ends.
func (s *SentinelSet) Stop() {
	for _, n := range s.sentinels {
		n.kill()
	}
	s.mu.Lock()
	p, r := s.primary, s.replica
	s.mu.Unlock()
	p.kill()
	r.kill()
}

// sentinelMaster returns SENTINEL MASTER <SentinelMaster> as a map.
func sentinelMaster(addr string) (map[string]string, error) {
	v, err := topoCmd(addr, "SENTINEL", "MASTER", SentinelMaster)
	if err != nil {
		return nil, err
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("SENTINEL MASTER answered %v", v)
	}
	m := make(map[string]string, len(arr)/2)
	for i := 0; i+1 < len(arr); i += 2 {
		k, _ := arr[i].(string)
		val, _ := arr[i+1].(string)
		m[k] = val
	}
	return m, nil
}

// replOffset reads one offset field of INFO replication.
func replOffset(addr, field string) (int64, error) {
	v, err := topoCmd(addr, "INFO", "replication")
	if err != nil {
		return 0, err
	}
	s, _ := v.(string)
	raw, ok := infoFields(s)[field]
	if !ok {
		return 0, fmt.Errorf("no %s in INFO replication: %q", field, s)
	}
	return strconv.ParseInt(raw, 10, 64)
}

// infoFields parses "key:value" lines of INFO or CLUSTER INFO.
func infoFields(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

func topoLookPath(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH (install it, e.g. apt-get install redis-server): %v", name, err)
	}
	return bin
}

// topoProc is one process of a topology: a redis-server or a sentinel.
type topoProc struct {
	name string
	addr string
	log  *lockedBuffer
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

// startTopoProc starts bin with args(port) on a free port and waits until
// it answers PING; a port taken in the meantime gets a few retries. The
// process is killed when the test ends.
func startTopoProc(t testing.TB, name, bin string, args func(port int) []string) *topoProc {
	t.Helper()
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("finding a free port for %s: %v", name, err)
		}
		p := &topoProc{name: name, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), log: &lockedBuffer{}}
		p.cmd = exec.Command(bin, args(port)...)
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("starting %s (%s): %v", name, bin, err)
		}
		p.done = make(chan struct{})
		go func() {
			_ = p.cmd.Wait()
			close(p.done)
		}()
		t.Cleanup(p.kill)
		if lastErr = p.waitPing(); lastErr == nil {
			return p
		}
		p.kill()
	}
	t.Fatalf("starting %s: %v", name, lastErr)
	return nil
}

func (p *topoProc) waitPing() error {
	deadline := time.Now().Add(redisStartTimeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s on %s exited: %s", p.name, p.addr, strings.TrimSpace(p.log.String()))
		default:
		}
		err := ping(p.addr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s on %s did not answer PING within %v: %v; log: %s",
				p.name, p.addr, redisStartTimeout, err, strings.TrimSpace(p.log.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *topoProc) pause(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s on %s: %v", p.name, p.addr, err)
	}
	waitStopped(t, p.cmd.Process.Pid)
}

func (p *topoProc) resume(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %s on %s: %v", p.name, p.addr, err)
	}
}

// kill sends SIGKILL and waits for the exit; later calls do nothing.
func (p *topoProc) kill() {
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
}

// topoCmd sends one command on a fresh connection and reads the reply.
func topoCmd(addr string, args ...string) (any, error) {
	c, err := net.DialTimeout("tcp", addr, topoCommandTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(topoCommandTimeout))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return nil, err
	}
	return readRESP(bufio.NewReader(c))
}

// RedisError is an error reply of Redis (e.g. "CROSSSLOT Keys in request
// don't hash to the same slot").
type RedisError string

func (e RedisError) Error() string { return string(e) }

// readRESP reads one RESP2 reply. An error reply nested in an array is
// returned as a RedisError value in it.
func readRESP(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty RESP line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, RedisError(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		arr := make([]any, n)
		for i := range arr {
			v, err := readRESP(r)
			var re RedisError
			if errors.As(err, &re) {
				v, err = re, nil
			}
			if err != nil {
				return nil, err
			}
			arr[i] = v
		}
		return arr, nil
	default:
		return nil, fmt.Errorf("unexpected RESP reply %q", line)
	}
}
