package redisup

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The data nodes and the sentinel have different passwords, as the URL can say.
const (
	dataPassword     = "data-secret"
	sentinelPassword = "sentinel secret+&"
)

// startSentinel starts a redis-sentinel monitoring primary as mymaster, with a quorum of
// one and short timeouts so that a failover takes seconds.
func startSentinel(t *testing.T, primary *server) *server {
	t.Helper()
	dir := t.TempDir()
	s := startServer(t, "redis-sentinel", dir, func(port int) []string {
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nrequirepass %q\n"+
			"sentinel monitor mymaster 127.0.0.1 %d 1\n"+
			"sentinel auth-pass mymaster %s\n"+
			"sentinel down-after-milliseconds mymaster 1000\n"+
			"sentinel failover-timeout mymaster 5000\n", port, dir, sentinelPassword, primary.port, dataPassword)
		// Sentinel rewrites its configuration file, so it is written anew for every start.
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return []string{conf}
	})
	s.password = sentinelPassword
	return s
}

// servedBy is the port of the server answering u's commands.
func servedBy(ctx context.Context, u *Upstream) (int, error) {
	info, err := u.c.Do(ctx, "info", "server").Text()
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "tcp_port:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("INFO server has no tcp_port:\n%s", info)
}

func TestSentinelFailover(t *testing.T) {
	needBinary(t, "redis-sentinel")
	auth := []string{"--requirepass", dataPassword, "--masterauth", dataPassword}
	primary := startRedis(t, auth...)
	primary.password = dataPassword
	replica := startRedis(t, append(auth, "--replicaof", "127.0.0.1", strconv.Itoa(primary.port))...)
	replica.password = dataPassword
	eventually(t, "replica in sync", func(ctx context.Context) error {
		info, err := replica.client().Info(ctx, "replication").Result()
		if err == nil && !strings.Contains(info, "master_link_status:up") {
			err = fmt.Errorf("replica not in sync:\n%s", info)
		}
		return err
	})
	sent := startSentinel(t, primary)
	sc := redis.NewSentinelClient(&redis.Options{Addr: sent.addr(), Password: sentinelPassword, MaxRetries: -1})
	t.Cleanup(func() { _ = sc.Close() })
	// Sentinel learns of the replica from the primary's INFO; it can fail over only then.
	eventually(t, "sentinel knows the replica", func(ctx context.Context) error {
		rs, err := sc.Replicas(ctx, "mymaster").Result()
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r["port"] == strconv.Itoa(replica.port) && r["flags"] == "slave" {
				return nil
			}
		}
		return fmt.Errorf("sentinel's replicas of mymaster: %v", rs)
	})

	// The first sentinel listed is down, and the master is named by master=: the
	// remaining one is found.
	down := freePort(t)
	u := open(t, fmt.Sprintf("redis-sentinel://:%s@127.0.0.1:%d,%s/?master=mymaster&sentinel_password=%s",
		dataPassword, down, sent.addr(), url.QueryEscape(sentinelPassword)))
	if u.Name() != "redis-sentinel" {
		t.Errorf("Name() = %q", u.Name())
	}
	a := newArena(t, 16<<20)
	ctx := t.Context()
	if err := u.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	put(t, u, a, "before", []byte("written to the first primary"), 0)
	if port, err := servedBy(ctx, u); err != nil || port != primary.port {
		t.Fatalf("served by port %d, %v; want the primary's, %d", port, err, primary.port)
	}
	// The write must have reached the replica before the primary dies, or it is lost
	// with it (replication is asynchronous).
	if n, err := primary.client().Do(ctx, "wait", 1, 0).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 0 = %d, %v", n, err)
	}

	primary.stop()
	eventually(t, "writing to the new primary", func(ctx context.Context) error {
		if err := tryPut(ctx, u, a, "after", []byte("written to the second primary"), 0); err != nil {
			return err
		}
		port, err := servedBy(ctx, u)
		if err == nil && port != replica.port {
			err = fmt.Errorf("served by port %d, not the former replica's, %d", port, replica.port)
		}
		return err
	})
	for key, want := range map[string]string{"before": "written to the first primary", "after": "written to the second primary"} {
		if got, _, ok := get(t, u, a, key); !ok || string(got) != want {
			t.Errorf("Get(%q) after the failover = %q, %v; want %q", key, got, ok, want)
		}
	}
	if got, err := replica.client().Get(ctx, "after").Result(); err != nil || got != "written to the second primary" {
		t.Errorf("the former replica has %q, %v", got, err)
	}
}
