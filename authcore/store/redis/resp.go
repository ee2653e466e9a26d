package redis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// The tracking connection (tracking.go) speaks RESP3 itself rather than
// through go-redis: it must read continuously, interleave Redis's
// invalidation pushes with replies in the order the server sent them, and
// pipeline commands from many requests. These are the few frame types it
// needs; anything else is read and passed over, so an unexpected reply
// never desynchronises the connection.
//
// Frames are parsed from the bytes read so far (parseFrame), not from a
// blocking reader: the connection is read by whichever goroutine gets to
// it first (tracking.go, pump), and a frame that has not fully arrived is
// left for the next read.

// respError is an error reply ("-ERR ...", "!..." in RESP3).
type respError string

func (e respError) Error() string { return string(e) }

// respPush is a RESP3 push frame (">"): out-of-band data such as
// ["invalidate", [keys...]], never the reply to a command.
type respPush []any

const (
	// maxBulk bounds one bulk string from Redis. Sessions are a few
	// hundred bytes; anything near this is not ours.
	maxBulk = 16 << 20
	// maxAggregate bounds the items of one aggregate.
	maxAggregate = 1 << 20
	// maxDepth bounds the nesting of aggregates.
	maxDepth = 32
	// maxLine bounds a frame's header line (type, length or simple value).
	maxLine = 64 << 10
)

// writeCommand appends args as a RESP array of bulk strings.
func writeCommand(w *bufio.Writer, args ...string) {
	w.WriteByte('*')
	w.WriteString(strconv.Itoa(len(args)))
	w.WriteString("\r\n")
	for _, a := range args {
		w.WriteByte('$')
		w.WriteString(strconv.Itoa(len(a)))
		w.WriteString("\r\n")
		w.WriteString(a)
		w.WriteString("\r\n")
	}
}

// parseFrame parses the RESP2/RESP3 frame at the start of b and returns it
// with its length in bytes; n is 0 (and err nil) when b ends before the
// frame does. Bulk strings come back as []byte (copied out of b), simple
// strings as string, integers as int64, nulls as nil, aggregates as []any
// (maps flattened), errors as respError and pushes as respPush.
// Attributes ("|") are read and dropped.
func parseFrame(b []byte) (f any, n int, err error) {
	return parseAt(b, 0, 0)
}

// parseAt parses the frame at b[off:]; next is the offset after it, 0 when
// the frame is not complete yet.
func parseAt(b []byte, off, depth int) (f any, next int, err error) {
	i := bytes.IndexByte(b[off:], '\n')
	if i < 0 {
		if len(b)-off > maxLine {
			return nil, 0, errors.New("redis tracking: frame header too long")
		}
		return nil, 0, nil
	}
	end := off + i + 1
	if i < 1 || b[end-2] != '\r' {
		return nil, 0, errors.New("redis tracking: malformed frame")
	}
	line := b[off : end-2]
	if len(line) == 0 {
		return nil, 0, errors.New("redis tracking: empty frame")
	}
	body := line[1:]
	switch line[0] {
	case '+', ',', '(', '#':
		return string(body), end, nil
	case '-':
		return respError(body), end, nil
	case ':':
		v, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("redis tracking: bad integer %q", body)
		}
		return v, end, nil
	case '_':
		return nil, end, nil
	case '$', '=', '!':
		n, err := strconv.Atoi(string(body))
		if err != nil || n > maxBulk {
			return nil, 0, fmt.Errorf("redis tracking: bad bulk length %q", body)
		}
		if n < 0 {
			return nil, end, nil
		}
		if len(b)-end < n+2 {
			return nil, 0, nil
		}
		if b[end+n] != '\r' || b[end+n+1] != '\n' {
			return nil, 0, errors.New("redis tracking: malformed bulk string")
		}
		data := bytes.Clone(b[end : end+n])
		if data == nil {
			data = []byte{}
		}
		if line[0] == '!' {
			return respError(data), end + n + 2, nil
		}
		return data, end + n + 2, nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(string(body))
		if err != nil || n > maxAggregate {
			return nil, 0, fmt.Errorf("redis tracking: bad aggregate length %q", body)
		}
		if n < 0 {
			return nil, end, nil
		}
		if depth >= maxDepth {
			return nil, 0, errors.New("redis tracking: aggregates nested too deep")
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		// Every item takes at least 3 bytes: not there yet, without
		// allocating for a length that has not arrived.
		if len(b)-end < 3*n {
			return nil, 0, nil
		}
		items := make([]any, n)
		next = end
		for k := range items {
			if items[k], next, err = parseAt(b, next, depth+1); next == 0 || err != nil {
				return nil, 0, err
			}
		}
		switch line[0] {
		case '>':
			return respPush(items), next, nil
		case '|':
			// An attribute precedes the frame it annotates. It counts as a
			// level of nesting, so that a run of attributes cannot recurse
			// without bound either.
			return parseAt(b, next, depth+1)
		}
		return items, next, nil
	}
	return nil, 0, fmt.Errorf("redis tracking: unknown frame type %q", line[0])
}
