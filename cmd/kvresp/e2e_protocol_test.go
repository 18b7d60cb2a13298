package main_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Protocol errors and limits, over raw sockets, with the exact replies Redis gives (most cases
// come from Redis's tests/unit/protocol.tcl). A protocol error is answered, then the
// connection is closed.

func TestE2EProtocolErrors(t *testing.T) {
	s := startServer(t, serverOptions{})

	closedAfter := func(t *testing.T, send, want string) {
		t.Helper()
		rc := s.resp(t)
		rc.write([]byte(send))
		if got := rc.expectClosed(); got != want {
			t.Fatalf("sent %q: got %q then close, want %q", send, got, want)
		}
	}
	const (
		badMultibulk = "-ERR Protocol error: invalid multibulk length\r\n"
		badBulk      = "-ERR Protocol error: invalid bulk length\r\n"
		expectedF    = "-ERR Protocol error: expected '$', got 'f'\r\n"
	)

	t.Run("EmptyQuery", func(t *testing.T) {
		rc := s.resp(t)
		rc.write([]byte("\r\n"))
		rc.do("+PONG\r\n", "PING")
	})
	t.Run("NegativeMultibulkLength", func(t *testing.T) {
		rc := s.resp(t)
		rc.write([]byte("*-10\r\n"))
		rc.do("+PONG\r\n", "PING")
	})
	t.Run("Inline", func(t *testing.T) {
		rc := s.resp(t)
		rc.write([]byte("SET inline:k v\r\nGET inline:k\r\nSET \"inline:a b\" \"c d\"\r\nGET \"inline:a b\"\r\nPING\n"))
		rc.expect("+OK\r\n$1\r\nv\r\n+OK\r\n$3\r\nc d\r\n+PONG\r\n")
	})
	t.Run("OutOfRangeMultibulkLength", func(t *testing.T) {
		closedAfter(t, "*3000000000\r\n", badMultibulk)
	})
	t.Run("NonNumberMultibulkLength", func(t *testing.T) {
		closedAfter(t, "*blabla\r\n", badMultibulk)
	})
	t.Run("WrongMultibulkPayloadHeader", func(t *testing.T) {
		closedAfter(t, "*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", expectedF)
	})
	t.Run("MultibulkNotFollowedByBulk", func(t *testing.T) {
		closedAfter(t, "*1\r\nfoo\r\n", expectedF)
	})
	t.Run("NegativeBulkLength", func(t *testing.T) {
		closedAfter(t, "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", badBulk)
	})
	t.Run("NonNumberBulkLength", func(t *testing.T) {
		closedAfter(t, "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", badBulk)
	})
	t.Run("OutOfRangeBulkLength", func(t *testing.T) {
		// 2 GB is over proto-max-bulk-len (512 MiB): refused from the header alone, without
		// allocating for it.
		before := s.rssKiB(t)
		closedAfter(t, "*1\r\n$2000000000\r\n", badBulk)
		closedAfter(t, "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n", badBulk)
		after := s.rssKiB(t)
		if grew := after - before; grew > 64<<10 {
			t.Fatalf("server RSS grew by %d KiB answering an oversized bulk header", grew)
		}
	})
	t.Run("UnbalancedQuotes", func(t *testing.T) {
		closedAfter(t, "set \"\"\"test-key\"\"\" test-value\r\nping\r\n",
			"-ERR Protocol error: unbalanced quotes in request\r\n")
	})
	t.Run("InlineTooBig", func(t *testing.T) {
		closedAfter(t, strings.Repeat("A", 70<<10), "-ERR Protocol error: too big inline request\r\n")
	})
	// Desync: junk that never ends a line. Redis's test writes "payload" until the server gives
	// up on the request; the line limits (64 KiB) must end it with a protocol error.
	for name, seq := range map[string]string{"Desync1": "\x00", "Desync2": "*\x00", "Desync3": "$\x00"} {
		t.Run(name, func(t *testing.T) {
			rc := s.resp(t)
			done := make(chan struct{})
			go func() {
				defer close(done)
				if _, err := rc.c.Write([]byte(seq)); err != nil {
					return
				}
				chunk := []byte(strings.Repeat("payload", 1024))
				for sent := 0; sent < 1<<20; sent += len(chunk) {
					if _, err := rc.c.Write(chunk); err != nil {
						return
					}
				}
			}()
			got := rc.expectClosed()
			<-done
			if !strings.HasPrefix(got, "-ERR Protocol error: ") {
				t.Fatalf("got %q, want a protocol error", got)
			}
		})
	}
	t.Run("WrongArity", func(t *testing.T) {
		rc := s.resp(t)
		rc.do("-ERR wrong number of arguments for 'ping' command\r\n", "ping", "x", "y", "z")
		rc.do("-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n", "FOO", "a", "b")
		rc.do("+PONG\r\n", "PING")
	})
	t.Run("StillServing", func(t *testing.T) {
		s.resp(t).do("+PONG\r\n", "PING")
	})
}

func TestE2EHello(t *testing.T) {
	s := startServer(t, serverOptions{})
	rc := s.resp(t)
	// redis-py >= 8 (LMCache's redis:// client) opens with HELLO 3 and insists on proto=3.
	rc.send("HELLO", "3")
	reply := rc.readReply()
	if !strings.HasPrefix(reply, "%") || !strings.Contains(reply, "$5\r\nproto\r\n:3\r\n") {
		t.Fatalf("HELLO 3 = %q, want a map with proto 3", reply)
	}
	rc.do("_\r\n", "GET", "hello:missing") // RESP3 null
	rc.send("HELLO", "2")
	if reply := rc.readReply(); !strings.HasPrefix(reply, "*") || !strings.Contains(reply, "$5\r\nproto\r\n:2\r\n") {
		t.Fatalf("HELLO 2 = %q, want an array with proto 2", reply)
	}
	rc.do("$-1\r\n", "GET", "hello:missing") // RESP2 null
	rc.do("-NOPROTO unsupported protocol version\r\n", "HELLO", "4")
	rc.do("+PONG\r\n", "PING")
}

func TestE2EMaxClients(t *testing.T) {
	s := startServer(t, serverOptions{maxclients: 2})
	const full = "-ERR max number of clients reached\r\n"
	// The readiness probe's connection may not be reaped yet: retry until two clients fit.
	var first *respConn
	waitFor(t, 30*time.Second, "a first client slot", func() bool {
		rc := s.resp(t)
		rc.send("PING")
		if rc.line() == "+PONG\r\n" {
			first = rc
			return true
		}
		return false
	})
	var second *respConn
	waitFor(t, 30*time.Second, "a second client slot", func() bool {
		rc := s.resp(t)
		rc.send("PING")
		if rc.line() == "+PONG\r\n" {
			second = rc
			return true
		}
		return false
	})
	third := s.resp(t)
	if got := third.expectClosed(); got != full {
		t.Fatalf("third client got %q, want %q", got, full)
	}
	first.do("+PONG\r\n", "PING")
	second.do("+PONG\r\n", "PING")
	first.c.Close()
	waitFor(t, 30*time.Second, "the freed slot", func() bool {
		rc := s.resp(t)
		rc.send("PING")
		return rc.line() == "+PONG\r\n"
	})
}

func TestE2EAuth(t *testing.T) {
	const pw = "s3cret pw"
	s := startServer(t, serverOptions{requirepass: pw})
	const (
		noauth    = "-NOAUTH Authentication required.\r\n"
		wrongpass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
	)

	t.Run("AUTH", func(t *testing.T) {
		rc := s.resp(t)
		rc.do(noauth, "GET", "a")
		rc.do(noauth, "SET", "a", "b")
		rc.do(noauth, "PING")
		rc.do(wrongpass, "AUTH", "nope")
		rc.do(wrongpass, "AUTH", "default", "nope")
		rc.do(noauth, "GET", "a")
		rc.do("+OK\r\n", "AUTH", pw)
		rc.do("$-1\r\n", "GET", "a")
		rc.do("+OK\r\n", "AUTH", "default", pw)
	})
	t.Run("HELLO", func(t *testing.T) {
		rc := s.resp(t)
		rc.send("HELLO", "3")
		if got := rc.line(); !strings.HasPrefix(got, "-NOAUTH ") {
			t.Fatalf("HELLO 3 before AUTH = %q", got)
		}
		rc.do(wrongpass, "HELLO", "3", "AUTH", "default", "nope")
		rc.send("HELLO", "3", "AUTH", "default", pw)
		if reply := rc.readReply(); !strings.HasPrefix(reply, "%") || !strings.Contains(reply, "$5\r\nproto\r\n:3\r\n") {
			t.Fatalf("HELLO 3 AUTH = %q", reply)
		}
		rc.do("_\r\n", "GET", "a")
		rc.do("-NOPROTO unsupported protocol version\r\n", "HELLO", "4")
	})
	t.Run("GoRedis", func(t *testing.T) {
		for _, proto := range []int{3, 2} {
			rdb := redis.NewClient(&redis.Options{Addr: s.addr, Password: pw, Protocol: proto})
			ctx := ctxT(t)
			if err := rdb.Set(ctx, "auth:k", "v", 0).Err(); err != nil {
				t.Fatalf("RESP%d: %v", proto, err)
			}
			rdb.Close()
			bad := redis.NewClient(&redis.Options{Addr: s.addr, Password: "nope", Protocol: proto})
			if err := bad.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
				t.Fatalf("RESP%d with a wrong password: %v", proto, err)
			}
			bad.Close()
		}
	})
	t.Run("UnauthenticatedBigBulk", func(t *testing.T) {
		// A client that has not authenticated cannot make the server buffer a big value: the
		// connection is closed long before 100 MB have been sent.
		rc := s.resp(t)
		const size = 100_000_000
		writeErr := make(chan error, 1)
		go func() {
			if _, err := rc.c.Write([]byte("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$100000000\r\n")); err != nil {
				writeErr <- err
				return
			}
			chunk := make([]byte, 1<<20)
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := rc.c.Write(chunk); err != nil {
					writeErr <- err
					return
				}
			}
			writeErr <- nil
		}()
		got := rc.expectClosed()
		if err := <-writeErr; err == nil {
			t.Fatal("the server accepted a 100 MB unauthenticated bulk without closing the connection")
		}
		if got != "" && !strings.HasPrefix(got, "-") {
			t.Fatalf("got %q before the close, want nothing or an error", got)
		}
	})
}

func TestE2EIdleTimeout(t *testing.T) {
	s := startServer(t, serverOptions{timeout: 1})
	rc := s.resp(t)
	rc.do("+PONG\r\n", "PING")
	// The server closes the idle connection; the read deadline is only a liveness bound.
	rc.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if b, err := io.ReadAll(rc.r); err != nil && !isConnReset(err) {
		t.Fatalf("idle connection not closed: %q, %v", b, err)
	}
	s.resp(t).do("+PONG\r\n", "PING")
}
