// Command sessions fills a Redis with live authgate sessions for the load
// harness (bench/load/run.sh), measures what they cost in Redis memory, and
// can mint ACCESS tokens for some of them.
//
// The sessions are authcore.Session values encoded by
// authcore.MarshalSession and written under the Redis store's key layout
// (<prefix>s:{<id>}, with a TTL), in pipelined batches so a million take
// seconds. The first session of each fill goes through the real store
// (authcore/store/redis CreateSession) and the tool checks that it landed
// under the same key the bulk writes use, and at the end reads a bulk-written
// session back through the store's TouchSession: if the store's layout or
// encoding ever changes, this tool fails instead of measuring something else.
//
//	sessions -addr 127.0.0.1:6390 -n 100000 -measure
//	sessions -addr 127.0.0.1:6390 -n 1000 -tokens t.txt -ntokens 1000 -key <base64>
//	sessions -addr 127.0.0.1:6390 -n 100000 -tokens t.txt -ntokens 100000 -key <base64> -ids ids.txt
//	sessions -addr 127.0.0.1:6390 -unlink ids.txt
//
// -ids writes the ids of the fill's sessions, one a line, and -unlink
// deletes the sessions whose ids a file lists (pipelined UNLINK), so a run
// can remove a fill it no longer wants without touching other sessions.
package main

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/authcore"
	redisstore "github.com/authgate/authgate/authcore/store/redis"
)

func main() {
	addr := flag.String("addr", "", "Redis host:port (required)")
	db := flag.Int("db", 0, "Redis database")
	prefix := flag.String("prefix", "authgate:", "store key prefix (authgate's key_prefix)")
	n := flag.Int("n", 1000, "sessions to add")
	ttl := flag.Duration("ttl", time.Hour, "session TTL (idle window)")
	batch := flag.Int("batch", 1000, "commands per pipeline")
	measure := flag.Bool("measure", false, "report Redis memory per session for this fill")
	sample := flag.Int("sample", 1000, "keys sampled for MEMORY USAGE")
	tokens := flag.String("tokens", "", "write ACCESS tokens for random sessions of this fill to this file, one a line")
	ntokens := flag.Int("ntokens", 1000, "tokens to write with -tokens (distinct sessions)")
	key := flag.String("key", "", "base64 HS256 signing key (authgate's signing_key), for -tokens")
	issuer := flag.String("issuer", "authgate", "token issuer (authgate's issuer)")
	idsOut := flag.String("ids", "", "write the ids of this fill's sessions to this file, one a line")
	unlink := flag.String("unlink", "", "delete the sessions whose ids this file lists (one a line), then exit; no fill")
	flag.Parse()
	if *addr == "" || (*unlink == "" && *n < 1) {
		fail(fmt.Errorf("need -addr, and -n >= 1 or -unlink"))
	}
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: *addr, DB: *db, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	defer rdb.Close()
	sessionKey := func(id string) string { return *prefix + "s:{" + id + "}" }
	if *unlink != "" {
		if err := unlinkSessions(ctx, rdb, *unlink, sessionKey, *batch); err != nil {
			fail(err)
		}
		return
	}
	// The store owns its own client (Store.Close closes it).
	store := redisstore.New(goredis.NewClient(&goredis.Options{Addr: *addr, DB: *db}), *prefix)
	defer store.Close()

	ms := ttl.Milliseconds()
	now := time.Now()

	usedBefore := usedMemory(ctx, rdb)
	start := time.Now()
	ids := make([]string, *n)
	for i := range ids {
		ids[i] = newID()
	}

	// First session through the store itself, then check the key layout.
	if err := store.CreateSession(ctx, makeSession(0, ids[0], now), *ttl); err != nil {
		fail(fmt.Errorf("store.CreateSession: %w", err))
	}
	if c, err := rdb.Exists(ctx, sessionKey(ids[0])).Result(); err != nil || c != 1 {
		fail(fmt.Errorf("the store did not write %q (err %v): its key layout changed, update this tool", sessionKey(ids[0]), err))
	}

	var valueBytes, keyBytes int
	for lo := 1; lo < *n; lo += *batch {
		hi := min(lo+*batch, *n)
		pipe := rdb.Pipeline()
		for i := lo; i < hi; i++ {
			data, err := authcore.MarshalSession(makeSession(i, ids[i], now))
			if err != nil {
				fail(err)
			}
			k := sessionKey(ids[i])
			valueBytes += len(data)
			keyBytes += len(k)
			pipe.Process(ctx, goredis.NewStatusCmd(ctx, "set", k, data, "px", ms))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			fail(fmt.Errorf("pipelined SET: %w", err))
		}
	}
	took := time.Since(start)
	fmt.Printf("  added %d sessions in %.2fs (%.0f/s), TTL %s\n", *n, took.Seconds(), float64(*n)/took.Seconds(), *ttl)

	// Read one bulk-written session back through the store.
	if *n > 1 {
		j := 1 + rand.IntN(*n-1)
		got, err := store.TouchSession(ctx, ids[j], *ttl)
		want := makeSession(j, ids[j], now)
		if err != nil || got.CredentialsID != want.CredentialsID || got.Identity != want.Identity ||
			got.Expires.UnixMilli() != want.Expires.UnixMilli() || got.StepUpMethod != want.StepUpMethod {
			fail(fmt.Errorf("store.TouchSession does not read back a bulk-written session (err %v): update this tool", err))
		}
	}

	if *measure {
		time.Sleep(500 * time.Millisecond) // let client buffers drain before reading used_memory
		usedAfter := usedMemory(ctx, rdb)
		k := min(*sample, *n)
		pipe := rdb.Pipeline()
		cmds := make([]*goredis.IntCmd, k)
		for i, j := range rand.Perm(*n)[:k] {
			cmds[i] = pipe.MemoryUsage(ctx, sessionKey(ids[j]), 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			fail(fmt.Errorf("MEMORY USAGE: %w", err))
		}
		var sum int64
		for _, c := range cmds {
			sum += c.Val()
		}
		if *n > 1 {
			fmt.Printf("  stored record: key %.1f B + value %.1f B (average)\n",
				float64(keyBytes)/float64(*n-1), float64(valueBytes)/float64(*n-1))
		}
		fmt.Printf("  MEMORY USAGE, average of %d keys: %.1f B per session (target <= 512)\n", k, float64(sum)/float64(k))
		fmt.Printf("  INFO used_memory delta / N: %.1f B per session (%d -> %d bytes; includes dict and expires-table growth)\n",
			float64(usedAfter-usedBefore)/float64(*n), usedBefore, usedAfter)
	}

	if *idsOut != "" {
		if err := writeLines(*idsOut, ids); err != nil {
			fail(err)
		}
	}
	if *tokens != "" {
		if err := writeTokens(*tokens, *ntokens, *key, *issuer, ids, now); err != nil {
			fail(err)
		}
	}
}

// makeSession is session i of a fill: a mix like real traffic (mostly USER
// credentials, half consumer and half corporate identities, one in five
// stepped up by OTP), with 7-digit ids.
func makeSession(i int, id string, now time.Time) *authcore.Session {
	s := &authcore.Session{
		ID:              id,
		CredentialsID:   strconv.Itoa(1000000 + i),
		CredentialsType: authcore.CredentialsUser,
		Created:         now.Add(-time.Duration(i%3600) * time.Second),
		LastUsed:        now,
	}
	s.Expires = s.Created.Add(12 * time.Hour)
	if i%5 == 0 {
		s.CredentialsType = authcore.CredentialsRoot
		s.SteppedUp = now.Add(-time.Duration(i%600) * time.Second)
		s.StepUpMethod = authcore.StepUpOTP
	}
	if i%2 == 0 {
		s.Identity = authcore.IdentityRef{Type: authcore.IdentityConsumer, ID: strconv.Itoa(2000000 + i)}
	} else {
		s.Identity = authcore.IdentityRef{Type: authcore.IdentityCorporate, ID: strconv.Itoa(3000000 + i/10)}
	}
	return s
}

// writeTokens writes ACCESS tokens, with the claims authcore's gateway
// puts in them, for k distinct random sessions of the fill.
func writeTokens(path string, k int, key64, issuer string, ids []string, now time.Time) error {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(key64))
	if err != nil {
		return fmt.Errorf("-key: not base64: %w", err)
	}
	key, err := authcore.NewHMACKey(raw)
	if err != nil {
		return err
	}
	tokens := authcore.NewTokens(issuer, key, time.Now)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	k = min(k, len(ids))
	for _, j := range rand.Perm(len(ids))[:k] {
		s := makeSession(j, ids[j], now)
		amr, authTime := s.AuthMethods()
		c := &authcore.Claims{
			SessionID: s.ID, TokenType: authcore.TokenAccess, CredentialsType: s.CredentialsType,
			Identity: s.Identity, AMR: amr, AuthTime: authTime.Unix(),
		}
		c.Subject = s.CredentialsID
		c.IssuedAt = jwt.NewNumericDate(now)
		c.NotBefore = jwt.NewNumericDate(now)
		c.ExpiresAt = jwt.NewNumericDate(s.Expires)
		tok, err := tokens.Issue(c)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, tok)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Printf("  wrote %d ACCESS tokens for random sessions of this fill\n", k)
	return f.Close()
}

// writeLines writes lines to path, one a line.
func writeLines(path string, lines []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// unlinkSessions deletes the sessions whose ids path lists, batch per
// pipeline, and reports how many existed.
func unlinkSessions(ctx context.Context, rdb *goredis.Client, path string, key func(string) string, batch int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	start := time.Now()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if id := strings.TrimSpace(sc.Text()); id != "" {
			ids = append(ids, id)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	var gone int64
	for lo := 0; lo < len(ids); lo += batch {
		hi := min(lo+batch, len(ids))
		pipe := rdb.Pipeline()
		cmds := make([]*goredis.IntCmd, 0, hi-lo)
		for _, id := range ids[lo:hi] {
			cmds = append(cmds, pipe.Unlink(ctx, key(id)))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("pipelined UNLINK: %w", err)
		}
		for _, c := range cmds {
			gone += c.Val()
		}
	}
	fmt.Printf("  removed %d of %d listed sessions in %.2fs\n", gone, len(ids), time.Since(start).Seconds())
	return nil
}

func usedMemory(ctx context.Context, rdb *goredis.Client) int64 {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		fail(fmt.Errorf("INFO memory: %w", err))
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	fail(fmt.Errorf("INFO memory: no used_memory"))
	return 0
}

// newID is authcore's session id: 128 random bits, base64url, 22 chars.
func newID() string {
	b := make([]byte, 16)
	_, _ = crand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sessions:", err)
	os.Exit(1)
}
