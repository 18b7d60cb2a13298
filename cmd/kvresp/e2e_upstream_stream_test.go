package main_test

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cutShortRedis is a fake upstream that answers a streamed GET (MULTI, PTTL,
// GET, EXEC) with the header of a value of size bytes, then sends only sent
// of them and closes the connection: an upstream dying mid-transfer.
func cutShortRedis(t *testing.T, size, sent int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for range 4 {
					l, err := r.ReadString('\n')
					if err != nil || !strings.HasPrefix(l, "*") {
						return
					}
					n, _ := strconv.Atoi(strings.TrimSpace(l[1:]))
					for range 2 * n {
						if _, err := r.ReadString('\n'); err != nil {
							return
						}
					}
				}
				c.Write([]byte("+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:-1\r\n$" + strconv.Itoa(size) + "\r\n"))
				c.Write(make([]byte, sent))
			}()
		}
	}()
	return ln.Addr().String()
}

// TestE2EUpstreamCutShort: a value read through is sent to the client while
// it arrives (cut-through); when the upstream dies mid-value, the client's
// connection is closed before the reply is complete, so no client can take
// part of a value for all of it, and nothing is admitted.
func TestE2EUpstreamCutShort(t *testing.T) {
	skipOnRedis(t, "no upstream")
	const size = 4 << 20
	addr := cutShortRedis(t, size, 1<<20)
	s := startServer(t, serverOptions{extra: upstreamArgs("redis://"+addr, "read-through", "--tier-order", "dram,upstream")})
	rc := s.resp(t)
	rc.send("GET", "chunk")
	if l := rc.line(); l != "$"+strconv.Itoa(size)+"\r\n" {
		t.Fatalf("GET: header %q", l)
	}
	_ = rc.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, rc.r)
	if err != nil && !isConnReset(err) {
		t.Fatalf("after %d bytes: %v, want the connection closed", n, err)
	}
	if n >= size+2 {
		t.Fatalf("the client got %d bytes: a whole reply from a broken transfer", n)
	}
	// The failure opened the breaker: the next GET is a local miss.
	rc = s.resp(t)
	rc.do("$-1\r\n", "GET", "chunk")
	in := rc.info("upstream")
	if infoInt(t, in, "upstream_errors") != 1 || infoInt(t, in, "upstream_admitted") != 0 || in["upstream_breaker"] == "closed" {
		t.Fatalf("INFO upstream: %v", in)
	}
}
