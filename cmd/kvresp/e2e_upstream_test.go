package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// upstreamServer is a redis-server the server under test uses as its upstream.
type upstreamServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
	done chan struct{}
	rdb  *redis.Client
}

// startUpstream starts redis-server on port (0: a free one).
func startUpstream(t *testing.T, port int) *upstreamServer {
	t.Helper()
	bin := needTool(t, "redis-server")
	if port == 0 {
		port = freePort(t)
	}
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	u := &upstreamServer{t: t, port: port, done: make(chan struct{})}
	u.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", dir, "--proto-max-bulk-len", "512mb")
	u.cmd.Stdout, u.cmd.Stderr = logf, logf
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = u.cmd.Wait(); close(u.done) }()
	t.Cleanup(u.kill)
	u.rdb = redis.NewClient(&redis.Options{Addr: u.addr()})
	t.Cleanup(func() { u.rdb.Close() })
	waitFor(t, 10*time.Second, "the upstream redis-server to answer", func() bool {
		return u.rdb.Ping(context.Background()).Err() == nil
	})
	return u
}

func (u *upstreamServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(u.port)) }
func (u *upstreamServer) url() string  { return "redis://" + u.addr() }

func (u *upstreamServer) kill() {
	_ = u.cmd.Process.Kill()
	<-u.done
}

// value returns the upstream's value of key.
func (u *upstreamServer) value(key string) ([]byte, bool) {
	u.t.Helper()
	v, err := u.rdb.Get(ctxT(u.t), key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false
	}
	if err != nil {
		u.t.Fatal(err)
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
	up := startUpstream(t, 0)
	s := startServer(t, serverOptions{extra: upstreamArgs(up.url(), "read-through,write-through,exists,del")})
	rc := s.resp(t)

	v := rbValue("chunk", 1, 3<<20)
	rc.setChunk("chunk", v)
	rc.expect("+OK\r\n")
	if got, ok := up.value("chunk"); !ok || !bytes.Equal(got, v) {
		t.Fatal("write-through: the upstream does not have the value")
	}
	rc.do("+OK\r\n", "SET", "ttl", "x", "PX", "60000")
	if ttl := up.rdb.PTTL(ctxT(t), "ttl").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("upstream PTTL %v, want the SET's TTL", ttl)
	}
	// What another node wrote: EXISTS sees it, GET reads it through.
	other := rbValue("other", 1, 5<<20)
	if err := up.rdb.Set(ctxT(t), "other", other, 0).Err(); err != nil {
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
	if _, ok := up.value("other"); ok {
		t.Fatal("DEL did not reach the upstream")
	}
	rc.do(":0\r\n", "EXISTS", "other")
}

// TestE2EUpstreamWriteBack: a DRAM tier far smaller than what is written;
// what it evicts goes upstream and every value comes back by read-through.
func TestE2EUpstreamWriteBack(t *testing.T) {
	skipOnRedis(t, "no upstream")
	up := startUpstream(t, 0)
	s := startServer(t, serverOptions{maxmemory: "24mb",
		extra: upstreamArgs(up.url(), "write-back,read-through", "--tier-order", "dram,upstream")})
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
	if n := up.rdb.DBSize(ctxT(t)).Val(); n == 0 {
		t.Fatal("nothing was written back: the test does not exercise write-back")
	}
	rc.verifyKeys(keys, "through write-back and read-through")
	in := rc.info("upstream")
	if infoInt(t, in, "upstream_admitted") == 0 || infoInt(t, in, "upstream_queue_dropped") != 0 || infoInt(t, in, "upstream_queue_failed") != 0 {
		t.Fatalf("INFO upstream: %v", in)
	}
}

// TestE2EUpstreamAsyncOutage: write-through-async under load while the
// upstream is killed and restarted on the same port: kvresp answers every
// command from its local tiers throughout, counts the upstream's errors,
// opens and closes its breaker by itself, and writes to the new upstream.
func TestE2EUpstreamAsyncOutage(t *testing.T) {
	skipOnRedis(t, "no upstream")
	up := startUpstream(t, 0)
	s := startServer(t, serverOptions{extra: upstreamArgs(up.url(), "read-through,write-through-async,exists,del")})
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
	waitFor(t, 30*time.Second, "writes to reach the upstream", func() bool { return up.rdb.DBSize(ctx).Val() > 0 })
	up.kill()
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
	up2 := startUpstream(t, up.port)
	waitFor(t, 60*time.Second, "the breaker to close", func() bool { return rc.info("upstream")["upstream_breaker"] == "closed" })
	waitFor(t, 60*time.Second, "writes to reach the new upstream", func() bool { return up2.rdb.DBSize(ctx).Val() > 0 })
	if err := up2.rdb.Set(ctx, "fresh", "from the new upstream", 0).Err(); err != nil {
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
