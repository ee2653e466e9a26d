package storetest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// Link is a small TCP proxy between a gateway node and Redis that a test
// can misbehave on purpose: Freeze stops every byte in both directions
// (a stalled link: connections stay open, nothing arrives), Delay holds
// every chunk back for a while (a lagging link), Cut closes every
// connection and refuses new ones (a dropped link). It carries real TCP
// to a real redis-server; only the timing is the test's.
type Link struct {
	t testing.TB

	mu      sync.Mutex
	cond    *sync.Cond
	frozen  bool
	cut     bool
	delay   time.Duration
	writing int // chunks being written right now
	proxies map[string]string
	conns   map[net.Conn]struct{}
	lns     []net.Listener
}

// NewLink returns a Link with nothing misbehaving yet; its proxies close
// when the test ends.
func NewLink(t testing.TB) *Link {
	l := &Link{t: t, proxies: map[string]string{}, conns: map[net.Conn]struct{}{}}
	l.cond = sync.NewCond(&l.mu)
	t.Cleanup(l.close)
	return l
}

// To returns the address of a proxy that forwards to target through the
// link (one proxy per target).
func (l *Link) To(target string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if addr, ok := l.proxies[target]; ok {
		return addr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.t.Fatalf("link: listen: %v", err)
	}
	l.lns = append(l.lns, ln)
	l.proxies[target] = ln.Addr().String()
	go l.accept(ln, target)
	return ln.Addr().String()
}

// Dialer is for go-redis's Options.Dialer: every connection to addr goes
// through the link, whatever address the client learns (Cluster nodes,
// the master a sentinel names).
func (l *Link) Dialer(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, l.To(addr))
}

// Freeze stops the link: when it returns, no further byte passes either
// way until Thaw.
func (l *Link) Freeze() {
	l.mu.Lock()
	l.frozen = true
	for l.writing > 0 {
		l.cond.Wait()
	}
	l.mu.Unlock()
}

// Thaw lets what was held back through, in order.
func (l *Link) Thaw() {
	l.mu.Lock()
	l.frozen = false
	l.cond.Broadcast()
	l.mu.Unlock()
}

// Delay holds every chunk for d before it is passed on (0: no delay).
func (l *Link) Delay(d time.Duration) {
	l.mu.Lock()
	l.delay = d
	l.mu.Unlock()
}

// Cut closes every connection through the link and refuses new ones until
// Restore.
func (l *Link) Cut() {
	l.mu.Lock()
	l.cut = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
}

// Restore accepts connections again after Cut.
func (l *Link) Restore() {
	l.mu.Lock()
	l.cut = false
	l.mu.Unlock()
}

func (l *Link) close() {
	l.mu.Lock()
	for _, ln := range l.lns {
		ln.Close()
	}
	for c := range l.conns {
		c.Close()
	}
	l.frozen = false
	l.cond.Broadcast()
	l.mu.Unlock()
}

func (l *Link) accept(ln net.Listener, target string) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		go l.serve(client, target)
	}
}

func (l *Link) serve(client net.Conn, target string) {
	l.mu.Lock()
	cut := l.cut
	l.mu.Unlock()
	if cut {
		client.Close()
		return
	}
	server, err := net.DialTimeout("tcp", target, time.Second)
	if err != nil {
		client.Close()
		return
	}
	if !l.track(client, server) {
		return
	}
	go l.pipe(client, server)
	go l.pipe(server, client)
}

// track registers both ends, or closes them when the link was cut
// meanwhile.
func (l *Link) track(a, b net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		a.Close()
		b.Close()
		return false
	}
	l.conns[a], l.conns[b] = struct{}{}, struct{}{}
	return true
}

type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst through the link's gate: a reader takes chunks
// off src as they come, a writer passes each on when it is due and the
// link is not frozen.
func (l *Link) pipe(src, dst net.Conn) {
	chunks := make(chan chunk, 4096)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				l.mu.Lock()
				due := time.Now().Add(l.delay)
				l.mu.Unlock()
				chunks <- chunk{buf[:n], due}
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		src.Close()
		dst.Close()
		l.mu.Lock()
		delete(l.conns, src)
		delete(l.conns, dst)
		l.mu.Unlock()
	}()
	for c := range chunks {
		time.Sleep(time.Until(c.due))
		l.mu.Lock()
		for l.frozen {
			l.cond.Wait()
		}
		l.writing++
		l.mu.Unlock()
		_, err := dst.Write(c.data)
		l.mu.Lock()
		l.writing--
		l.cond.Broadcast()
		l.mu.Unlock()
		if err != nil {
			return
		}
	}
}
