package redis

import (
	"bufio"
	"bytes"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore/store/storetest"
)

// frames are RESP2/RESP3 frames as Redis sends them, with what parseFrame
// makes of each.
var frames = []struct {
	wire string
	want any
}{
	{"+PONG\r\n", "PONG"},
	{"-ERR unknown command\r\n", respError("ERR unknown command")},
	{":42\r\n", int64(42)},
	{":-7\r\n", int64(-7)},
	{"_\r\n", nil},
	{"$5\r\nhello\r\n", []byte("hello")},
	{"$0\r\n\r\n", []byte{}},
	{"$-1\r\n", nil},
	{"$4\r\na\r\nb\r\n", []byte("a\r\nb")},
	{"!9\r\nERR oops!\r\n", respError("ERR oops!")},
	{"=8\r\ntxt:abcd\r\n", []byte("txt:abcd")},
	{",3.14\r\n", "3.14"},
	{"#t\r\n", "t"},
	{"(12345678901234567890\r\n", "12345678901234567890"},
	{"*0\r\n", []any{}},
	{"*-1\r\n", nil},
	{"*3\r\n$6\r\nmaster\r\n:1234\r\n*0\r\n", []any{[]byte("master"), int64(1234), []any{}}},
	{"%1\r\n+a\r\n:1\r\n", []any{"a", int64(1)}},
	{"~2\r\n+x\r\n+y\r\n", []any{"x", "y"}},
	{">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nk:1\r\n", respPush{[]byte("invalidate"), []any{[]byte("k:1")}}},
	{">2\r\n$10\r\ninvalidate\r\n_\r\n", respPush{[]byte("invalidate"), nil}},
	{"|1\r\n+key\r\n+val\r\n:5\r\n", int64(5)},
}

// Every frame parses whole, and every prefix of it is "not complete yet",
// never an error or a wrong frame: the connection is read in pieces that
// end anywhere.
func TestParseFrame(t *testing.T) {
	for _, fr := range frames {
		b := []byte(fr.wire + "+NEXT\r\n")
		f, n, err := parseFrame(b)
		if err != nil || n != len(fr.wire) || !reflect.DeepEqual(f, fr.want) {
			t.Errorf("%q: got %#v, %d, %v; want %#v, %d", fr.wire, f, n, err, fr.want, len(fr.wire))
		}
		for k := range len(fr.wire) {
			if f, n, err := parseFrame(b[:k]); f != nil || n != 0 || err != nil {
				t.Errorf("%q cut at %d: got %#v, %d, %v; want not complete", fr.wire, k, f, n, err)
			}
		}
	}
}

// A bulk string is copied out of the read buffer, which is reused.
func TestParseFrameCopiesBulk(t *testing.T) {
	b := []byte("$3\r\nabc\r\n")
	f, _, _ := parseFrame(b)
	copy(b, "XXXXXXXXX")
	if string(f.([]byte)) != "abc" {
		t.Fatalf("the frame changed with the buffer: %q", f)
	}
}

func TestParseFrameRefusesGarbage(t *testing.T) {
	for _, bad := range []string{
		"\r\n",              // empty frame
		"+PONG\n",           // no CR
		"?what\r\n",         // unknown type
		":x\r\n",            // bad integer
		"$x\r\n",            // bad length
		"$99999999999\r\n",  // too long
		"$3\r\nabcde\r\n",   // data longer than said
		"*x\r\n",            // bad aggregate length
		"*2\r\n+a\r\n?\r\n", // bad item
		"*9999999\r\n",      // too many items
		strings.Repeat("*1\r\n", 40) + "+deep\r\n", // nested too deep
		strings.Repeat("|0\r\n", 40) + "+deep\r\n", // attributes chained too deep
		"+" + strings.Repeat("a", maxLine+1),       // header line without end
	} {
		if _, n, err := parseFrame([]byte(bad)); err == nil {
			t.Errorf("%q: parsed (n=%d), want an error", bad, n)
		}
	}
}

// FuzzParseFrame: no input panics; a frame that parses whole parses the
// same from exactly its bytes, and none of its prefixes parses.
func FuzzParseFrame(f *testing.F) {
	for _, fr := range frames {
		f.Add([]byte(fr.wire))
	}
	f.Add([]byte("*2\r\n*1\r\n$1\r\na\r\n>1\r\n_\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, n, err := parseFrame(b)
		if err != nil || n == 0 {
			return
		}
		if n > len(b) {
			t.Fatalf("parsed %d bytes of %d", n, len(b))
		}
		again, m, err := parseFrame(b[:n])
		if err != nil || m != n || !reflect.DeepEqual(again, got) {
			t.Fatalf("the frame's own bytes parse as %#v, %d, %v; whole: %#v, %d", again, m, err, got, n)
		}
		for k := range n {
			if f, m, err := parseFrame(b[:k]); f != nil || m != 0 || err != nil {
				t.Fatalf("prefix %d of a %d-byte frame: %#v, %d, %v", k, n, f, m, err)
			}
		}
	})
}

// A wire on a real connection reads without blocking: nothing there is no
// error, and a reply larger than one read arrives in pieces that frame()
// puts together.
func TestWireDrainsWithoutBlocking(t *testing.T) {
	srv := storetest.StartRedis(t)
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := newWire(conn)
	if w.fd < 0 {
		t.Skip("no descriptor for pumps on this platform")
	}
	if err := w.drain(); err != nil {
		t.Fatalf("drain with nothing to read: %v", err)
	}
	if len(w.buf) != 0 {
		t.Fatalf("read %d bytes from a silent server", len(w.buf))
	}
	big := strings.Repeat("v", 3*readChunk+17)
	bw := bufio.NewWriter(conn)
	writeCommand(bw, "SET", "wire:big", big)
	writeCommand(bw, "GET", "wire:big")
	writeCommand(bw, "PING")
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []any
	for deadline := time.Now().Add(30 * time.Second); len(got) < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 3 replies after 30s", len(got))
		}
		if err := w.drain(); err != nil {
			t.Fatal(err)
		}
		for {
			f, ok, err := w.frame()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, f)
		}
		time.Sleep(time.Millisecond)
	}
	if got[0] != "OK" || !bytes.Equal(got[1].([]byte), []byte(big)) || got[2] != "PONG" {
		t.Fatalf("replies %q, %d bytes, %q", got[0], len(got[1].([]byte)), got[2])
	}
	w.closed = true
	if err := w.drain(); err != errWireClosed {
		t.Fatalf("drain of a closed wire: %v, want errWireClosed", err)
	}
}
