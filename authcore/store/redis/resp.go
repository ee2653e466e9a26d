package redis

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// The tracking connection (tracking.go) speaks RESP3 itself rather than
// through go-redis: it must read continuously, interleave Redis's
// invalidation pushes with replies in the order the server sent them, and
// pipeline commands from many requests. These are the few frame types it
// needs; anything else is read and passed over, so an unexpected reply
// never desynchronises the connection.

// respError is an error reply ("-ERR ...", "!..." in RESP3).
type respError string

func (e respError) Error() string { return string(e) }

// respPush is a RESP3 push frame (">"): out-of-band data such as
// ["invalidate", [keys...]], never the reply to a command.
type respPush []any

// maxBulk bounds one bulk string from Redis. Sessions are a few hundred
// bytes; anything near this is not ours.
const maxBulk = 16 << 20

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

// readFrame reads one RESP2/RESP3 frame. Bulk strings come back as
// []byte, simple strings as string, integers as int64, nulls as nil,
// aggregates as []any (maps flattened), errors as respError and pushes as
// respPush. Attributes ("|") are read and dropped.
func readFrame(r *bufio.Reader) (any, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, errors.New("redis tracking: empty frame")
	}
	body := string(line[1:])
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return respError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '_':
		return nil, nil
	case ',', '(', '#':
		return body, nil
	case '$', '=', '!':
		n, err := strconv.Atoi(body)
		if err != nil || n > maxBulk {
			return nil, fmt.Errorf("redis tracking: bad bulk length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		buf = buf[:n]
		if line[0] == '!' {
			return respError(buf), nil
		}
		return buf, nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(body)
		if err != nil || n > 1<<20 {
			return nil, fmt.Errorf("redis tracking: bad aggregate length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		items := make([]any, n)
		for i := range items {
			if items[i], err = readFrame(r); err != nil {
				return nil, err
			}
		}
		switch line[0] {
		case '>':
			return respPush(items), nil
		case '|':
			// An attribute precedes the frame it annotates.
			return readFrame(r)
		}
		return items, nil
	}
	return nil, fmt.Errorf("redis tracking: unknown frame type %q", line[0])
}

// readLine reads up to CRLF and returns the line without it.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("redis tracking: frame header too long")
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errors.New("redis tracking: malformed frame")
	}
	return line[:len(line)-2], nil
}
