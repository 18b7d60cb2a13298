package redisup

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startCluster starts three redis-server nodes joined as a cluster without replicas,
// waiting until every node says cluster_state:ok.
func startCluster(t *testing.T) []*server {
	t.Helper()
	cli := needBinary(t, "redis-cli")
	nodes := make([]*server, 3)
	for i := range nodes {
		dir := t.TempDir()
		nodes[i] = startServer(t, "redis-server", dir, func(port int) []string {
			// The bus port is chosen too: port+10000, Redis's default, may be taken or
			// beyond 65535.
			return append([]string{"--port", strconv.Itoa(port), "--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-port", strconv.Itoa(freePort(t)), "--cluster-node-timeout", "5000"},
				redisArgs(dir)...)
		})
	}
	args := []string{"--cluster", "create"}
	for _, n := range nodes {
		args = append(args, n.addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, n := range nodes {
		c := n.client()
		eventually(t, "cluster_state:ok on "+n.addr(), func(ctx context.Context) error {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = fmt.Errorf("CLUSTER INFO:\n%s", info)
			}
			return err
		})
	}
	return nodes
}

func TestCluster(t *testing.T) {
	nodes := startCluster(t)
	ctx := t.Context()
	direct := map[string]*redis.Client{} // by address: plain clients, not cluster-aware
	var addrs []string
	for _, n := range nodes {
		direct[n.addr()] = n.client()
		addrs = append(addrs, n.addr())
	}
	shards, err := direct[addrs[0]].ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	owner := func(key string) string {
		t.Helper()
		slot, err := direct[addrs[0]].ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range shards {
			for _, r := range sh.Slots {
				if r.Start <= slot && slot <= r.End {
					return net.JoinHostPort(sh.Nodes[0].IP, strconv.FormatInt(sh.Nodes[0].Port, 10))
				}
			}
		}
		t.Fatalf("no node serves slot %d of key %q", slot, key)
		return ""
	}
	// Odd keys, until every node owns at least two.
	keys := map[string][]string{}
	for i := 0; len(keys) < len(nodes) || minLen(keys) < 2; i++ {
		key := fmt.Sprintf("key %d/@%%\xff", i)
		keys[owner(key)] = append(keys[owner(key)], key)
	}

	u := open(t, "redis-cluster://"+strings.Join(addrs, ","))
	if u.Name() != "redis-cluster" {
		t.Errorf("Name() = %q", u.Name())
	}
	if err := u.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	a := newArena(t, 16<<20)
	exp := time.Now().Add(time.Hour).UnixMilli()
	for addr, ks := range keys {
		for i, key := range ks {
			val := []byte("value of " + key)
			e := int64(0)
			if i%2 == 0 {
				e = exp
			}
			put(t, u, a, key, val, e)
			// The node owning the key's slot holds it.
			if got, err := direct[addr].Get(ctx, key).Result(); err != nil || got != string(val) {
				t.Errorf("node %s: GET %q = %q, %v; want %q", addr, key, got, err, val)
			}
			// GET and PTTL in one pipeline, to the one node.
			got, gotExp, ok := get(t, u, a, key)
			if !ok || string(got) != string(val) || (e == 0) != (gotExp == 0) || gotExp > e {
				t.Errorf("Get(%q) = %q, %d, %v; want %q, expiry at most %d", key, got, gotExp, ok, val, e)
			}
			if m, ok, err := u.Stat(ctx, key); err != nil || !ok || m.Size != int64(len(val)) {
				t.Errorf("Stat(%q) = %+v, %v, %v", key, m, ok, err)
			}
			if ok, err := u.SetExpire(ctx, key, 0); err != nil || !ok {
				t.Errorf("SetExpire(%q, 0) = %v, %v", key, ok, err)
			}
		}
	}
	for addr, ks := range keys {
		for _, key := range ks {
			if ok, err := u.Delete(ctx, key); err != nil || !ok {
				t.Errorf("Delete(%q) = %v, %v", key, ok, err)
			}
			if n, err := direct[addr].Exists(ctx, key).Result(); err != nil || n != 0 {
				t.Errorf("node %s: EXISTS %q = %d, %v after Delete", addr, key, n, err)
			}
		}
	}
}

func minLen(m map[string][]string) int {
	n := -1
	for _, v := range m {
		if n < 0 || len(v) < n {
			n = len(v)
		}
	}
	return n
}
