package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is three redis-server nodes joined as a Redis Cluster without
// replicas: every node is a primary owning a third of the slots.
type Cluster struct {
	Nodes []*Server

	tb     testing.TB
	shards []redis.ClusterShard
}

// StartCluster starts the nodes with args added to their command lines,
// joins them with redis-cli --cluster create, as an operator would, and
// waits until every node says cluster_state:ok.
func StartCluster(tb testing.TB, args ...string) *Cluster {
	tb.Helper()
	cli := NeedBinary(tb, "redis-cli")
	c := &Cluster{tb: tb, Nodes: make([]*Server, 3)}
	for i := range c.Nodes {
		dir := tb.TempDir()
		c.Nodes[i] = StartConfig(tb, Config{Dir: dir, Args: func(port int) []string {
			// The bus port is chosen too: port+10000, Redis's default, may
			// be taken or beyond 65535.
			return append(append([]string{"--port", strconv.Itoa(port), "--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-port", strconv.Itoa(FreePort(tb)), "--cluster-node-timeout", "5000"},
				BaseArgs(dir)...), args...)
		}})
	}
	create := append([]string{"--cluster", "create"}, c.Addrs()...)
	create = append(create, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(tb.Context(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, create...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli %s: %v\n%s", strings.Join(create, " "), err, out)
	}
	for _, n := range c.Nodes {
		Eventually(tb, "cluster_state:ok on "+n.Addr(), func(ctx context.Context) error {
			info, err := n.Client().ClusterInfo(ctx).Result()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = fmt.Errorf("CLUSTER INFO:\n%s", info)
			}
			return err
		})
	}
	// The slots stay where create put them: nothing in a test reshards.
	var err error
	if c.shards, err = c.Nodes[0].Client().ClusterShards(tb.Context()).Result(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// Addrs are the nodes' host:port.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Owner is the node that serves key's slot.
func (c *Cluster) Owner(key string) *Server {
	c.tb.Helper()
	slot, err := c.Nodes[0].Client().ClusterKeySlot(c.tb.Context(), key).Result()
	if err != nil {
		c.tb.Fatal(err)
	}
	for _, sh := range c.shards {
		for _, r := range sh.Slots {
			if r.Start <= slot && slot <= r.End {
				for _, n := range c.Nodes {
					if int64(n.Port()) == sh.Nodes[0].Port {
						return n
					}
				}
			}
		}
	}
	c.tb.Fatalf("no node serves slot %d of key %q", slot, key)
	return nil
}

// KeysOnEach returns keys named name(0), name(1), ..., perNode of them for
// each node, by the node that owns them.
func (c *Cluster) KeysOnEach(perNode int, name func(i int) string) map[*Server][]string {
	c.tb.Helper()
	keys := map[*Server][]string{}
	for i, full := 0, 0; full < len(c.Nodes); i++ {
		key := name(i)
		n := c.Owner(key)
		if len(keys[n]) < perNode {
			keys[n] = append(keys[n], key)
			if len(keys[n]) == perNode {
				full++
			}
		}
	}
	return keys
}
