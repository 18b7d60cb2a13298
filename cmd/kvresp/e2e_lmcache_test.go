package main_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"kvresp/internal/redistest"
)

// LMCache's two wire contracts (DESIGN.md §2).

// TestE2ELMCacheRedisPy runs LMCache's redis:// flow with the real redis-py asyncio client:
// a connection pool, 32 concurrent tasks, SET kv_bytes then SET metadata, EXISTS, GET both,
// DEL, on 32 MiB chunks.
func TestE2ELMCacheRedisPy(t *testing.T) {
	py := needPythonRedis(t)
	s := startServer(t, serverOptions{maxmemory: "4gb"})
	chunks := "64"
	if testing.Short() {
		chunks = "8"
	}
	out, err := exec.Command(py, "testdata/lmcache_redis.py",
		"--host", "127.0.0.1", "--port", s.port(),
		"--chunks", chunks, "--chunk-mib", "32", "--concurrency", "32").CombinedOutput()
	t.Logf("lmcache_redis.py:\n%s", out)
	if err != nil {
		t.Fatalf("lmcache_redis.py: %v", err)
	}
	s.resp(t).do("+PONG\r\n", "PING")
}

// TestE2ELMCacheRedisPyRESP3 is the same flow over redis-py's protocol=3 (HELLO 3), which
// redis-py >= 8 uses by default. Older redis-py has no RESP3: then the test skips (the HELLO 3
// reply itself is checked byte for byte in TestE2EHello).
func TestE2ELMCacheRedisPyRESP3(t *testing.T) {
	py := needPythonRedis(t)
	ver, err := exec.Command(py, "-c", "import redis; print(redis.__version__)").Output()
	if err != nil {
		t.Fatal(err)
	}
	if major, _ := strconv.Atoi(strings.SplitN(strings.TrimSpace(string(ver)), ".", 2)[0]); major < 5 {
		t.Skipf("redis-py %s has no protocol=3 (needs >= 5)", strings.TrimSpace(string(ver)))
	}
	s := startServer(t, serverOptions{maxmemory: "4gb"})
	out, err := exec.Command(py, "testdata/lmcache_redis.py",
		"--host", "127.0.0.1", "--port", s.port(), "--protocol", "3",
		"--chunks", "16", "--chunk-mib", "32", "--concurrency", "32").CombinedOutput()
	t.Logf("lmcache_redis.py --protocol 3:\n%s", out)
	if err != nil {
		t.Fatalf("lmcache_redis.py: %v", err)
	}
}

// needPythonRedis returns /usr/bin/python3 when it can import redis (python3-redis).
func needPythonRedis(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		redistest.Missing(t, "%s is not installed", py)
	}
	if err := exec.Command(py, "-c", "import redis.asyncio").Run(); err != nil {
		redistest.Missing(t, "python3-redis is not installed (import redis.asyncio: %v)", err)
	}
	return py
}

// chunkValue makes buf (a copy of a shared random base) the chunk of (conn, i): it differs from
// every other chunk in its first 16 bytes. Reusing one buffer per connection keeps the test's
// own copying (and the race detector's cost for it) small.
func chunkValue(buf []byte, conn, i int) []byte {
	binary.BigEndian.PutUint64(buf[0:], uint64(conn))
	binary.BigEndian.PutUint64(buf[8:], uint64(i))
	return buf
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	return b
}

// lmcacheKey is a key the way LMCache's native client spells it:
// model@%08x(kv_rank)@%x(group)@<hash hex>.
func lmcacheKey(conn, i int) string {
	return fmt.Sprintf("meta-llama/Llama-3.2-1B-Instruct@%08x@%x@%016x%016x", conn, i%3, uint64(i)*0x9e3779b97f4a7c15, uint64(conn))
}

// setChunk sends SET key value without copying the value into a command buffer.
func (rc *respConn) setChunk(key string, value []byte) {
	rc.t.Helper()
	hdr := fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n", len(key), key, len(value))
	bufs := net.Buffers{[]byte(hdr), value, []byte("\r\n")}
	if _, err := bufs.WriteTo(rc.c); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// expectGet reads a GET reply the way the native client does and reports whether it was a hit
// with exactly want (hit) or $-1 (miss); anything else fails.
func (rc *respConn) expectGet(want []byte, allowMiss bool) bool {
	rc.t.Helper()
	l := rc.line()
	if l == "$-1\r\n" {
		if !allowMiss {
			rc.t.Fatal("GET missed a key that must be there")
		}
		return false
	}
	if hdr := fmt.Sprintf("$%d\r\n", len(want)); l != hdr {
		rc.t.Fatalf("GET header %q, want %q or $-1", l, hdr)
	}
	if cap(rc.buf) < len(want)+2 {
		rc.buf = make([]byte, len(want)+2)
	}
	got := rc.buf[:len(want)+2]
	if _, err := io.ReadFull(rc.r, got); err != nil {
		rc.t.Fatal(err)
	}
	if !bytes.Equal(got[:len(want)], want) || string(got[len(want):]) != "\r\n" {
		rc.t.Fatal("GET returned different bytes than were SET")
	}
	return true
}

// eachConn runs fn on n connections at once, as parallel subtests of a subtest called name, and
// returns when all are done. buf starts as a copy of base, for chunkValue.
func eachConn(t *testing.T, s *server, name string, n int, base []byte, fn func(t *testing.T, rc *respConn, c int, buf []byte)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		for c := 0; c < n; c++ {
			t.Run(strconv.Itoa(c), func(t *testing.T) {
				t.Parallel()
				fn(t, s.resp(t), c, bytes.Clone(base))
			})
		}
	})
}

// TestE2ELMCacheRESP checks the resp:// contract byte for byte, with 8 connections like
// LMCache's native client: SET is exactly +OK, EXISTS/DEL exactly :0/:1, GET exactly
// $<n> + bytes or $-1.
func TestE2ELMCacheRESP(t *testing.T) {
	const (
		conns  = 8
		perCon = 4
		size   = 8 << 20 // Llama-3.2-1B chunk
	)
	s := startServer(t, serverOptions{maxmemory: "1gb"})
	base := randomBytes(size)

	eachConn(t, s, "Write", conns, base, func(t *testing.T, rc *respConn, c int, buf []byte) {
		for i := 0; i < perCon; i++ {
			k := lmcacheKey(c, i)
			rc.do(":0\r\n", "EXISTS", k)
			rc.send("GET", k)
			rc.expectGet(nil, true)
			v := chunkValue(buf, c, i)
			rc.setChunk(k, v)
			rc.expect("+OK\r\n")
			rc.do(":1\r\n", "EXISTS", k)
			rc.send("GET", k)
			rc.expectGet(v, false)
		}
	})
	eachConn(t, s, "Read", conns, base, func(t *testing.T, rc *respConn, c int, buf []byte) {
		other := (c + 1) % conns // read another connection's chunks
		for i := 0; i < perCon; i++ {
			rc.send("GET", lmcacheKey(other, i))
			rc.expectGet(chunkValue(buf, other, i), false)
		}
	})
	eachConn(t, s, "Delete", conns, nil, func(t *testing.T, rc *respConn, c int, _ []byte) {
		for i := 0; i < perCon; i++ {
			k := lmcacheKey(c, i)
			rc.do(":1\r\n", "DEL", k)
			rc.do(":0\r\n", "DEL", k)
			rc.do(":0\r\n", "EXISTS", k)
			rc.send("GET", k)
			rc.expectGet(nil, true)
		}
		rc.do(":0\r\n", "EXISTS", "never-set") // still in sync: no stray bytes
	})
}

// TestE2ELMCacheRESPEviction writes 4x more than maxmemory through the resp:// contract: every
// SET must still answer exactly +OK (the server evicts; -OOM would desynchronise the client)
// and every GET is either the exact value or $-1.
func TestE2ELMCacheRESPEviction(t *testing.T) {
	const (
		conns  = 4 // Redis counts pending 8 MiB arguments against maxmemory: keep them under it
		perCon = 8
		size   = 8 << 20
	)
	// DRAM only, as Redis: evicted chunks are gone, which is what this tests.
	s := startServer(t, serverOptions{maxmemory: "64mb", dramOnly: true})
	base := randomBytes(size)
	eachConn(t, s, "Write", conns, base, func(t *testing.T, rc *respConn, c int, buf []byte) {
		for i := 0; i < perCon; i++ {
			rc.setChunk(lmcacheKey(c, i), chunkValue(buf, c, i))
			rc.expect("+OK\r\n")
		}
	})
	var hits atomic.Int64
	eachConn(t, s, "Read", conns, base, func(t *testing.T, rc *respConn, c int, buf []byte) {
		zeroOrOne := func(cmd, k string) {
			t.Helper()
			rc.send(cmd, k)
			if l := rc.line(); l != ":0\r\n" && l != ":1\r\n" {
				t.Fatalf("%s = %q", cmd, l)
			}
		}
		for i := 0; i < perCon; i++ {
			k := lmcacheKey(c, i)
			rc.send("GET", k)
			if rc.expectGet(chunkValue(buf, c, i), true) {
				hits.Add(1)
			}
			zeroOrOne("EXISTS", k)
			zeroOrOne("DEL", k)
		}
	})
	t.Logf("%d of %d chunks survived eviction", hits.Load(), conns*perCon)
	if hits.Load() == 0 {
		t.Error("a 64 MiB cache kept none of the 8 MiB chunks written last")
	}
}
