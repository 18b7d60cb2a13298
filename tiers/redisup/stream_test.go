package redisup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"kvresp/internal/redistest"
	"kvresp/tiers"
	"kvresp/tiers/uptest"
)

// A value cut short by the upstream ends its Fill with an error, never as
// a whole value; the broken connection is not used again.
func TestGetStreamCutShort(t *testing.T) {
	val := strings.Repeat("v", 1<<20)
	reply := "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:-1\r\n$" + "1048576\r\n" + val + "\r\n"
	a := uptest.Arena(t, 64<<20)
	for _, c := range []struct {
		cut  int
		want bool
	}{{len(reply) - 600<<10, false}, {len(reply) - 1, false}, {-1, true}} {
		u, err := Open("redis://"+redistest.FakeStreamedGet(t, []byte(reply), c.cut), Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		it, f, ok, err := u.GetStream(ctx, "k", a.Alloc)
		if err != nil || !ok || f == nil || it.Buf.Len() != len(val) || it.ExpireAt != 0 {
			t.Fatalf("cut %d: GetStream = %v %v %v", c.cut, ok, f != nil, err)
		}
		<-f.Done()
		if whole := f.Err() == nil; whole != c.want {
			t.Errorf("cut at %d of %d: whole %v (%v), want %v", c.cut, len(reply), whole, f.Err(), c.want)
		}
		if c.want && !bytes.Equal(it.Buf.Bytes(), []byte(val)) {
			t.Error("wrong bytes")
		}
		it.Buf.Release()
		u.streams.mu.Lock()
		kept := len(u.streams.idle)
		u.streams.mu.Unlock()
		if want := map[bool]int{true: 1, false: 0}[c.want]; kept != want {
			t.Errorf("cut %d: %d connections kept for reuse, want %d", c.cut, kept, want)
		}
		cancel()
		u.Close()
	}
}

// Error replies inside the transaction are sorted like go-redis's.
func TestGetStreamErrorReplies(t *testing.T) {
	a := uptest.Arena(t, 64<<20)
	for reply, refusedWant := range map[string]bool{
		"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:-1\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n": true,
		"-NOAUTH Authentication required.\r\n":                        false,
		"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:-2\r\n$-1\r\n":           false, // a miss, no error
		"+OK\r\n+QUEUED\r\n-LOADING Redis is loading the dataset\r\n": false,
	} {
		u, err := Open("redis://"+redistest.FakeStreamedGet(t, []byte(reply), -1), Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, ok, err := u.GetStream(ctx, "k", a.Alloc)
		cancel()
		u.Close()
		if strings.Contains(reply, "$-1") {
			if ok || err != nil {
				t.Errorf("%q: %v %v, want a miss", reply, ok, err)
			}
			continue
		}
		if err == nil || errors.Is(err, tiers.ErrRefused) != refusedWant {
			t.Errorf("%q: err %v, refused want %v", reply, err, refusedWant)
		}
	}
}

// FuzzStreamReply feeds arbitrary replies to the reader of a streamed GET:
// it must not panic, and what it accepts must be what the bytes say.
func FuzzStreamReply(f *testing.F) {
	f.Add([]byte("+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1500\r\n$5\r\nhello\r\n"))
	f.Add([]byte("+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:-2\r\n$-1\r\n"))
	f.Add([]byte("+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:-1\r\n$3\r\nab"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &streamConn{r: bufio.NewReaderSize(bytes.NewReader(data), 4096)}
		_, n, err := c.readValueHeader()
		if err != nil || n < 0 || n > 1<<20 {
			return
		}
		b := make([]byte, n)
		fill := tiers.NewFill()
		if err := c.readValue(b, fill); err != nil {
			return
		}
		// The value is the n bytes before the final CRLF of what was read.
		rest, _ := c.r.Peek(c.r.Buffered())
		consumed := data[:len(data)-len(rest)]
		if !bytes.HasSuffix(consumed, append(append([]byte{}, b...), '\r', '\n')) {
			t.Fatalf("value %q is not what the reply carried (%q)", b, consumed)
		}
		if got, _, _ := fill.Wait(-1); got != int(n) && n > 0 {
			t.Fatalf("fill at %d of %d", got, n)
		}
	})
}

// Idle streaming connections the server has closed (a restart, its idle
// timeout, CLIENT KILL) are noticed and replaced, not used: they would fail
// the read, and a few in a row would open the proxy's circuit breaker while
// the server is up. The connections authenticate and select the database.
func TestGetStreamIdleConnsClosed(t *testing.T) {
	s := redistest.Start(t, "--requirepass", "secret")
	u := open(t, "redis://:secret@"+s.Addr()+"/1")
	a := uptest.Arena(t, 64<<20)
	val := bytes.Repeat([]byte("s"), 300<<10)
	uptest.Put(t, u, a, "k", val, 0)
	// Several at once, so that several connections end up idle.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if got, ok, err := getStream(t, u, a, "k"); !ok || err != nil || !bytes.Equal(got, val) {
				t.Errorf("GetStream = %v, %v", ok, err)
			}
		})
	}
	wg.Wait()
	u.streams.mu.Lock()
	idle := len(u.streams.idle)
	u.streams.mu.Unlock()
	if idle < 2 {
		t.Fatalf("%d idle streaming connections; the test needs several", idle)
	}
	direct := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: "secret"})
	defer direct.Close()
	killed, err := direct.ClientKillByFilter(t.Context(), "TYPE", "normal").Result()
	if err != nil || killed < int64(idle) {
		t.Fatalf("CLIENT KILL = %d, %v", killed, err)
	}
	for i := range idle + 1 {
		if got, ok, err := getStream(t, u, a, "k"); !ok || err != nil || !bytes.Equal(got, val) {
			t.Fatalf("GetStream %d after the server closed the idle connections = %v, %v", i, ok, err)
		}
	}
}

// Streaming connections in use are capped at the pool size, as go-redis's are:
// a read-through beyond it waits for one within its deadline instead of
// dialing, and a connection a transfer gives up frees its place.
func TestGetStreamPoolSize(t *testing.T) {
	// The upstream sends a value's first bytes and then nothing: each
	// transfer holds its connection until its context ends.
	reply := "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:-1\r\n$1048576\r\n" + strings.Repeat("v", 1000)
	u, err := Open("redis://"+redistest.FakeStreamedGet(t, []byte(reply), -1), Options{PoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	a := uptest.Arena(t, 64<<20)
	var cancels []context.CancelFunc
	var fills []*tiers.Fill
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cancels = append(cancels, cancel)
		it, f, ok, err := u.GetStream(ctx, "k", a.Alloc)
		if err != nil || !ok || f == nil {
			t.Fatalf("GetStream %d = %v, %v", i, ok, err)
		}
		defer it.Buf.Release()
		fills = append(fills, f)
	}
	if n := len(u.streams.slots); n != 2 {
		t.Fatalf("%d streaming connections in use, want 2", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, _, _, err = u.GetStream(ctx, "k", a.Alloc)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "all 2 streaming connections in use") || !errors.Is(err, tiers.ErrRefused) {
		t.Fatalf("a third transfer with two in use: %v; want a refusal (a local limit does not open the breaker)", err)
	}
	cancels[0]() // the first transfer gives up: its connection is closed, its place freed
	<-fills[0].Done()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	it, f, ok, err := u.GetStream(ctx, "k", a.Alloc)
	if err != nil || !ok || f == nil {
		t.Fatalf("GetStream after one transfer ended = %v, %v", ok, err)
	}
	defer it.Buf.Release()
	cancel()
	cancels[1]()
	<-f.Done()
	<-fills[1].Done()
	if n := len(u.streams.slots); n != 0 {
		t.Errorf("%d streaming connections still counted in use after every transfer ended", n)
	}
}
