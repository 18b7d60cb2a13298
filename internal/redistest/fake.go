package redistest

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
)

// FakeStreamedGet starts a fake Redis on loopback for what a real server
// will not do on demand: reply to a streamed GET with given bytes, or die
// partway through a value. On each connection it reads the four commands of
// a streamed GET (MULTI, PTTL, GET, EXEC) and writes reply: when cut >= 0,
// only its first cut bytes, then closes the connection (an upstream dying
// mid-transfer); when cut < 0, all of it, keeping the connection open until
// the client closes it. It returns the address; the listener closes when
// the test ends.
func FakeStreamedGet(tb testing.TB, reply []byte, cut int) (addr string) {
	tb.Helper()
	if cut > len(reply) {
		tb.Fatalf("FakeStreamedGet: cut %d is beyond the reply's %d bytes", cut, len(reply))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveStreamedGet(c, reply, cut)
		}
	}()
	return ln.Addr().String()
}

func serveStreamedGet(c net.Conn, reply []byte, cut int) {
	defer c.Close()
	r := bufio.NewReader(c)
	for range 4 {
		l, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, "*") {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(l[1:]))
		if err != nil {
			return
		}
		for range 2 * n { // each argument is a $len line and its bytes
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
		}
	}
	if cut >= 0 {
		c.Write(reply[:cut])
		return
	}
	c.Write(reply)
	one := make([]byte, 1)
	c.Read(one) // returns once the client goes
}
