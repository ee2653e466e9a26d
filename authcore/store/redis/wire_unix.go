//go:build unix

package redis

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// socketOf returns the descriptor of a plain socket connection, for pumps,
// or -1 for any other connection.
func socketOf(conn net.Conn) (int, syscall.RawConn) {
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return -1, nil
	}
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, nil
	}
	fd := -1
	if err := raw.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return -1, nil
	}
	return fd, raw
}

// readNow reads what fd holds without waiting (the runtime keeps its
// sockets non-blocking): n 0 and no error when it holds nothing.
func readNow(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, p)
		switch {
		case err == nil && n == 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return 0, nil
		}
		return 0, err
	}
}
