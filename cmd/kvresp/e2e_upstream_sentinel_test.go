package main_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"kvresp/internal/redistest"
)

// TestE2EUpstreamSentinel: kvresp over a primary and its replica, found
// through a redis-sentinel. When the primary dies, kvresp answers every
// command from its local tiers throughout the failover, then writes through
// to the promoted replica and reads through from it, told of it by the
// sentinel alone.
func TestE2EUpstreamSentinel(t *testing.T) {
	skipOnRedis(t, "no upstream")
	st := redistest.StartSentinel(t, redistest.SentinelOptions{})
	url := fmt.Sprintf("redis-sentinel://%s/%s", st.Sentinel.Addr(), redistest.Master)
	s := startServer(t, serverOptions{extra: upstreamArgs(url, "read-through,write-through,exists,del")})
	rc := s.resp(t)

	before := rbValue("before", 1, 64<<10)
	rc.setChunk("before", before)
	rc.expect("+OK\r\n")
	if got, ok := redisValue(t, st.Primary.Client(), "before"); !ok || !bytes.Equal(got, before) {
		t.Fatal("write-through: the primary does not have the value")
	}
	st.Sync()
	st.KillPrimary()

	// SET and GET go on until a write-through lands on the former replica:
	// while the primary is gone and none is promoted yet, every SET is still
	// acknowledged and every GET served from DRAM.
	var keys []rbKey
	deadline := time.Now().Add(time.Minute) // a liveness bound for the failover
	for i := 0; ; i++ {
		k := rbKey{fmt.Sprintf("during:%d", i), 4<<10 + i}
		keys = append(keys, k)
		v := rbValue(k.key, 1, k.size)
		rc.setChunk(k.key, v)
		rc.expect("+OK\r\n")
		if got, ok := rc.get(k.key); !ok || !bytes.Equal(got, v) {
			t.Fatalf("GET %s during the failover: wrong or missing value", k.key)
		}
		// An error (the replica busy being promoted) is asked again.
		if got, err := st.Replica.Client().Get(ctxT(t), k.key).Bytes(); err == nil && bytes.Equal(got, v) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d SETs no write-through reached the former replica; INFO upstream: %v", i+1, rc.info("upstream"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	st.WaitPromoted()
	rc.verifyKeys(append(keys, rbKey{"before", 64 << 10}), "after the failover")

	// The new primary serves read-through, EXISTS and DEL.
	after := rbValue("after", 1, 1<<20)
	if err := st.Replica.Client().Set(ctxT(t), "after", after, 0).Err(); err != nil {
		t.Fatal(err)
	}
	rc.do(":1\r\n", "EXISTS", "after")
	if got, ok := rc.get("after"); !ok || !bytes.Equal(got, after) {
		t.Fatal("read-through from the new primary: wrong or missing value")
	}
	rc.do(":1\r\n", "DEL", "after")
	if _, ok := redisValue(t, st.Replica.Client(), "after"); ok {
		t.Fatal("DEL did not reach the new primary")
	}
	in := rc.info("upstream")
	if in["upstream_kind"] != "redis-sentinel" || in["upstream_breaker"] != "closed" {
		t.Fatalf("INFO upstream: %v", in)
	}
	t.Logf("%d SETs until a write-through reached the new primary; INFO upstream: %v", len(keys), in)
}
