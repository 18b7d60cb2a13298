package redisup

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"kvresp/internal/redistest"
	"kvresp/tiers/uptest"
)

// The data nodes and the sentinel have different passwords, as the URL can say.
const (
	dataPassword     = "data-secret"
	sentinelPassword = "sentinel secret+&"
)

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
	st := redistest.StartSentinel(t, redistest.SentinelOptions{Password: dataPassword, SentinelPassword: sentinelPassword})

	// The first sentinel listed is down, and the master is named by master=: the
	// remaining one is found.
	down := redistest.FreePort(t)
	u := open(t, fmt.Sprintf("redis-sentinel://:%s@127.0.0.1:%d,%s/?master=%s&sentinel_password=%s",
		dataPassword, down, st.Sentinel.Addr(), redistest.Master, url.QueryEscape(sentinelPassword)))
	if u.Name() != "redis-sentinel" {
		t.Errorf("Name() = %q", u.Name())
	}
	a := uptest.Arena(t, 16<<20)
	ctx := t.Context()
	if err := u.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	uptest.Put(t, u, a, "before", []byte("written to the first primary"), 0)
	if port, err := servedBy(ctx, u); err != nil || port != st.Primary.Port() {
		t.Fatalf("served by port %d, %v; want the primary's, %d", port, err, st.Primary.Port())
	}
	st.Sync()

	st.KillPrimary()
	redistest.Eventually(t, "writing to the new primary", func(ctx context.Context) error {
		if err := uptest.TryPut(ctx, u, a, "after", []byte("written to the second primary"), 0); err != nil {
			return err
		}
		port, err := servedBy(ctx, u)
		if err == nil && port != st.Replica.Port() {
			err = fmt.Errorf("served by port %d, not the former replica's, %d", port, st.Replica.Port())
		}
		return err
	})
	for key, want := range map[string]string{"before": "written to the first primary", "after": "written to the second primary"} {
		if got, _, ok := uptest.Get(t, u, a, key); !ok || string(got) != want {
			t.Errorf("Get(%q) after the failover = %q, %v; want %q", key, got, ok, want)
		}
	}
	if got, err := st.Replica.Client().Get(ctx, "after").Result(); err != nil || got != "written to the second primary" {
		t.Errorf("the former replica has %q, %v", got, err)
	}
}
