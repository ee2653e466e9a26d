package redis

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/authcore"
)

// How a node serves sessions from memory without ever serving a revoked
// one (SPEC §4).
//
// Each Redis master this node reads sessions from gets one tracking
// connection (a stream): RESP3, CLIENT TRACKING ON NOLOOP, read all the
// time by one goroutine, and by requests themselves when an answer is due
// (wire.go). Session reads that may be cached go over it
// (PEXPIRE then GET when the idle window is due a slide, else GET), so
// Redis remembers that this connection holds the key and pushes an
// invalidation on the same connection when anyone changes or deletes it,
// or when it expires. Replies and pushes arrive in the order Redis
// produced them, so the reader applies every invalidation issued before a
// reply before it sees the reply.
//
// That order is the proof. A reply to a command sent at time S shows that
// every invalidation Redis issued before it processed that command (so
// every revocation answered before S) has been applied here. A request
// that reaches the store at time T is served from memory only when its
// session's stream has answered a command sent at T - RevocationWindow or
// later. When the newest proof is older, the request waits until such an
// answer comes: a heartbeat sent in that time is shared by every request
// waiting then, and only a request that finds none sends one. The answer
// may come later than RevocationWindow after T on a loaded machine; it
// still covers every revocation answered up to RevocationWindow before the
// request reached the store, which is the rule. A stream that does not
// answer within the read timeout is a 503, and a session not held in
// memory is read from Redis. A
// request that finds the proof older than RefreshAge sends a heartbeat
// (PING; ROLE on Sentinel and Cluster, which also proves the server is
// still the master) and goes on, so a busy node renews its proof about
// once per RefreshAge; heartbeats are only ever sent by requests, so an
// idle gateway sends nothing, and its reader is blocked in a read: no
// polling, no timer.
//
// A write of this node (create, save, delete) drops the session from its
// own cache at once and turns away any read that was in flight, so it
// never serves its own stale data. Other nodes stop serving their copy
// within RevocationWindow because their proof runs out, whatever their
// link does; a save or delete answers only after that long (Store.settle),
// so the change holds on every node when the caller hears of it.

const (
	// RevocationWindow is how old the newest proof of a stream may be for
	// a session to be served from memory: a revocation answered on any
	// node is honoured here within this long (SPEC §4: 10 ms).
	RevocationWindow = 10 * time.Millisecond
	// RefreshAge: a request that finds the proof older than this sends a
	// heartbeat (without waiting for it), so that on a busy node the proof
	// is renewed before it runs out: at most about one heartbeat per
	// RefreshAge while requests flow, none while idle.
	RefreshAge = RevocationWindow / 2
	// maxBeatsOut bounds unanswered heartbeats, so a stalled link does not
	// pile them up.
	maxBeatsOut = 4
	// maxReconnectWait caps the back-off between reconnect attempts.
	maxReconnectWait = time.Second
)

// errNoStream: the stream is not connected; the caller reads Redis through
// the pool instead, uncached.
var errNoStream = errors.New("redis tracking: not connected")

// errNotMaster: the server a stream reached is no longer a master.
var errNotMaster = errors.New("redis tracking: server is not a master")

// target says where one stream connects and how.
type target struct {
	addr      func(ctx context.Context) (string, error)
	username  string
	password  string
	db        int
	tls       *tls.Config
	dialer    func(ctx context.Context, network, addr string) (net.Conn, error)
	dialTO    time.Duration
	readTO    time.Duration
	writeTO   time.Duration
	checkRole bool
}

func (tg *target) dial(ctx context.Context) (net.Conn, error) {
	addr, err := tg.addr(ctx)
	if err != nil {
		return nil, err
	}
	if tg.dialer != nil {
		return tg.dialer(ctx, "tcp", addr)
	}
	d := &net.Dialer{Timeout: tg.dialTO, KeepAlive: 30 * time.Second}
	if tg.tls != nil {
		return (&tls.Dialer{NetDialer: d, Config: tg.tls}).DialContext(ctx, "tcp", addr)
	}
	return d.DialContext(ctx, "tcp", addr)
}

// reply kinds, in the order a stream's commands were sent.
const (
	kindGet    uint8 = iota // GET of a session: fills the cache, completes its call
	kindExpire              // PEXPIRE that slides a session before its GET
	kindPing                // heartbeat
	kindRole                // heartbeat that also checks the server is a master
)

type pendingReply struct {
	sentAt int64
	kind   uint8
	c      *call // nil for heartbeats
}

// call is one session read over a stream.
type call struct {
	key string
	gen uint64
	// slidMS is the PEXPIRE sent before the GET, 0 for none.
	slidMS int64
	data   []byte
	err    error
	done   chan struct{}
}

// stream is one tracking connection.
type stream struct {
	tr     *tracker
	target target
	id     uint32 // this stream's number, which its cache entries carry
	single bool   // the only stream of its tracker (not one of a Cluster's)

	mu       sync.Mutex
	conn     net.Conn
	bw       *bufio.Writer
	pending  []pendingReply
	beatsOut int
	// queued are background slides not written yet (see slide); flushing
	// says a timer will write them.
	queued   []queuedSlide
	flushing bool

	gen    atomic.Uint64 // connection generation; cache entries carry it
	live   atomic.Bool   // connected and tracking
	proven atomic.Int64  // mono time the newest answered command was sent
	// lastBeat is when the newest heartbeat was sent.
	lastBeat atomic.Int64
	// oldest is when the oldest unanswered command was sent, 0 for none;
	// requests that find it older than pumpAfter read the answer
	// themselves (wire.go).
	oldest atomic.Int64
	// w is the read side of the current connection.
	w atomic.Pointer[wire]

	// Requests that wait for a fresh proof (awaitProof) wait on proofCh,
	// which is closed and replaced when the proof moves on.
	waiting atomic.Int32
	proofMu sync.Mutex
	proofCh chan struct{}

	done chan struct{}
	once sync.Once
}

// streamIDs numbers streams, for cache entries to say which one read
// them without a pointer to it.
var streamIDs atomic.Uint32

func newStream(tr *tracker, tg target, single bool) *stream {
	st := &stream{tr: tr, target: tg, single: single, id: streamIDs.Add(1), done: make(chan struct{}), proofCh: make(chan struct{})}
	go st.run()
	return st
}

// fresh reports whether the stream holds proof at now (see the package
// comment above): connected, and answered a command sent within
// RevocationWindow.
func (st *stream) fresh(now int64) bool {
	return st.live.Load() && now-st.proven.Load() <= int64(RevocationWindow)
}

// prove records the answer to a command sent at sentAt and wakes the
// requests waiting for a proof.
func (st *stream) prove(sentAt int64) {
	st.proven.Store(sentAt)
	if st.waiting.Load() > 0 {
		st.wake()
	}
}

func (st *stream) wake() {
	st.proofMu.Lock()
	close(st.proofCh)
	st.proofCh = make(chan struct{})
	st.proofMu.Unlock()
}

// awaitProof waits until the stream has answered a command sent at or
// after since, sending a heartbeat at once unless one has been sent since
// then. Many requests that find the proof a little old share one
// heartbeat this way, instead of each reading Redis. It fails with
// errNoStream when the connection is lost meanwhile, and with
// ErrUnavailable when the stream does not answer within the read timeout.
func (st *stream) awaitProof(ctx context.Context, since int64) error {
	st.waiting.Add(1)
	defer st.waiting.Add(-1)
	timer := time.NewTimer(st.target.readTO)
	defer timer.Stop()
	gen := st.gen.Load()
	for {
		st.proofMu.Lock()
		ch := st.proofCh
		st.proofMu.Unlock()
		if st.proven.Load() >= since {
			return nil
		}
		if !st.live.Load() || st.gen.Load() != gen {
			return errNoStream
		}
		st.beatAfter(since)
		st.pump()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", authcore.ErrUnavailable, ctx.Err())
		case <-timer.C:
			st.teardownGen(gen)
			return fmt.Errorf("%w: redis tracking: no answer within %v", authcore.ErrUnavailable, st.target.readTO)
		}
	}
}

// refresh sends a heartbeat when the proof is older than RefreshAge at
// now and no heartbeat has been sent since the proof's command: the
// request itself goes on with the proof it has.
func (st *stream) refresh(now int64) {
	if proven := st.proven.Load(); now-proven > int64(RefreshAge) && st.lastBeat.Load() <= proven {
		st.beatAfter(proven + 1)
	}
}

// fetch reads key over the stream, first sliding its TTL to ms when slide
// is set, and caches what it reads. errNoStream means it sent nothing.
func (st *stream) fetch(ctx context.Context, key string, slide bool, ms int64) ([]byte, error) {
	c, err := st.send(key, slide, ms)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(st.target.readTO)
	defer timer.Stop()
	select {
	case <-c.done:
		return c.data, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", authcore.ErrUnavailable, ctx.Err())
	case <-timer.C:
		// A stream that does not answer in time gives no proof and is
		// replaced; until it is, reads go through the pool.
		st.teardownGen(c.gen)
		return nil, fmt.Errorf("%w: redis tracking: no answer within %v", authcore.ErrUnavailable, st.target.readTO)
	}
}

// slide sends PEXPIRE and GET of a session this node holds and goes on
// without waiting: the GET's answer refills the cache (PEXPIRE from this
// connection ends Redis's tracking of the key for it, and the GET renews
// it), like any fetch's. The slide waits up to slideDelay for company: it
// goes out with the stream's next write (a fetch, a heartbeat, other
// slides), so that a busy node slides many sessions per write instead of
// one. A stream that is not connected sends nothing; its cache entries
// are of a dead generation anyway.
func (st *stream) slide(key string, ms int64) {
	st.mu.Lock()
	if st.conn == nil {
		st.mu.Unlock()
		return
	}
	st.queued = append(st.queued, queuedSlide{key, ms})
	if time.Duration(ms)*time.Millisecond < slideDelayWindows*slideDelay {
		// A window this short cannot wait: write it now.
		st.writeQueued(mono(time.Now()))
		conn, err := st.flush()
		st.mu.Unlock()
		if err != nil {
			st.teardown(conn)
		}
		return
	}
	schedule := !st.flushing
	st.flushing = true
	st.mu.Unlock()
	if schedule {
		time.AfterFunc(slideDelay, st.flushQueued)
	}
}

// slideDelay bounds how long a background slide waits in the stream's
// queue. Delaying it is safe: a slide is only left to the background
// while the session's TTL in Redis is above half the idle window
// (slideDue), and a slide that goes out later only makes the session
// expire later than the slide log assumes. Windows under
// slideDelayWindows times this are slid at once.
const (
	slideDelay        = 20 * time.Millisecond
	slideDelayWindows = 16
)

// queuedSlide is a background slide waiting to be written.
type queuedSlide struct {
	key string
	ms  int64
}

// flushQueued writes the queued slides, when slideDelay has passed and no
// other write took them along.
func (st *stream) flushQueued() {
	st.mu.Lock()
	st.flushing = false
	if st.conn == nil || len(st.queued) == 0 {
		clear(st.queued) // not connected: dropped, as a write to a dead connection would be; slid again when next due
		st.queued = st.queued[:0]
		st.mu.Unlock()
		return
	}
	st.writeQueued(mono(time.Now()))
	conn, err := st.flush()
	st.mu.Unlock()
	if err != nil {
		st.teardown(conn)
	}
}

// writeQueued buffers the queued slides, each a PEXPIRE and a GET whose
// answer refills the cache; called with mu held and a connection, before
// a flush.
func (st *stream) writeQueued(sentAt int64) {
	if len(st.queued) == 0 {
		return
	}
	gen := st.gen.Load()
	for _, q := range st.queued {
		c := &call{key: q.key, gen: gen, slidMS: q.ms, done: make(chan struct{})}
		writeCommand(st.bw, "PEXPIRE", q.key, strconv.FormatInt(q.ms, 10))
		st.expect(pendingReply{sentAt, kindExpire, c})
		writeCommand(st.bw, "GET", q.key)
		st.expect(pendingReply{sentAt, kindGet, c})
	}
	clear(st.queued)
	st.queued = st.queued[:0]
}

// send writes a session read (after a PEXPIRE when slide is set), with any
// queued slides, and returns its call, which the reader completes.
// errNoStream means it sent nothing.
func (st *stream) send(key string, slide bool, ms int64) (*call, error) {
	c := &call{key: key, done: make(chan struct{})}
	st.mu.Lock()
	if st.conn == nil {
		st.mu.Unlock()
		return nil, errNoStream
	}
	sentAt := mono(time.Now())
	c.gen = st.gen.Load()
	st.writeQueued(sentAt)
	if slide {
		c.slidMS = ms
		writeCommand(st.bw, "PEXPIRE", key, strconv.FormatInt(ms, 10))
		st.expect(pendingReply{sentAt, kindExpire, c})
	}
	writeCommand(st.bw, "GET", key)
	st.expect(pendingReply{sentAt, kindGet, c})
	conn, err := st.flush()
	st.mu.Unlock()
	if err != nil {
		st.teardown(conn) // fails c with the rest
	}
	return c, nil
}

// expect queues the reply of a command written to bw; called with mu held.
func (st *stream) expect(pr pendingReply) {
	st.pending = append(st.pending, pr)
	st.syncOldest()
}

// syncOldest publishes when the oldest command still unanswered was sent
// (0 for none), for requests to read without mu; called with mu held after
// pending changed.
func (st *stream) syncOldest() {
	if len(st.pending) == 0 {
		st.oldest.Store(0)
		return
	}
	st.oldest.Store(max(st.pending[0].sentAt, 1))
}

// flush writes what is buffered; called with mu held. It returns the
// connection written to, for teardown on error.
func (st *stream) flush() (net.Conn, error) {
	conn := st.conn
	_ = conn.SetWriteDeadline(time.Now().Add(st.target.writeTO))
	return conn, st.bw.Flush()
}

// beatAfter sends a heartbeat unless one was sent at or after since (its
// answer will do), or gives up a stream whose oldest command has gone
// unanswered for the read timeout.
func (st *stream) beatAfter(since int64) {
	st.mu.Lock()
	if st.conn == nil || st.lastBeat.Load() >= since {
		st.mu.Unlock()
		return
	}
	now := mono(time.Now())
	if len(st.pending) > 0 && now-st.pending[0].sentAt > int64(st.target.readTO) {
		conn := st.conn
		st.mu.Unlock()
		st.teardown(conn)
		return
	}
	if st.beatsOut >= maxBeatsOut {
		// Answers to those will come, and their waiters ask again.
		st.mu.Unlock()
		return
	}
	st.writeQueued(now)
	kind := kindPing
	if st.target.checkRole {
		kind = kindRole
		writeCommand(st.bw, "ROLE")
	} else {
		writeCommand(st.bw, "PING")
	}
	st.expect(pendingReply{now, kind, nil})
	st.beatsOut++
	st.lastBeat.Store(now)
	conn, err := st.flush()
	st.mu.Unlock()
	if err != nil {
		st.teardown(conn)
	}
}

// run connects, reads until the connection fails, and connects again, with
// a back-off, until the stream is closed.
func (st *stream) run() {
	wait := 10 * time.Millisecond
	for {
		select {
		case <-st.done:
			return
		default:
		}
		w, err := st.connect()
		switch {
		case err == nil:
			start := time.Now()
			st.read(w)
			if time.Since(start) > maxReconnectWait {
				// It served for a while: reconnect at once.
				wait = 10 * time.Millisecond
				continue
			}
		case errors.Is(err, errNotMaster) && !st.single:
			// A Cluster master that was demoted: keys route elsewhere now.
			st.tr.retire(st)
			return
		case st.tr.unsupported(err):
			return
		}
		select {
		case <-st.done:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxReconnectWait)
	}
}

// connect dials and turns tracking on, then makes the connection the
// stream's current one.
func (st *stream) connect() (*wire, error) {
	ctx, cancel := context.WithTimeout(context.Background(), st.target.dialTO+st.target.readTO)
	defer cancel()
	conn, err := st.target.dial(ctx)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	bw, w := bufio.NewWriter(conn), newWire(conn)
	hello := []string{"HELLO", "3"}
	if st.target.password != "" {
		user := st.target.username
		if user == "" {
			user = "default"
		}
		hello = append(hello, "AUTH", user, st.target.password)
	}
	writeCommand(bw, hello...)
	n := 2
	if st.target.db != 0 {
		writeCommand(bw, "SELECT", strconv.Itoa(st.target.db))
		n++
	}
	writeCommand(bw, "CLIENT", "TRACKING", "ON", "NOLOOP")
	if st.target.checkRole {
		writeCommand(bw, "ROLE")
		n++
	}
	sentAt := mono(time.Now())
	err = bw.Flush()
	for i := 0; err == nil && i < n; {
		var f any
		if f, err = w.next(); err != nil {
			break
		}
		if _, ok := f.(respPush); ok {
			continue
		}
		if e, ok := f.(respError); ok {
			err = e
		} else if st.target.checkRole && i == n-1 && !isMaster(f) {
			err = errNotMaster
		}
		i++
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	st.mu.Lock()
	select {
	case <-st.done:
		st.mu.Unlock()
		conn.Close()
		return nil, errors.New("redis tracking: closed")
	default:
	}
	st.conn, st.bw, st.pending, st.beatsOut = conn, bw, st.pending[:0], 0
	st.syncOldest()
	st.w.Store(w)
	st.gen.Add(1)
	st.proven.Store(sentAt)
	st.lastBeat.Store(0) // the old connection's heartbeats will not be answered
	st.live.Store(true)
	st.mu.Unlock()
	return w, nil
}

// isMaster reads a ROLE reply.
func isMaster(f any) bool {
	items, ok := f.([]any)
	if !ok || len(items) == 0 {
		return false
	}
	role, _ := items[0].([]byte)
	return string(role) == "master"
}

// read handles replies and pushes until the connection fails: it waits
// for the socket to be readable and drains it (requests may have drained
// it first, see wire.go), or, on a wire without a descriptor, reads it
// blocking.
func (st *stream) read(w *wire) {
	defer st.teardown(w.conn)
	if w.fd >= 0 {
		_ = w.raw.Read(func(uintptr) bool {
			w.mu.Lock()
			_, err := st.drainAndHandle(w)
			w.mu.Unlock()
			return err != nil // false: wait until readable, and again
		})
		return
	}
	for {
		w.mu.Lock()
		_, err := st.handleBuffered(w)
		w.mu.Unlock()
		if err != nil || w.readBlocking() != nil {
			return
		}
	}
}

// pump reads and handles what the connection holds, unless someone is at
// it already (then the frames are being handled): for requests, see
// wire.go. It returns how many frames it handled.
func (st *stream) pump() int {
	w := st.w.Load()
	if w == nil || w.fd < 0 || !w.mu.TryLock() {
		return 0
	}
	n, err := st.drainAndHandle(w)
	w.mu.Unlock()
	if err != nil && !errors.Is(err, errWireClosed) {
		st.teardown(w.conn)
	}
	return n
}

// pumpIfDue pumps when a command has gone unanswered for pumpAfter at now.
func (st *stream) pumpIfDue(now int64) {
	if o := st.oldest.Load(); o != 0 && now-o >= int64(pumpAfter) {
		st.pump()
	}
}

// drainAndHandle reads what the socket holds and handles every complete
// frame, returning how many; called with w.mu held, on a wire with a
// descriptor. Frames read before a failure are handled first.
func (st *stream) drainAndHandle(w *wire) (int, error) {
	derr := w.drain()
	if errors.Is(derr, errWireClosed) {
		return 0, derr
	}
	n, err := st.handleBuffered(w)
	if err != nil {
		return n, err
	}
	return n, derr
}

// handleBuffered handles the complete frames read so far, in order, and
// returns how many; called with w.mu held.
func (st *stream) handleBuffered(w *wire) (n int, err error) {
	for {
		f, ok, err := w.frame()
		if err != nil || !ok {
			return n, err
		}
		n++
		if err := st.handle(w, f); err != nil {
			return n, err
		}
	}
}

// errOutOfStep: a reply came that no command of the connection waits for.
var errOutOfStep = errors.New("redis tracking: a reply to nothing")

// handle applies one frame of w's connection: a push, or the reply to the
// oldest command waiting.
func (st *stream) handle(w *wire, f any) error {
	if p, ok := f.(respPush); ok {
		st.invalidate(p)
		return nil
	}
	st.mu.Lock()
	if st.conn != w.conn || len(st.pending) == 0 {
		st.mu.Unlock()
		return errOutOfStep // out of step, or a connection already torn down
	}
	pr := st.pending[0]
	st.pending[0] = pendingReply{}
	st.pending = st.pending[1:]
	st.syncOldest()
	if pr.c == nil {
		st.beatsOut--
	}
	st.mu.Unlock()
	st.prove(pr.sentAt)
	if !st.answer(pr, f) {
		return errNotMaster
	}
	return nil
}

// answer applies one reply; false ends the connection.
func (st *stream) answer(pr pendingReply, f any) bool {
	switch pr.kind {
	case kindGet:
		c := pr.c
		switch v := f.(type) {
		case []byte:
			c.data = v
			m := entryMeta{sid: st.id, gen: c.gen}
			if c.slidMS > 0 {
				m.slidAt, m.slidMS = pr.sentAt, c.slidMS
			}
			st.tr.cache.fill(c.key, v, m, pr.sentAt, mono(time.Now()))
		case nil:
			// Gone, perhaps expired by this very read, which Redis does
			// not report to the connection that caused it (NOLOOP).
			st.tr.cache.drop(c.key)
			c.err = authcore.ErrNotFound
		case respError:
			// MOVED or ASK on a Cluster whose slots moved, for one: the
			// pool knows how to follow it.
			c.err = errNoStream
		default:
			c.err = fmt.Errorf("%w: redis tracking: unexpected reply to GET", authcore.ErrUnavailable)
		}
		close(c.done)
	case kindRole:
		if !isMaster(f) {
			return false
		}
	}
	return true
}

// invalidate applies a push: ["invalidate", [keys...]] drops those keys,
// ["invalidate", nil] (a flush) drops everything.
func (st *stream) invalidate(p respPush) {
	if len(p) != 2 {
		return
	}
	if name, _ := p[0].([]byte); string(name) != "invalidate" {
		return
	}
	keys, ok := p[1].([]any)
	if !ok {
		st.tr.cache.dropAll()
		return
	}
	for _, k := range keys {
		if b, ok := k.([]byte); ok {
			st.tr.cache.drop(string(b))
		}
	}
}

// teardownGen tears the stream down if it is still on generation gen.
func (st *stream) teardownGen(gen uint64) {
	st.mu.Lock()
	conn := st.conn
	same := st.gen.Load() == gen
	st.mu.Unlock()
	if same && conn != nil {
		st.teardown(conn)
	}
}

// teardown closes conn if it is still the stream's, and fails every call
// waiting on it.
func (st *stream) teardown(conn net.Conn) {
	st.mu.Lock()
	if st.conn != conn || conn == nil {
		st.mu.Unlock()
		return
	}
	st.live.Store(false)
	st.conn, st.bw = nil, nil
	pending := st.pending
	st.pending = nil
	st.syncOldest()
	st.mu.Unlock()
	if w := st.w.Load(); w != nil && w.conn == conn {
		// No pump reads the descriptor once it is closed (wire.closed).
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
	}
	conn.Close()
	st.wake()
	for _, pr := range pending {
		if pr.kind == kindGet {
			pr.c.err = fmt.Errorf("%w: redis tracking: connection lost", authcore.ErrUnavailable)
			close(pr.c.done)
		}
	}
}

func (st *stream) close() {
	st.once.Do(func() {
		close(st.done)
		st.mu.Lock()
		conn := st.conn
		st.mu.Unlock()
		st.teardown(conn)
	})
}

// tracker owns a Store's streams and its session cache.
type tracker struct {
	cache  *sessionCache
	slides *slideLog

	single  *stream                // standalone and Sentinel
	cluster *goredis.ClusterClient // Cluster: one stream per master
	mu      sync.RWMutex
	streams map[string]*stream
	off     atomic.Bool // the server has no RESP3 / tracking
	closed  bool

	sentinels []*goredis.SentinelClient // Sentinel: asked where the master is
}

// newTracker sets up tracking for client, built from o; nil when the
// client is of a kind it does not know.
func newTracker(client goredis.UniversalClient, o *goredis.UniversalOptions, entries int) *tracker {
	tr := &tracker{cache: newSessionCache(entries), slides: newSlideLog(entries)}
	base := target{
		username: o.Username, password: o.Password, db: o.DB, tls: o.TLSConfig, dialer: o.Dialer,
		dialTO: o.DialTimeout, readTO: o.ReadTimeout, writeTO: o.WriteTimeout,
	}
	switch c := client.(type) {
	case *goredis.ClusterClient:
		tr.cluster, tr.streams = c, map[string]*stream{}
	case *goredis.Client:
		tg := base
		if o.MasterName != "" {
			tg.addr, tg.checkRole = tr.sentinelMaster(o), true
		} else {
			addr := c.Options().Addr
			tg.addr = func(context.Context) (string, error) { return addr, nil }
		}
		tr.single = newStream(tr, tg, true)
	default:
		return nil
	}
	return tr
}

// sentinelMaster asks the sentinels, in turn, where the master is now.
func (tr *tracker) sentinelMaster(o *goredis.UniversalOptions) func(ctx context.Context) (string, error) {
	sentinels := make([]*goredis.SentinelClient, len(o.Addrs))
	tr.sentinels = sentinels
	for i, addr := range o.Addrs {
		sentinels[i] = goredis.NewSentinelClient(&goredis.Options{
			Addr: addr, Username: o.SentinelUsername, Password: o.SentinelPassword,
			TLSConfig: o.TLSConfig, Dialer: o.Dialer, MaxRetries: -1,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		})
	}
	return func(ctx context.Context) (string, error) {
		var last error
		for _, s := range sentinels {
			hp, err := s.GetMasterAddrByName(ctx, o.MasterName).Result()
			if err == nil && len(hp) == 2 {
				return net.JoinHostPort(hp[0], hp[1]), nil
			}
			last = err
		}
		return "", fmt.Errorf("redis tracking: no sentinel named the master: %w", last)
	}
}

// streamFor returns the stream of the master that holds key, or nil.
func (tr *tracker) streamFor(ctx context.Context, key string) *stream {
	if tr.off.Load() {
		return nil
	}
	if tr.single != nil {
		return tr.single
	}
	node, err := tr.cluster.MasterForKey(ctx, key)
	if err != nil {
		return nil
	}
	no := node.Options()
	tr.mu.RLock()
	st := tr.streams[no.Addr]
	tr.mu.RUnlock()
	if st != nil {
		return st
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.closed {
		return nil
	}
	if st = tr.streams[no.Addr]; st == nil {
		addr := no.Addr
		st = newStream(tr, target{
			addr:     func(context.Context) (string, error) { return addr, nil },
			username: no.Username, password: no.Password, tls: no.TLSConfig, dialer: no.Dialer,
			dialTO: no.DialTimeout, readTO: no.ReadTimeout, writeTO: no.WriteTimeout, checkRole: true,
		}, false)
		tr.streams[addr] = st
	}
	return st
}

// retire forgets a Cluster stream whose server is no longer a master.
func (tr *tracker) retire(st *stream) {
	tr.mu.Lock()
	for addr, s := range tr.streams {
		if s == st {
			delete(tr.streams, addr)
		}
	}
	tr.mu.Unlock()
	st.close()
}

// unsupported turns tracking off for good when the server cannot do it
// (Redis before 6: no HELLO, no CLIENT TRACKING); reads then all go to
// Redis, as without a cache.
func (tr *tracker) unsupported(err error) bool {
	var re respError
	if !errors.As(err, &re) {
		return false
	}
	if msg := string(re); strings.HasPrefix(msg, "ERR unknown") || strings.HasPrefix(msg, "NOPROTO") {
		tr.off.Store(true)
		return true
	}
	return false
}

func (tr *tracker) close() {
	tr.mu.Lock()
	tr.closed = true
	streams := make([]*stream, 0, len(tr.streams)+1)
	for _, st := range tr.streams {
		streams = append(streams, st)
	}
	tr.mu.Unlock()
	if tr.single != nil {
		streams = append(streams, tr.single)
	}
	for _, st := range streams {
		st.close()
	}
	for _, s := range tr.sentinels {
		_ = s.Close()
	}
}
