package main_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"kvresp/internal/redistest"
)

// startUpstream starts the redis-server the server under test uses as its
// upstream, taking values as large as kvresp's.
func startUpstream(t *testing.T) *redistest.Server {
	t.Helper()
	return redistest.Start(t, "--proto-max-bulk-len", "512mb")
}

func redisURL(s *redistest.Server) string { return "redis://" + s.Addr() }

// redisValue returns rdb's value of key.
func redisValue(t *testing.T, rdb *redis.Client, key string) ([]byte, bool) {
	t.Helper()
	v, err := rdb.Get(ctxT(t), key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}

// upstreamArgs configures the server under test over upstream url in modes.
func upstreamArgs(url, modes string, extra ...string) []string {
	return append([]string{"--upstream", url, "--upstream-mode", modes, "--upstream-timeout", "500ms"}, extra...)
}

// TestE2EUpstreamRedis: a real redis-server behind kvresp, synchronous
// write-through, read-through, EXISTS and DEL.
func TestE2EUpstreamRedis(t *testing.T) {
	skipOnRedis(t, "no upstream")
	up := startUpstream(t)
	s := startServer(t, serverOptions{extra: upstreamArgs(redisURL(up), "read-through,write-through,exists,del")})
	rc := s.resp(t)

	v := rbValue("chunk", 1, 3<<20)
	rc.setChunk("chunk", v)
	rc.expect("+OK\r\n")
	if got, ok := redisValue(t, up.Client(), "chunk"); !ok || !bytes.Equal(got, v) {
		t.Fatal("write-through: the upstream does not have the value")
	}
	rc.do("+OK\r\n", "SET", "ttl", "x", "PX", "60000")
	if ttl := up.Client().PTTL(ctxT(t), "ttl").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("upstream PTTL %v, want the SET's TTL", ttl)
	}
	// What another node wrote: EXISTS sees it, GET reads it through.
	other := rbValue("other", 1, 5<<20)
	if err := up.Client().Set(ctxT(t), "other", other, 0).Err(); err != nil {
		t.Fatal(err)
	}
	rc.do(":1\r\n", "EXISTS", "other")
	if got, ok := rc.get("other"); !ok || !bytes.Equal(got, other) {
		t.Fatal("read-through: wrong or missing value")
	}
	in := rc.info("upstream")
	if in["upstream_kind"] != "redis" || in["upstream_breaker"] != "closed" || infoInt(t, in, "upstream_admitted") != 1 ||
		infoInt(t, in, "upstream_errors") != 0 || infoInt(t, in, "upstream_hits") != 1 {
		t.Fatalf("INFO upstream: %v", in)
	}
	rc.do(":1\r\n", "DEL", "other")
	if _, ok := redisValue(t, up.Client(), "other"); ok {
		t.Fatal("DEL did not reach the upstream")
	}
	rc.do(":0\r\n", "EXISTS", "other")
}

// TestE2EUpstreamWriteBack: a DRAM tier far smaller than what is written;
// what it evicts goes upstream and every value comes back by read-through.
func TestE2EUpstreamWriteBack(t *testing.T) {
	skipOnRedis(t, "no upstream")
	up := startUpstream(t)
	s := startServer(t, serverOptions{maxmemory: "24mb",
		extra: upstreamArgs(redisURL(up), "write-back,read-through", "--tier-order", "dram,upstream")})
	rc := s.resp(t)
	var keys []rbKey
	for i := range 48 {
		keys = append(keys, rbKey{fmt.Sprintf("chunk:%02d", i), 1<<20 + i*4099})
	}
	for _, k := range keys {
		rc.setChunk(k.key, rbValue(k.key, 1, k.size))
		rc.expect("+OK\r\n")
	}
	waitFor(t, time.Minute, "the write-back queue to drain", func() bool {
		return infoInt(t, rc.info("upstream"), "upstream_queue_depth") == 0
	})
	if n := up.Client().DBSize(ctxT(t)).Val(); n == 0 {
		t.Fatal("nothing was written back: the test does not exercise write-back")
	}
	rc.verifyKeys(keys, "through write-back and read-through")
	in := rc.info("upstream")
	if infoInt(t, in, "upstream_admitted") == 0 || infoInt(t, in, "upstream_queue_dropped") != 0 || infoInt(t, in, "upstream_queue_failed") != 0 {
		t.Fatalf("INFO upstream: %v", in)
	}
	// A graceful shutdown sends up what DRAM holds and the upstream lacks:
	// afterwards the upstream has every value.
	for i := range 3 {
		k := rbKey{fmt.Sprintf("late:%d", i), 1 << 20}
		rc.setChunk(k.key, rbValue(k.key, 2, k.size))
		rc.expect("+OK\r\n")
		keys = append(keys, k)
	}
	if err := s.stop(t, syscall.SIGTERM, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		want := rbValue(k.key, 1, k.size)
		if strings.HasPrefix(k.key, "late:") {
			want = rbValue(k.key, 2, k.size)
		}
		if v, ok := redisValue(t, up.Client(), k.key); !ok || !bytes.Equal(v, want) {
			t.Fatalf("%s is not upstream after the shutdown (found %v)", k.key, ok)
		}
	}
}

// TestE2EUpstreamAsyncOutage: write-through-async under load while the
// upstream is killed and restarted on the same port: kvresp answers every
// command from its local tiers throughout, counts the upstream's errors,
// opens and closes its breaker by itself, and writes to the new upstream.
func TestE2EUpstreamAsyncOutage(t *testing.T) {
	skipOnRedis(t, "no upstream")
	up := startUpstream(t)
	s := startServer(t, serverOptions{extra: upstreamArgs(redisURL(up), "read-through,write-through-async,exists,del")})
	rdb := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1, ReadTimeout: 10 * time.Second})
	t.Cleanup(func() { rdb.Close() })
	ctx := ctxT(t)

	var stop atomic.Bool
	var ops, failures atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				key := fmt.Sprintf("w%d:%d", w, i%50)
				val := rbValue(key, uint64(i), 64<<10)
				if err := rdb.Set(ctx, key, val, 0).Err(); err != nil {
					failures.Add(1)
					t.Errorf("SET during the load: %v", err)
					return
				}
				got, err := rdb.Get(ctx, key).Bytes()
				if err != nil || !bytes.Equal(got, val) {
					failures.Add(1)
					t.Errorf("GET %s during the load: %v (equal %v)", key, err, bytes.Equal(got, val))
					return
				}
				ops.Add(1)
			}
		}()
	}
	rc := s.resp(t)
	waitFor(t, 30*time.Second, "writes to reach the upstream", func() bool { return up.Client().DBSize(ctx).Val() > 0 })
	up.Stop()
	waitFor(t, 30*time.Second, "the breaker to open", func() bool {
		in := rc.info("upstream")
		return in["upstream_breaker"] != "closed" && infoInt(t, in, "upstream_errors") > 0
	})
	before := ops.Load()
	waitFor(t, 30*time.Second, "the load to go on during the outage", func() bool { return ops.Load() > before+200 })
	// A miss is answered at once, not after a timeout per request: the
	// breaker is open.
	for i := range 20 {
		if err := rdb.Get(ctx, fmt.Sprintf("absent:%d", i)).Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("GET of an absent key during the outage: %v", err)
		}
	}
	up.Restart()
	waitFor(t, 60*time.Second, "the breaker to close", func() bool { return rc.info("upstream")["upstream_breaker"] == "closed" })
	waitFor(t, 60*time.Second, "writes to reach the new upstream", func() bool { return up.Client().DBSize(ctx).Val() > 0 })
	if err := up.Client().Set(ctx, "fresh", "from the new upstream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "read-through from the new upstream", func() bool {
		v, err := rdb.Get(ctx, "fresh").Result()
		return err == nil && v == "from the new upstream"
	})
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d commands failed during the outage", failures.Load())
	}
	in := rc.info("upstream")
	if infoInt(t, in, "upstream_breaker_opens") == 0 || infoInt(t, in, "upstream_skipped") == 0 {
		t.Fatalf("INFO upstream: %v", in)
	}
	t.Logf("%d SET+GET pairs; INFO upstream: %v", ops.Load(), in)
}

// TestE2EUpstreamDelDuringOutage: a DEL kvresp acknowledged while the
// upstream could not take it must not come back by read-through or EXISTS
// once the upstream answers again; the upstream's copy is deleted then.
func TestE2EUpstreamDelDuringOutage(t *testing.T) {
	skipOnRedis(t, "no upstream")
	up := startUpstream(t)
	s := startServer(t, serverOptions{extra: upstreamArgs(redisURL(up), "read-through,write-through,exists,del")})
	rc := s.resp(t)
	rc.do("+OK\r\n", "SET", "k", "deleted")
	// Writes on the upstream hang for 3 s: longer than upstream-timeout.
	if err := up.Client().Do(ctxT(t), "client", "pause", 3000, "write").Err(); err != nil {
		t.Fatal(err)
	}
	rc.do(":1\r\n", "DEL", "k")
	waitFor(t, time.Minute, "the upstream to take writes and the breaker to close", func() bool {
		rc.do("$-1\r\n", "GET", "absent")
		return rc.info("upstream")["upstream_breaker"] == "closed" && up.Client().Set(ctxT(t), "probe", "x", 0).Err() == nil
	})
	rc.do(":0\r\n", "EXISTS", "k")
	rc.do("$-1\r\n", "GET", "k")
	waitFor(t, time.Minute, "the upstream's copy to be deleted", func() bool {
		return up.Client().Exists(ctxT(t), "k").Val() == 0 && infoInt(t, rc.info("upstream"), "upstream_stale_keys") == 0
	})
}
