package redisup

import (
	"errors"
	"net"
	"syscall"
)

// socketIdle peeks at nc's socket without blocking: true when there is
// nothing to read yet; false at end of file, on an error or on bytes
// nobody asked for. A read with a deadline in the past cannot tell: Go
// reports the deadline without trying the socket.
func socketIdle(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	idle := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		idle = errors.Is(err, syscall.EAGAIN)
		return true
	})
	return err == nil && idle
}
