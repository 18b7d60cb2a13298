//go:build !linux

package redisup

import "net"

// socketIdle cannot peek here: an idle connection is taken to be usable.
func socketIdle(net.Conn) bool { return true }
