package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Master is the name the sentinel knows the primary by.
const Master = "mymaster"

// SentinelOptions are a Sentinel's passwords and extra settings; zero
// values mean none.
type SentinelOptions struct {
	// Password is the data nodes' requirepass and masterauth;
	// SentinelPassword the sentinel's own requirepass. They differ in
	// tests of clients that must tell the two apart.
	Password, SentinelPassword string
	// Args are added to both data nodes' command lines.
	Args []string
}

// Sentinel is a primary and its replica watched by one redis-sentinel,
// which knows the primary as Master with a quorum of one and short
// timeouts, so that a failover takes seconds.
type Sentinel struct {
	Primary, Replica, Sentinel *Server

	tb     testing.TB
	client *redis.SentinelClient
}

// StartSentinel starts the three servers and returns once the replica is in
// sync and the sentinel knows it: only then can it fail over.
func StartSentinel(tb testing.TB, o SentinelOptions) *Sentinel {
	tb.Helper()
	NeedBinary(tb, "redis-sentinel") // before starting anything
	data := func(args ...string) *Server {
		dir := tb.TempDir()
		args = append(args, o.Args...)
		if o.Password != "" {
			args = append(args, "--requirepass", o.Password, "--masterauth", o.Password)
		}
		return StartConfig(tb, Config{Dir: dir, Password: o.Password, Args: func(port int) []string {
			return append(append([]string{"--port", strconv.Itoa(port)}, BaseArgs(dir)...), args...)
		}})
	}
	st := &Sentinel{tb: tb}
	st.Primary = data()
	st.Replica = data("--replicaof", "127.0.0.1", strconv.Itoa(st.Primary.Port()))
	Eventually(tb, "replica in sync", func(ctx context.Context) error {
		info, err := st.Replica.Client().Info(ctx, "replication").Result()
		if err == nil && !strings.Contains(info, "master_link_status:up") {
			err = fmt.Errorf("replica not in sync:\n%s", info)
		}
		return err
	})

	dir := tb.TempDir()
	st.Sentinel = StartConfig(tb, Config{Bin: "redis-sentinel", Dir: dir, Password: o.SentinelPassword,
		Args: func(port int) []string {
			conf := filepath.Join(dir, "sentinel.conf")
			text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n", port, dir)
			if o.SentinelPassword != "" {
				text += fmt.Sprintf("requirepass %q\n", o.SentinelPassword)
			}
			text += fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\n", Master, st.Primary.Port())
			if o.Password != "" {
				text += fmt.Sprintf("sentinel auth-pass %s %s\n", Master, o.Password)
			}
			// A primary is down after a second without answers; a failover
			// that stalls is retried after five.
			text += fmt.Sprintf("sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\n", Master, Master)
			// Sentinel rewrites its configuration file, so it is written
			// anew for every start.
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				tb.Fatal(err)
			}
			return []string{conf}
		}})
	st.client = redis.NewSentinelClient(&redis.Options{Addr: st.Sentinel.Addr(), Password: o.SentinelPassword, MaxRetries: -1})
	tb.Cleanup(func() { _ = st.client.Close() })
	// Sentinel learns of the replica from the primary's INFO.
	Eventually(tb, "sentinel knows the replica", func(ctx context.Context) error {
		rs, err := st.client.Replicas(ctx, Master).Result()
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r["port"] == strconv.Itoa(st.Replica.Port()) && r["flags"] == "slave" {
				return nil
			}
		}
		return fmt.Errorf("sentinel's replicas of %s: %v", Master, rs)
	})
	return st
}

// Sync waits until the replica has every write the primary took so far:
// replication is asynchronous, and a write it lacks is lost with the
// primary.
func (st *Sentinel) Sync() {
	st.tb.Helper()
	Eventually(st.tb, "the replica to acknowledge the primary's writes", func(ctx context.Context) error {
		n, err := st.Primary.Client().Do(ctx, "wait", 1, 1000).Int()
		if err == nil && n != 1 {
			err = fmt.Errorf("WAIT 1 1000 = %d", n)
		}
		return err
	})
}

// KillPrimary kills the primary (a crash), which makes the sentinel fail
// over to the replica; WaitPromoted waits for that.
func (st *Sentinel) KillPrimary() { st.Primary.Stop() }

// WaitPromoted waits until the sentinel names the former replica as the
// primary and it acts as one.
func (st *Sentinel) WaitPromoted() {
	st.tb.Helper()
	want := strconv.Itoa(st.Replica.Port())
	Eventually(st.tb, "the replica to be promoted", func(ctx context.Context) error {
		addr, err := st.client.GetMasterAddrByName(ctx, Master).Result()
		if err != nil {
			return err
		}
		if len(addr) != 2 || addr[1] != want {
			return fmt.Errorf("the sentinel names %v as %s's primary, not the former replica (port %s)", addr, Master, want)
		}
		info, err := st.Replica.Client().Info(ctx, "replication").Result()
		if err == nil && !strings.Contains(info, "role:master") {
			err = fmt.Errorf("the former replica is no primary yet:\n%s", info)
		}
		return err
	})
}
