package tiers_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"kvresp/slab"
	"kvresp/tiers"
	"kvresp/tiers/uptest"
)

func newProxy(t *testing.T, o tiers.ProxyOptions) (*tiers.Proxy, *uptest.Memory) {
	t.Helper()
	u := uptest.New(func() int64 { return time.Now().UnixMilli() })
	if o.Alloc == nil {
		o.Alloc = uptest.Arena(t, 64<<20).Alloc
	}
	return tiers.NewProxy(u, o), u
}

func put(t *testing.T, p *tiers.Proxy, a tiers.Alloc, key, val string) {
	t.Helper()
	b, err := a(len(val))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	copy(b.Bytes(), val)
	if err := p.Put(key, tiers.Item{Buf: b}); err != nil {
		t.Fatal(err)
	}
}

func TestProxyRoundTrip(t *testing.T) {
	a := uptest.Arena(t, 64<<20)
	p, _ := newProxy(t, tiers.ProxyOptions{Alloc: a.Alloc})
	put(t, p, a.Alloc, "k", "value")
	it, ok, err := p.Get("k")
	if err != nil || !ok || string(it.Buf.Bytes()) != "value" {
		t.Fatalf("Get = %v %v", ok, err)
	}
	it.Buf.Release()
	if m, ok, err := p.Stat("k"); err != nil || !ok || m.Size != 5 {
		t.Fatalf("Stat = %+v %v %v", m, ok, err)
	}
	if ok, err := p.Delete("k"); err != nil || !ok {
		t.Fatalf("Delete = %v %v", ok, err)
	}
	if _, ok, err := p.Get("k"); err != nil || ok {
		t.Fatalf("Get after Delete = %v %v", ok, err)
	}
	st := p.ProxyStats()
	if st.Calls != 5 || st.Errors != 0 || st.Breaker != tiers.BreakerClosed || st.LatencyCounts[len(st.LatencyCounts)-1] != 5 {
		t.Fatalf("stats %+v", st)
	}
	if s := p.Stats(); s.Hits != 1 || s.Misses != 1 || s.Puts != 1 || s.Deletes != 1 {
		t.Fatalf("tier stats %+v", s)
	}
}

// A failure that a retry gets past costs nothing but the retry.
func TestProxyRetries(t *testing.T) {
	p, u := newProxy(t, tiers.ProxyOptions{Retries: 2, Backoff: time.Millisecond})
	u.FailNext(2)
	if _, ok, err := p.Get("k"); err != nil || ok {
		t.Fatalf("Get = %v %v, want a miss after two retries", ok, err)
	}
	if st := p.ProxyStats(); st.Retries != 2 || st.Errors != 0 || st.Breaker != tiers.BreakerClosed {
		t.Fatalf("stats %+v", st)
	}
	u.FailNext(3)
	if _, _, err := p.Get("k"); !errors.Is(err, uptest.ErrDown) {
		t.Fatalf("Get = %v, want ErrDown after the retries ran out", err)
	}
	if got := u.Calls("get"); got != 6 {
		t.Fatalf("%d upstream calls, want 6", got)
	}
	if st := p.ProxyStats(); st.Errors != 1 || st.Other != 1 || st.Timeouts != 0 || st.Refused != 0 {
		t.Fatalf("a failure neither timed out nor refused is counted as other: %+v", st)
	}
}

// An upstream that hangs costs one timeout: the breaker opens, and the
// requests that follow do not reach it until the cooldown has passed; then
// one probe goes, and its success closes the breaker.
func TestProxyBreaker(t *testing.T) {
	const cooldown = 100 * time.Millisecond
	p, u := newProxy(t, tiers.ProxyOptions{Timeout: 50 * time.Millisecond, Cooldown: cooldown, MaxCooldown: cooldown})
	u.SetHang(true)
	if _, _, err := p.Get("k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want the deadline", err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := p.Get("k"); !errors.Is(err, tiers.ErrBreakerOpen) {
				t.Errorf("Get while open = %v", err)
			}
		}()
	}
	wg.Wait()
	if got := u.Calls("get"); got != 1 {
		t.Fatalf("%d upstream calls during the outage, want 1", got)
	}
	st := p.ProxyStats()
	if st.Opens != 1 || st.Skipped != 50 || st.Timeouts != 1 || st.Other != 0 || st.Errors != 1 || st.Breaker != tiers.BreakerOpen {
		t.Fatalf("stats %+v", st)
	}
	// Still down at the probe: open again.
	time.Sleep(cooldown)
	if _, _, err := p.Get("k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("probe = %v", err)
	}
	if st := p.ProxyStats(); st.Breaker != tiers.BreakerOpen || st.Opens != 1 {
		t.Fatalf("after a failed probe: %+v", st)
	}
	u.SetHang(false)
	time.Sleep(cooldown)
	if st := p.ProxyStats(); st.Breaker != tiers.BreakerHalfOpen {
		t.Fatalf("after the cooldown: %s", st.Breaker)
	}
	if _, ok, err := p.Get("k"); err != nil || ok {
		t.Fatalf("probe after recovery = %v %v", ok, err)
	}
	if st := p.ProxyStats(); st.Breaker != tiers.BreakerClosed {
		t.Fatalf("after a good probe: %s", st.Breaker)
	}
}

// What the node refuses (a value too large for it) says nothing about the
// upstream: no retry, no breaker.
func TestProxyRefusedKeepsBreakerClosed(t *testing.T) {
	a := uptest.Arena(t, 64<<20)
	p, _ := newProxy(t, tiers.ProxyOptions{Alloc: func(n int) (*slab.Buf, error) {
		return nil, tiers.ErrTooLarge
	}})
	put(t, p, a.Alloc, "k", "value")
	if _, _, err := p.Get("k"); !errors.Is(err, tiers.ErrRefused) {
		t.Fatalf("Get = %v, want ErrRefused", err)
	}
	if st := p.ProxyStats(); st.Breaker != tiers.BreakerClosed || st.Retries != 0 || st.Refused != 1 || st.Other != 0 || st.Errors != 1 {
		t.Fatalf("stats %+v", st)
	}
}
