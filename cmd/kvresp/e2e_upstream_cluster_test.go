package main_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"kvresp/internal/redistest"
)

// TestE2EUpstreamCluster: kvresp over a three-node Redis Cluster. Every key
// written through lands on the node that owns its slot, DEL removes it
// there, and what is written straight to any node is read through exactly.
func TestE2EUpstreamCluster(t *testing.T) {
	skipOnRedis(t, "no upstream")
	c := redistest.StartCluster(t, "--proto-max-bulk-len", "512mb")
	url := "redis-cluster://" + strings.Join(c.Addrs(), ",")
	// A longer timeout than upstreamArgs's (the later setting wins): a
	// liveness bound for 4 MiB values in a race-instrumented kvresp.
	s := startServer(t, serverOptions{extra: upstreamArgs(url, "read-through,write-through,exists,del", "--upstream-timeout", "10s")})
	rc := s.resp(t)
	ctx := ctxT(t)

	through := c.KeysOnEach(2, func(i int) string { return fmt.Sprintf("through:%d", i) })
	for node, keys := range through {
		for _, key := range keys {
			v := rbValue(key, 1, 16<<10)
			rc.setChunk(key, v)
			rc.expect("+OK\r\n")
			if got, ok := redisValue(t, node.Client(), key); !ok || !bytes.Equal(got, v) {
				t.Fatalf("write-through of %s: its owner %s does not have the value", key, node.Addr())
			}
		}
		rc.do(":1\r\n", "DEL", keys[0])
		if _, ok := redisValue(t, node.Client(), keys[0]); ok {
			t.Fatalf("DEL %s did not reach its owner %s", keys[0], node.Addr())
		}
	}

	// Written by another node of the fleet, straight to each owner: one
	// small value and one of 4 MiB on every node.
	direct := c.KeysOnEach(2, func(i int) string { return fmt.Sprintf("direct:%d", i) })
	var keys []rbKey
	for node, ks := range direct {
		for j, key := range ks {
			k := rbKey{key, 1000 + j*(4<<20-1000)}
			keys = append(keys, k)
			if err := node.Client().Set(ctx, key, rbValue(key, 1, k.size), 0).Err(); err != nil {
				t.Fatal(err)
			}
			rc.do(":1\r\n", "EXISTS", key)
		}
	}
	rc.verifyKeys(keys, "read through from the cluster")
	in := rc.info("upstream")
	if in["upstream_kind"] != "redis-cluster" || infoInt(t, in, "upstream_errors") != 0 || infoInt(t, in, "upstream_admitted") != int64(len(keys)) {
		t.Fatalf("INFO upstream: %v", in)
	}
}
