package redisup

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"kvresp/internal/redistest"
	"kvresp/tiers/uptest"
)

func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	ctx := t.Context()
	// Odd keys, two on every node.
	keys := c.KeysOnEach(2, func(i int) string { return fmt.Sprintf("key %d/@%%\xff", i) })

	u := open(t, "redis-cluster://"+strings.Join(c.Addrs(), ","))
	if u.Name() != "redis-cluster" {
		t.Errorf("Name() = %q", u.Name())
	}
	if err := u.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	a := uptest.Arena(t, 16<<20)
	exp := time.Now().Add(time.Hour).UnixMilli()
	for node, ks := range keys {
		for i, key := range ks {
			val := []byte("value of " + key)
			e := int64(0)
			if i%2 == 0 {
				e = exp
			}
			uptest.Put(t, u, a, key, val, e)
			// The node owning the key's slot holds it.
			if got, err := node.Client().Get(ctx, key).Result(); err != nil || got != string(val) {
				t.Errorf("node %s: GET %q = %q, %v; want %q", node.Addr(), key, got, err, val)
			}
			// GET and PTTL in one pipeline, to the one node.
			got, gotExp, ok := uptest.Get(t, u, a, key)
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
	for node, ks := range keys {
		for _, key := range ks {
			if ok, err := u.Delete(ctx, key); err != nil || !ok {
				t.Errorf("Delete(%q) = %v, %v", key, ok, err)
			}
			if n, err := node.Client().Exists(ctx, key).Result(); err != nil || n != 0 {
				t.Errorf("node %s: EXISTS %q = %d, %v after Delete", node.Addr(), key, n, err)
			}
		}
	}
}
