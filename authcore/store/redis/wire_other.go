//go:build !unix

package redis

import (
	"errors"
	"net"
	"syscall"
)

// socketOf: pumps read descriptors on Unix only; elsewhere the reader
// goroutine reads every connection.
func socketOf(net.Conn) (int, syscall.RawConn) { return -1, nil }

func readNow(int, []byte) (int, error) { return 0, errors.New("redis tracking: no pumps here") }
