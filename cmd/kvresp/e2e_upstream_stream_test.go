package main_test

import (
	"io"
	"strconv"
	"testing"
	"time"

	"kvresp/internal/redistest"
)

// TestE2EUpstreamCutShort: a value read through is sent to the client while
// it arrives (cut-through); when the upstream dies mid-value, the client's
// connection is closed before the reply is complete, so no client can take
// part of a value for all of it, and nothing is admitted.
func TestE2EUpstreamCutShort(t *testing.T) {
	skipOnRedis(t, "no upstream")
	const size = 4 << 20
	// The upstream sends the header of a value of size bytes, then 1 MiB of
	// it, and closes the connection: it dies mid-transfer.
	header := "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:-1\r\n$" + strconv.Itoa(size) + "\r\n"
	reply := append([]byte(header), make([]byte, size)...)
	addr := redistest.FakeStreamedGet(t, reply, len(header)+1<<20)
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

// TestE2EUpstreamCutShortSmall: a small value is sent only once whole, so
// when its transfer breaks nothing has gone out: the GET is a miss, as a
// failed upstream read is, and the client's connection stays open.
func TestE2EUpstreamCutShortSmall(t *testing.T) {
	skipOnRedis(t, "no upstream")
	const size = 1 << 10
	header := "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:-1\r\n$" + strconv.Itoa(size) + "\r\n"
	reply := append([]byte(header), make([]byte, size)...)
	addr := redistest.FakeStreamedGet(t, reply, len(header)+size/2)
	s := startServer(t, serverOptions{extra: upstreamArgs("redis://"+addr, "read-through", "--tier-order", "dram,upstream")})
	rc := s.resp(t)
	rc.do("$-1\r\n", "GET", "chunk")
	rc.do("+PONG\r\n", "PING")
}
