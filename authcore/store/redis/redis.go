// Package redis is the shared authcore.Store: every gateway node on one
// Redis (single node, Sentinel or Cluster) sees the same sessions, so a
// logout or expiry on one node holds on all of them at once.
//
// Key layout (all keys carry a TTL; nothing is kept forever; authcore's
// StoreKeys lists every key and who writes it):
//
//	<prefix>s:{<sessionID>}   the session, as authcore.MarshalSession encodes it
//	<prefix><key>             a key-value record (Get, Set, SetNX, Incr,
//	                          Delete, TakeOnce); key is the caller's logical
//	                          name, e.g. "o:{<sessionID>}:stepup"
//
// The session id is the Redis Cluster hash tag, so every per-session key
// (<prefix>o:{<sessionID>}:stepup, ...) lands in the same slot and can be
// used together in one script or transaction. The prefix therefore must
// not contain '{' or '}'.
//
// A Store made by Open serves hot sessions from memory on a single server,
// Sentinel and Cluster alike, kept exact by Redis's invalidation tracking
// on one connection per master that also proves, every few milliseconds,
// that the node has missed nothing (tracking.go), so a guarded request
// usually costs Redis nothing; see Store.TouchSession.
//
// Failures other than a missing key satisfy errors.Is(err,
// authcore.ErrUnavailable). Recovery needs no code here: go-redis redials
// on its own (after repeated dial failures its pool probes the server once
// a second), so service resumes within about a second of Redis returning.
package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/authcore"
)

// Store is an authcore.Store on Redis. Every operation is a single command
// (Incr: one MULTI/EXEC transaction sent as one pipeline), so each costs
// one round trip at most (TouchSession often none) and is atomic on the
// server; there is no KEYS or SCAN anywhere.
type Store struct {
	client goredis.UniversalClient
	prefix string

	// tr serves hot sessions from memory under Redis's invalidation
	// tracking (tracking.go); nil without the session cache.
	tr *tracker
}

// New returns a Store that keeps its keys under prefix (for example
// "authgate:") in client, and reads every session from Redis. The Store
// owns the client from now on: Close closes it.
func New(client goredis.UniversalClient, prefix string) *Store {
	return &Store{client: client, prefix: prefix}
}

// Open connects as o says: a client for o.Redis and, with o.SessionCache,
// the tracking connections that let TouchSession serve hot sessions from
// memory on a single server, Sentinel and Cluster alike.
func Open(o *Options, prefix string) *Store {
	client := goredis.NewUniversalClient(o.Redis)
	s := New(client, prefix)
	if o.SessionCache {
		s.tr = newTracker(client, o.Redis, o.CacheEntries)
	}
	return s
}

// Cached reports whether session reads may be served from memory.
func (s *Store) Cached() bool { return s.tr != nil }

// Client is the go-redis client (tests add hooks to it).
func (s *Store) Client() goredis.UniversalClient { return s.client }

// forget drops a session this node has just written from its cache (see
// sessionCache.forget): it sees its own write at once.
func (s *Store) forget(key string) {
	if s.tr != nil {
		s.tr.cache.forget(key, mono(time.Now()))
	}
}

// settle waits RevocationWindow after a session write that changed
// something, when other nodes may hold the session in memory. By then
// every node has either applied the write's invalidation or lost the
// proof it would serve the old session under (tracking.go), so the change
// holds on every node when the call answers: a client that steps up on one
// node and is sent to another at once is stepped up there, and a token
// replayed anywhere right after "logged out" is refused. Without the wait
// that is only true RevocationWindow after the answer. Logout, step-up and
// password change are rare next to guarded requests, which never wait here.
func (s *Store) settle(ctx context.Context, changed bool) {
	if s.tr == nil || !changed {
		return
	}
	t := time.NewTimer(RevocationWindow)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

var _ authcore.Store = (*Store)(nil)

// sessionKey is "<prefix>s:{<id>}": the braces make the id the Cluster
// hash tag (see the package doc).
func (s *Store) sessionKey(id string) string {
	return authcore.Keys.Session(s.prefix, id)
}

// ttlMillis converts ttl for PX. A ttl <= 0 is a caller bug (every key
// must expire, and Redis rejects PX 0 with an opaque "invalid expire
// time"), so it gets a clear error of its own, not ErrUnavailable. A
// positive ttl below 1ms rounds up to 1ms.
func ttlMillis(ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("redis store: ttl must be positive, got %v", ttl)
	}
	ms := ttl.Milliseconds()
	if ms == 0 {
		ms = 1
	}
	return ms, nil
}

// storeErr maps a go-redis error onto the authcore sentinels: a missing key
// (goredis.Nil) is ErrNotFound; a WRONGTYPE reply (a key of another kind:
// a bug, and Redis did answer) keeps its own kind; anything else (refused,
// timeout, closed pool, LOADING, ...) means the store did not answer,
// which callers turn into 503 rather than guessing.
func storeErr(err error) error {
	var reply goredis.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, goredis.Nil):
		return authcore.ErrNotFound
	case errors.As(err, &reply) && strings.HasPrefix(reply.Error(), "WRONGTYPE"):
		return fmt.Errorf("redis store: %w", err)
	default:
		return fmt.Errorf("%w: %w", authcore.ErrUnavailable, err)
	}
}

// CreateSession implements authcore.Store with SET key value PX ttl.
func (s *Store) CreateSession(ctx context.Context, sess *authcore.Session, ttl time.Duration) error {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return err
	}
	data, err := authcore.MarshalSession(sess)
	if err != nil {
		return err
	}
	key := s.sessionKey(sess.ID)
	cmd := goredis.NewStatusCmd(ctx, "set", key, data, "px", ms)
	_ = s.client.Process(ctx, cmd)
	s.forget(key)
	return storeErr(cmd.Err())
}

// TouchSession implements authcore.Store in one round trip at most.
//
// Without the session cache it is GETEX key PX ttl: read and slide the
// idle window in one command on every call.
//
// With it, a session this node read lately is served from memory, with no
// round trip, under proof from the tracking connection of the session's
// master that every invalidation up to RevocationWindow before the call
// has been applied; a proof older than that is renewed by one heartbeat
// shared with the other calls waiting (see tracking.go and cached). A
// session the node does not hold is read over that connection, which
// Redis then tracks for this node. The idle window is
// slid (PEXPIRE before the GET, same round trip) only when this node has
// not slid it for slideEvery(ttl) (5 s for any idle window of 40 s or
// more). A held session whose last slide here is less than half the
// window old is served at once and slid in the background (the GET's
// answer refills the cache); older than that, or not held, the request
// waits for the slide. So a session is served from memory only while its
// TTL in Redis is above half the window: a cached session cannot have
// expired in Redis unseen. The price is that a session may end up to one
// granularity before a full idle window after its last use.
func (s *Store) TouchSession(ctx context.Context, id string, ttl time.Duration) (*authcore.Session, error) {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return nil, err
	}
	key := s.sessionKey(id)
	if s.tr != nil {
		if st := s.tr.streamFor(ctx, key); st != nil {
			return s.touchTracked(ctx, st, id, key, ttl, ms)
		}
	}
	return s.getex(ctx, id, key, ms)
}

func (s *Store) touchTracked(ctx context.Context, st *stream, id, key string, ttl time.Duration, ms int64) (*authcore.Session, error) {
	at := mono(time.Now())
	st.pumpIfDue(at)
	st.refresh(at)
	// Proof first, then the look-up: an entry found after the stream held
	// proof for at was not dropped by any invalidation that proof covers.
	// (The other way round, an invalidation and the reply that proves it
	// could both be read between the two, and a stale entry served.)
	fresh := st.fresh(at)
	if h := testHookProofRead; h != nil {
		h()
	}
	e, held := s.held(st, key)
	// A held entry that came with this node's own slide (to this window,
	// less than slideEvery ago) needs no look into the slide log.
	state := slideNotDue
	if !held || e.slidMS != ms || at-e.slidAt >= int64(slideEvery(ttl)) {
		state = s.tr.slides.state(id, ttl, at)
	}
	if state != slideNow && held {
		if e, ok, err := s.proven(ctx, st, key, e, fresh, at); ok || err != nil {
			if err != nil {
				return nil, err
			}
			if state == slideDue && s.tr.slides.claim(id, ttl, at) {
				st.slide(key, ms)
			}
			return authcore.UnmarshalSession(id, e.data)
		}
	}
	slide := state != slideNotDue
	data, err := st.fetch(ctx, key, slide, ms)
	if errors.Is(err, errNoStream) {
		// Not connected (or the slot moved): read Redis through the pool,
		// which slides as it reads.
		var sess *authcore.Session
		if sess, err = s.getex(ctx, id, key, ms); err == nil {
			s.tr.slides.mark(id, ttl, at)
		}
		return sess, err
	}
	if err != nil {
		return nil, err
	}
	if slide {
		s.tr.slides.mark(id, ttl, at)
	}
	return authcore.UnmarshalSession(id, data)
}

// testHookProofRead, set only by tests, runs in touchTracked between the
// proof check and the look-up.
var testHookProofRead func()

// held returns the cache entry of key if it was read through st in its
// current connection generation.
func (s *Store) held(st *stream, key string) (cacheEntry, bool) {
	e, ok := s.tr.cache.get(key)
	return e, ok && e.sid == st.id && e.gen == st.gen.Load()
}

// proven returns e, the held entry of key, when st holds proof for it, for
// a request that reached the store at at (see tracking.go): the answer to
// a command sent RevocationWindow before at or later. fresh says st held
// that proof before e was looked up. A session held with an older proof
// waits for such an answer (a heartbeat in flight, or one it sends)
// rather than reading Redis itself, and is looked up again after it; ok
// false means read Redis.
func (s *Store) proven(ctx context.Context, st *stream, key string, e cacheEntry, fresh bool, at int64) (cacheEntry, bool, error) {
	if fresh {
		return e, true, nil
	}
	if err := st.awaitProof(ctx, at-int64(RevocationWindow)); err != nil {
		if errors.Is(err, errNoStream) {
			return e, false, nil
		}
		return e, false, err
	}
	// An invalidation applied before the proof has dropped the entry.
	e, ok := s.held(st, key)
	return e, ok, nil
}

// GetSession implements authcore.Store with a plain GET through the pool:
// no slide, no cache, nothing tracked.
func (s *Store) GetSession(ctx context.Context, id string) (*authcore.Session, error) {
	data, err := s.client.Get(ctx, s.sessionKey(id)).Bytes()
	if err != nil {
		return nil, storeErr(err)
	}
	return authcore.UnmarshalSession(id, data)
}

// getex reads and slides a session with GETEX key PX ms.
func (s *Store) getex(ctx context.Context, id, key string, ms int64) (*authcore.Session, error) {
	cmd := goredis.NewStringCmd(ctx, "getex", key, "px", ms)
	_ = s.client.Process(ctx, cmd)
	data, err := cmd.Bytes()
	if err != nil {
		return nil, storeErr(err)
	}
	return authcore.UnmarshalSession(id, data)
}

// SaveSession implements authcore.Store with SET key value PX ttl XX: the
// server replaces the value only if the key still exists, atomically, so a
// save racing a logout can never bring the session back.
func (s *Store) SaveSession(ctx context.Context, sess *authcore.Session, ttl time.Duration) error {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return err
	}
	data, err := authcore.MarshalSession(sess)
	if err != nil {
		return err
	}
	key := s.sessionKey(sess.ID)
	cmd := goredis.NewStatusCmd(ctx, "set", key, data, "px", ms, "xx")
	_ = s.client.Process(ctx, cmd)
	s.forget(key)
	s.settle(ctx, cmd.Err() == nil)
	// SET ... XX answers nil (goredis.Nil) when the key did not exist.
	return storeErr(cmd.Err())
}

// DeleteSession implements authcore.Store with DEL; deleting a missing key
// is not an error in Redis either.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	key := s.sessionKey(id)
	n, err := s.client.Del(ctx, key).Result()
	s.forget(key)
	s.settle(ctx, err == nil && n > 0) // nothing to revoke when it was gone
	return storeErr(err)
}

// kvKey is "<prefix><key>": the caller's logical key, braces (hash tag)
// and all.
func (s *Store) kvKey(key string) string {
	return s.prefix + key
}

// Get implements authcore.Store with GET key. (Only session reads are
// ever served from memory, under invalidation tracking; no key-value read
// is.)
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	cmd := goredis.NewStringCmd(ctx, "get", s.kvKey(key))
	_ = s.client.Process(ctx, cmd)
	data, err := cmd.Bytes()
	if err != nil {
		return nil, storeErr(err)
	}
	return data, nil
}

// Set implements authcore.Store with SET key value PX ttl.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return err
	}
	cmd := goredis.NewStatusCmd(ctx, "set", s.kvKey(key), value, "px", ms)
	_ = s.client.Process(ctx, cmd)
	return storeErr(cmd.Err())
}

// SetNX implements authcore.Store with SET key value PX ttl NX; the server
// answers nil (false) when the key exists.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return false, err
	}
	cmd := goredis.NewBoolCmd(ctx, "set", s.kvKey(key), value, "px", ms, "nx")
	_ = s.client.Process(ctx, cmd)
	if err := cmd.Err(); err != nil {
		return false, storeErr(err)
	}
	return cmd.Val(), nil
}

// Incr implements authcore.Store with MULTI INCR key; PEXPIRE key ttl NX
// EXEC, written as one pipeline: one round trip, atomic on the server.
// PEXPIRE NX (Redis 7.0) sets the TTL only on a key without one, that is
// on the counter INCR has just created; later increments leave it alone.
// The key never exists without a TTL, as EXEC runs both or neither.
func (s *Store) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return 0, err
	}
	k := s.kvKey(key)
	var incr *goredis.IntCmd
	_, err = s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		incr = p.Incr(ctx, k)
		_ = p.Process(ctx, goredis.NewBoolCmd(ctx, "pexpire", k, ms, "nx"))
		return nil
	})
	if err != nil {
		return 0, storeErr(err)
	}
	return incr.Val(), nil
}

// Delete implements authcore.Store with DEL.
func (s *Store) Delete(ctx context.Context, key string) error {
	return storeErr(s.client.Del(ctx, s.kvKey(key)).Err())
}

// TakeOnce implements authcore.Store with GETDEL (Redis 6.2): the server
// reads and removes the key in one command, so exactly one of concurrent
// callers gets the value.
func (s *Store) TakeOnce(ctx context.Context, key string) ([]byte, error) {
	data, err := s.client.GetDel(ctx, s.kvKey(key)).Bytes()
	if err != nil {
		return nil, storeErr(err)
	}
	return data, nil
}

// swapScript sets KEYS[1] to ARGV[3] for ARGV[4] ms only if it holds
// ARGV[2] (or, when ARGV[1] is "0", does not exist): one atomic step on
// the server, one round trip.
var swapScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
	if cur then return 0 end
elseif cur ~= ARGV[2] then
	return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1`)

// Swap implements authcore.Store with a server-side script.
func (s *Store) Swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return false, err
	}
	exists := "1"
	if old == nil {
		exists, old = "0", []byte{}
	}
	n, err := swapScript.Run(ctx, s.client, []string{s.kvKey(key)}, exists, old, value, ms).Int()
	if err != nil {
		return false, storeErr(err)
	}
	return n == 1, nil
}

// AddMember implements authcore.Store: SADD and PEXPIRE in one MULTI/EXEC.
func (s *Store) AddMember(ctx context.Context, key, member string, ttl time.Duration) error {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return err
	}
	k := s.kvKey(key)
	_, err = s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.SAdd(ctx, k, member)
		p.PExpire(ctx, k, time.Duration(ms)*time.Millisecond)
		return nil
	})
	return storeErr(err)
}

// membersScript is SMEMBERS run as a script, which no client-side cache
// serves: a password change must see every session of the user, even one
// opened a millisecond ago on another node.
var membersScript = goredis.NewScript(`return redis.call('SMEMBERS', KEYS[1])`)

// Members implements authcore.Store: SMEMBERS, uncached.
func (s *Store) Members(ctx context.Context, key string) ([]string, error) {
	members, err := membersScript.Run(ctx, s.client, []string{s.kvKey(key)}).StringSlice()
	if err != nil {
		return nil, storeErr(err)
	}
	return members, nil
}

// RemoveMember implements authcore.Store with SREM.
func (s *Store) RemoveMember(ctx context.Context, key, member string) error {
	return storeErr(s.client.SRem(ctx, s.kvKey(key), member).Err())
}

// Ping implements authcore.Store; a failure satisfies
// errors.Is(err, authcore.ErrUnavailable).
func (s *Store) Ping(ctx context.Context) error {
	return storeErr(s.client.Ping(ctx).Err())
}

// Close stops the tracking connections and closes the client.
func (s *Store) Close() error {
	if s.tr != nil {
		s.tr.close()
	}
	return s.client.Close()
}

// Client defaults applied by ParseURL when the URL does not set them. They
// are short because a Redis that does not answer must turn into a quick 503,
// not a hung request: a refused connection fails within milliseconds, a
// black-holed host within about 2*DefaultDialTimeout, a hung server within
// about 2*DefaultReadTimeout. go-redis's own defaults (5s timeouts, 3
// command retries, 5 dial attempts) could hold a request for many seconds.
const (
	// DefaultDialTimeout bounds one connection attempt (URL: dial_timeout).
	DefaultDialTimeout = time.Second
	// DefaultReadTimeout bounds waiting for a reply (URL: read_timeout).
	// Every store command is O(1), so a healthy server answers far sooner.
	DefaultReadTimeout = 500 * time.Millisecond
	// DefaultWriteTimeout bounds sending a command (URL: write_timeout).
	DefaultWriteTimeout = 500 * time.Millisecond
	// DefaultMaxRetries is how often go-redis retries a failed command
	// (URL: max_retries; -1 disables retries). One retry absorbs a pooled
	// connection that died while idle (e.g. after a Redis restart) without
	// multiplying the wait during a real outage.
	DefaultMaxRetries = 1
	// DefaultDialerRetries is how many dial attempts one connection gets
	// (URL: dialer_retries, sentinel and cluster only); go-redis's default
	// of 5, 100ms apart, would add half a second to every command while
	// Redis is down.
	DefaultDialerRetries = 1

	// DefaultCacheEntries is how many sessions the session cache holds
	// (URL: client_cache_entries); beyond it those not used lately are
	// let go and read from Redis again when next used.
	DefaultCacheEntries = 100_000
)

// Options is what a store URL says: go-redis's options and the session
// cache's.
type Options struct {
	// Redis is for goredis.NewUniversalClient.
	Redis *goredis.UniversalOptions
	// SessionCache serves hot sessions from memory under Redis's
	// invalidation tracking (URL: client_cache, default true).
	SessionCache bool
	// CacheEntries bounds the session cache (URL: client_cache_entries,
	// default DefaultCacheEntries).
	CacheEntries int
}

// Parse reads a store URL. Supported forms:
//
//	redis://[[user]:pass@]host:port[/db]
//	rediss://[[user]:pass@]host:port[/db]                      TLS
//	redis-sentinel://[[user]:pass@]h1:p1,h2:p2[/db]?master=NAME
//	redis-cluster://[[user]:pass@]h1:p1,h2:p2                  no /db: Cluster has only db 0
//
// rediss-sentinel:// and rediss-cluster:// are the TLS forms of the last
// two. A missing port means 6379 (26379 for sentinels). For Sentinel the
// user info is the Redis master's credentials; sentinels that require
// their own auth take ?sentinel_username=&sentinel_password=. Further query
// options are go-redis's (dial_timeout=2s, pool_size=50, ...) and unknown
// ones are errors. Unset timeouts and retries get the Default* values above
// so an outage is noticed fast. Errors never contain the password.
//
// Every form serves hot sessions from memory, kept exact by Redis's
// invalidation tracking (see Store.TouchSession and tracking.go);
// ?client_cache=false turns that off, ?client_cache_entries=N sizes it.
func Parse(rawURL string) (*Options, error) {
	opts, err := parseURL(rawURL)
	if err != nil && passwordMayLeak(rawURL) {
		// The host part could not be told from the password, so any piece
		// of the URL an error would quote may be part of the password.
		return nil, errors.New("redis url: cannot tell the host from the password: percent-encode / ? # @ in the user name and password (%2F %3F %23 %40)")
	}
	return opts, err
}

// ParseURL is Parse for callers that want only go-redis's options (the
// CLI, which reads no session twice).
func ParseURL(rawURL string) (*goredis.UniversalOptions, error) {
	o, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	return o.Redis, nil
}

// passwordMayLeak reports whether raw looks like user info with an
// unescaped '/', '?' or '#': no '@' before the first of those, but one
// after it. Then what follows "://" up to that character is not a host.
func passwordMayLeak(raw string) bool {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		rest = raw
	}
	cut := strings.IndexAny(rest, "/?#")
	return cut >= 0 && !strings.Contains(rest[:cut], "@") && strings.Contains(rest[cut:], "@")
}

func parseURL(rawURL string) (*Options, error) {
	u, err := splitURL(rawURL)
	if err != nil {
		return nil, err
	}
	cache, entries, err := cacheOptions(u)
	if err != nil {
		return nil, err
	}
	var opts *goredis.UniversalOptions
	switch u.scheme {
	case "redis", "rediss":
		opts, err = parseSingle(u)
	case "redis-sentinel", "rediss-sentinel":
		opts, err = parseSentinel(u)
	case "redis-cluster", "rediss-cluster":
		opts, err = parseCluster(u)
	default:
		// splitURL only lets the schemes above through.
		err = fmt.Errorf("redis url: unsupported scheme %q", u.scheme)
	}
	if err != nil {
		return nil, err
	}
	applyDefaults(opts)
	return &Options{Redis: opts, SessionCache: cache, CacheEntries: entries}, nil
}

// cacheOptions takes the client-side cache options out of the URL's query
// (go-redis does not know them): whether to cache (default yes) and how
// many entries.
func cacheOptions(u *storeURL) (cache bool, entries int, err error) {
	cache, entries = true, DefaultCacheEntries
	if v, ok := u.query["client_cache"]; ok {
		u.query.Del("client_cache")
		if cache, err = strconv.ParseBool(v[0]); err != nil || len(v) != 1 {
			return false, 0, fmt.Errorf("redis url: client_cache must be true or false, got %q", strings.Join(v, ","))
		}
	}
	if v, ok := u.query["client_cache_entries"]; ok {
		u.query.Del("client_cache_entries")
		if entries, err = strconv.Atoi(v[0]); err != nil || len(v) != 1 || entries < 1 {
			return false, 0, fmt.Errorf("redis url: client_cache_entries must be a positive number, got %q", strings.Join(v, ","))
		}
	}
	return cache, entries, nil
}

// storeURL is a store URL taken apart by hand: url.Parse neither accepts
// the comma-separated host lists reliably nor keeps the password out of
// its error messages.
type storeURL struct {
	scheme   string
	tls      bool
	user     string
	password string
	hasUser  bool
	hosts    []string // host:port, default port filled in
	path     string   // "" or "/..."
	query    url.Values
}

func splitURL(raw string) (*storeURL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("redis url: empty (want redis://host:port/db)")
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("redis url: missing scheme (want redis://, rediss://, redis-sentinel:// or redis-cluster://)")
	}
	u := &storeURL{scheme: strings.ToLower(scheme)}
	defaultPort := "6379"
	switch u.scheme {
	case "redis", "redis-cluster":
	case "rediss", "rediss-cluster":
		u.tls = true
	case "redis-sentinel":
		defaultPort = "26379"
	case "rediss-sentinel":
		u.tls = true
		defaultPort = "26379"
	default:
		// Quote the scheme only when it looks like one: whatever precedes
		// "://" in a garbled URL might be a password.
		const want = "(want redis, rediss, redis-sentinel or redis-cluster)"
		if len(u.scheme) > 16 || strings.Trim(u.scheme, "abcdefghijklmnopqrstuvwxyz0123456789+-.") != "" {
			return nil, errors.New("redis url: unsupported scheme " + want)
		}
		return nil, fmt.Errorf("redis url: unsupported scheme %q %s", u.scheme, want)
	}

	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		var err error
		if u.user, u.password, err = splitUserInfo(authority[:i]); err != nil {
			return nil, err
		}
		u.hasUser = true
		authority = authority[i+1:]
	}

	if authority == "" {
		return nil, errors.New("redis url: missing host (want host:port)")
	}
	for _, h := range strings.Split(authority, ",") {
		hp, err := hostPort(h, defaultPort)
		if err != nil {
			return nil, err
		}
		u.hosts = append(u.hosts, hp)
	}

	rawQuery := ""
	u.path, rawQuery, _ = strings.Cut(tail, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		// Not echoed: the query may hold sentinel_password.
		return nil, errors.New("redis url: malformed query string")
	}
	u.query = q
	return u, nil
}

// splitUserInfo decodes "[user][:password]". Nothing of it goes into an
// error message.
func splitUserInfo(info string) (user, password string, err error) {
	user, password, _ = strings.Cut(info, ":")
	if user, err = url.PathUnescape(user); err != nil {
		return "", "", errors.New("redis url: bad percent-encoding in the user name")
	}
	if password, err = url.PathUnescape(password); err != nil {
		return "", "", errors.New("redis url: bad percent-encoding in the password")
	}
	return user, password, nil
}

// hostPort validates one "host[:port]" of the host list.
func hostPort(h, defaultPort string) (string, error) {
	if h == "" {
		return "", errors.New("redis url: empty host in host list (want host:port[,host:port])")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port: "host" or "[v6]".
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defaultPort
		if strings.ContainsAny(host, ":[]") {
			return "", fmt.Errorf("redis url: bad host %q (want host:port)", h)
		}
	}
	if host == "" {
		return "", fmt.Errorf("redis url: missing host name in %q (want host:port)", h)
	}
	if strings.ContainsAny(host, " \t/\\@%") {
		return "", fmt.Errorf("redis url: bad host name %q", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("redis url: bad port %q in %q (want 1-65535)", port, h)
	}
	return net.JoinHostPort(host, port), nil
}

// goredisURL rebuilds a URL for go-redis's parsers without the user info,
// so their error messages cannot contain the password.
func (u *storeURL) goredisURL(host, path string) string {
	scheme := "redis"
	if u.tls {
		scheme = "rediss"
	}
	s := scheme + "://" + host + path
	if len(u.query) > 0 {
		s += "?" + u.query.Encode()
	}
	return s
}

// goredisErr restates a go-redis parse error in this package's words.
func goredisErr(err error) error {
	return fmt.Errorf("redis url: %s", strings.TrimPrefix(err.Error(), "redis: "))
}

func parseSingle(u *storeURL) (*goredis.UniversalOptions, error) {
	if len(u.hosts) != 1 {
		return nil, fmt.Errorf("redis url: %s:// takes one host, got %d (use redis-sentinel:// or redis-cluster:// for several)", u.scheme, len(u.hosts))
	}
	o, err := goredis.ParseURL(u.goredisURL(u.hosts[0], u.path))
	if err != nil {
		return nil, goredisErr(err)
	}
	opts := universal(o)
	opts.Addrs = []string{o.Addr}
	u.setCredentials(opts)
	return opts, nil
}

func parseSentinel(u *storeURL) (*goredis.UniversalOptions, error) {
	master := u.query.Get("master")
	if master == "" {
		master = u.query.Get("master_name")
	}
	if master == "" {
		return nil, errors.New("redis url: redis-sentinel:// needs the master name (add ?master=NAME)")
	}
	u.query.Del("master")
	u.query.Set("master_name", master)
	// go-redis only takes sentinel credentials from the user info, which
	// here belongs to the master; so they travel as query options.
	sentinelUser, sentinelPass := u.query.Get("sentinel_username"), u.query.Get("sentinel_password")
	u.query.Del("sentinel_username")
	u.query.Del("sentinel_password")
	for _, h := range u.hosts[1:] {
		u.query.Add("addr", h)
	}
	o, err := goredis.ParseFailoverURL(u.goredisURL(u.hosts[0], u.path))
	if err != nil {
		return nil, goredisErr(err)
	}
	if o.UseDisconnectedReplicas {
		return nil, errors.New("redis url: use_disconnected_replicas is not supported")
	}
	opts := universal(o)
	opts.Addrs, opts.ReadOnly = o.SentinelAddrs, o.ReplicaOnly
	opts.SentinelUsername, opts.SentinelPassword = sentinelUser, sentinelPass
	u.setCredentials(opts)
	return opts, nil
}

func parseCluster(u *storeURL) (*goredis.UniversalOptions, error) {
	if p := strings.Trim(u.path, "/"); p != "" && p != "0" {
		return nil, fmt.Errorf("redis url: %s:// has no database number (Redis Cluster only has db 0); remove the /%s", u.scheme, p)
	}
	for _, h := range u.hosts[1:] {
		u.query.Add("addr", h)
	}
	o, err := goredis.ParseClusterURL(u.goredisURL(u.hosts[0], ""))
	if err != nil {
		return nil, goredisErr(err)
	}
	opts := universal(o)
	// Without it a single seed address would make NewUniversalClient
	// return a plain client, which breaks on MOVED replies.
	opts.IsClusterMode = true
	u.setCredentials(opts)
	return opts, nil
}

// universal fills UniversalOptions once from what go-redis parsed (its
// Options, FailoverOptions or ClusterOptions): every field of the same
// name and type, so an option go-redis learns to parse reaches the client
// with no code here. The parse functions set the few fields named
// otherwise (the addresses, ReplicaOnly).
func universal(parsed any) *goredis.UniversalOptions {
	opts := &goredis.UniversalOptions{}
	dst, src := reflect.ValueOf(opts).Elem(), reflect.ValueOf(parsed).Elem()
	for i := range src.NumField() {
		f := src.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if d := dst.FieldByName(f.Name); d.IsValid() && d.CanSet() && d.Type() == f.Type {
			d.Set(src.Field(i))
		}
	}
	return opts
}

// setCredentials puts the URL's user info on opts: it was kept out of the
// URL go-redis parsed, so that no go-redis error can quote the password.
func (u *storeURL) setCredentials(opts *goredis.UniversalOptions) {
	if u.hasUser {
		opts.Username, opts.Password = u.user, u.password
	}
}

// applyDefaults fills in the Default* values where the URL left go-redis's
// zero ("use the library default") in place.
func applyDefaults(o *goredis.UniversalOptions) {
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = DefaultDialerRetries
	}
}
