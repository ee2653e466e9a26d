package redis

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// A stream's replies prove freshness only once this process has read
// them, and a gateway whose core is saturated reads late: the goroutine
// that waits on the connection is woken by the runtime's network poller,
// which a scheduler with runnable work on every P consults only every few
// milliseconds, and it then queues behind every request goroutine woken
// with it. Under load a heartbeat's answer, there in the socket a few
// dozen microseconds after it was sent, was seen here about 5 to 10 ms
// later: half of all requests found the proof older than
// RevocationWindow and parked until it came.
//
// So requests read the connection too. A request that finds a command
// unanswered for longer than pumpAfter (or that is about to wait for a
// proof) takes the wire's lock if it is free and reads what the socket
// holds, without blocking, straight from the descriptor, and handles
// every complete frame in order, exactly as the stream's own reader would.
// Whoever holds the lock reads and handles; the order of frames, which
// is the proof, is the order of the bytes. The reader goroutine still
// waits on the connection, so an idle gateway applies invalidations as
// they come and spends nothing meanwhile.
//
// Pumps need the socket's descriptor; a connection without one (TLS, a
// custom dialer's) is read by its reader goroutine alone, as before.

// pumpAfter is how long a command may go unanswered before requests look
// for its answer themselves: a little above a round trip to a nearby
// Redis, so that a look rarely comes back empty.
const pumpAfter = 250 * time.Microsecond

// readChunk is the least free space a read is given.
const readChunk = 16 << 10

// errWireClosed: the wire's connection has been closed.
var errWireClosed = errors.New("redis tracking: connection closed")

// wire is the read side of one connection of a stream: the bytes read and
// not yet handled, and the lock under which they are read and handled.
type wire struct {
	conn net.Conn
	// fd is the socket, read without blocking by pumps; -1 when the
	// connection has none, and then only the reader goroutine reads.
	fd  int
	raw syscall.RawConn

	mu  sync.Mutex
	buf []byte // buf[off:] is read and not handled yet
	off int
	// closed is set, under mu, before the connection is closed: its
	// descriptor number may then belong to another file, and is not read.
	closed bool
}

func newWire(conn net.Conn) *wire {
	fd, raw := socketOf(conn)
	return &wire{conn: conn, fd: fd, raw: raw}
}

// frame returns the next complete frame read, or ok false when the bytes
// so far end inside one; called with mu held (or before the wire is
// shared).
func (w *wire) frame() (f any, ok bool, err error) {
	f, n, err := parseFrame(w.buf[w.off:])
	if err != nil || n == 0 {
		return nil, false, err
	}
	w.off += n
	if w.off == len(w.buf) {
		w.buf, w.off = w.buf[:0], 0
	}
	return f, true, nil
}

// space returns free room at the end of buf for at least readChunk bytes,
// moving the unhandled bytes to the front first.
func (w *wire) space() []byte {
	if w.off > 0 {
		n := copy(w.buf, w.buf[w.off:])
		w.buf, w.off = w.buf[:n], 0
	}
	if cap(w.buf)-len(w.buf) < readChunk {
		nb := make([]byte, len(w.buf), 2*cap(w.buf)+readChunk)
		copy(nb, w.buf)
		w.buf = nb
	}
	return w.buf[len(w.buf):cap(w.buf)]
}

// readBlocking reads at least one more byte from the connection, waiting
// for it; for the handshake and for a wire without a descriptor, whose
// reader goroutine is the only one to read it.
func (w *wire) readBlocking() error {
	p := w.space()
	n, err := w.conn.Read(p)
	w.buf = w.buf[:len(w.buf)+n]
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// drain reads what the socket holds, without blocking; called with mu
// held on a wire with a descriptor. It stops at the first read that does
// not fill the space it was given.
func (w *wire) drain() error {
	if w.closed {
		return errWireClosed
	}
	for {
		p := w.space()
		n, err := readNow(w.fd, p)
		if n > 0 {
			w.buf = w.buf[:len(w.buf)+n]
		}
		switch {
		case err != nil:
			return err
		case n == 0:
			return nil // nothing there (EAGAIN)
		case n < len(p):
			return nil
		}
	}
}

// next returns the next frame, reading (and waiting) for as long as it
// takes; for the handshake, before the wire is shared.
func (w *wire) next() (any, error) {
	for {
		f, ok, err := w.frame()
		if err != nil || ok {
			return f, err
		}
		if err := w.readBlocking(); err != nil {
			return nil, err
		}
	}
}
