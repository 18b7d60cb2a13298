package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"kvresp/tiers"
	"kvresp/tiers/uptest"
)

type upFixture struct {
	*fixture
	mem   *uptest.Memory
	proxy *tiers.Proxy
}

// newUpFixture is a DRAM tier of limit bytes over an in-memory upstream
// used in the given modes.
func newUpFixture(t *testing.T, limit int64, modes string, mods ...func(*Options)) *upFixture {
	t.Helper()
	m, err := ParseUpstreamModes(modes)
	if err != nil {
		t.Fatal(err)
	}
	u := &upFixture{}
	u.fixture = newFixtureWith(t, limit, func(f *fixture, o *Options) {
		u.mem = uptest.New(f.clock.Load)
		u.proxy = tiers.NewProxy(u.mem, tiers.ProxyOptions{Alloc: f.arena.Alloc, Timeout: 200 * time.Millisecond,
			Cooldown: 50 * time.Millisecond, MaxCooldown: 50 * time.Millisecond})
		o.Upstream, o.UpstreamModes = u.proxy, m
		for _, mod := range mods {
			mod(o)
		}
	})
	return u
}

// putUp stores a value upstream only.
func (u *upFixture) putUp(t *testing.T, k, v string, exp int64) {
	t.Helper()
	b := u.buf(t, v)
	defer b.Release()
	if err := u.mem.Put(context.Background(), k, tiers.Item{Buf: b, ExpireAt: exp}); err != nil {
		t.Fatal(err)
	}
}

func (u *upFixture) up(k string) (string, int64, bool) {
	v, exp, ok := u.mem.Value(k)
	return string(v), exp, ok
}

func TestParseUpstreamModes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "none"}, {"none", "none"}, {DefaultUpstreamModes, DefaultUpstreamModes},
		{" Write-Back , read-through", "read-through,write-back"},
		{"exists,del,write-through", "write-through,exists,del"},
	} {
		m, err := ParseUpstreamModes(c.in)
		if err != nil || m.String() != c.want {
			t.Errorf("%q: %v %v, want %s", c.in, m, err, c.want)
		}
	}
	for _, bad := range []string{"read", "write-through,write-through-async", "read-through,,exists"} {
		if _, err := ParseUpstreamModes(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseUpstreamModes(f *testing.F) {
	f.Add(DefaultUpstreamModes)
	f.Add("write-back,exists")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseUpstreamModes(s)
		if err != nil {
			return
		}
		again, err := ParseUpstreamModes(m.String())
		if err != nil || again != m {
			t.Fatalf("%q → %q → %v %v", s, m.String(), again, err)
		}
	})
}

func TestReadThrough(t *testing.T) {
	u := newUpFixture(t, 16<<20, "read-through")
	now := u.clock.Load()
	u.putUp(t, "k", "remote", now+60_000)
	u.putUp(t, "gone", "old", now+1)
	if v, ok := u.get(t, "k"); !ok || v != "remote" {
		t.Fatalf("GET = %q %v", v, ok)
	}
	// Admitted: the next read is local, and keeps the upstream's expiry.
	if v, ok := u.get(t, "k"); !ok || v != "remote" {
		t.Fatalf("second GET = %q %v", v, ok)
	}
	if n := u.mem.Calls("get"); n != 1 {
		t.Fatalf("%d upstream reads, want 1", n)
	}
	if m, ok, _ := u.tier.Stat("k"); !ok || m.ExpireAt != now+60_000 {
		t.Fatalf("local copy %+v %v", m, ok)
	}
	u.clock.Add(1)
	if _, ok := u.get(t, "gone"); ok {
		t.Fatal("an expired upstream value was served")
	}
	if _, ok := u.get(t, "absent"); ok {
		t.Fatal("hit on a key nobody has")
	}
	// Without the exists mode, EXISTS is local only.
	u.putUp(t, "only-up", "x", 0)
	if ok, _ := u.s.Exists("only-up"); ok {
		t.Fatal("EXISTS consulted the upstream without the exists mode")
	}
	if st := u.s.Stats().Upstream; st.Admitted != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWriteThroughSync(t *testing.T) {
	u := newUpFixture(t, 16<<20, "write-through,del,exists")
	exp := u.clock.Load() + 10_000
	u.set(t, "k", "v1", SetOptions{ExpireAt: exp})
	if v, e, ok := u.up("k"); !ok || v != "v1" || e != exp {
		t.Fatalf("upstream has %q %d %v", v, e, ok)
	}
	if ok, _ := u.s.Expire("k", exp+5000, ExpireAlways); !ok {
		t.Fatal("EXPIRE")
	}
	if _, e, _ := u.up("k"); e != exp+5000 {
		t.Fatalf("upstream expiry %d, want %d", e, exp+5000)
	}
	// An upstream failure does not fail the SET; it is counted.
	u.mem.SetFail(uptest.ErrDown)
	u.set(t, "k", "v2", SetOptions{})
	if v, ok := u.get(t, "k"); !ok || v != "v2" {
		t.Fatalf("local value %q %v", v, ok)
	}
	if st := u.s.Stats().Upstream; st.WriteFailed != 1 {
		t.Fatalf("stats %+v", st)
	}
	u.mem.SetFail(nil)
	if ok, _ := u.s.Delete("k"); !ok {
		t.Fatal("DEL found nothing")
	}
	// The breaker was open: that DEL could not reach the upstream, which
	// still has v1; one after the cooldown does.
	if _, _, ok := u.up("k"); !ok {
		t.Fatal("the upstream lost v1 while the breaker was open")
	}
	time.Sleep(60 * time.Millisecond)
	if ok, _ := u.s.Delete("k"); !ok {
		t.Fatal("DEL did not find the upstream's copy")
	}
	if _, _, ok := u.up("k"); ok {
		t.Fatal("DEL did not reach the upstream")
	}
	// EXISTS sees what only the upstream has; SET NX respects it.
	u.putUp(t, "theirs", "x", 0)
	if ok, _ := u.s.Exists("theirs"); !ok {
		t.Fatal("EXISTS missed an upstream key")
	}
	if r := u.set(t, "theirs", "y", SetOptions{Cond: IfAbsent}); r.Stored {
		t.Fatal("SET NX stored over an upstream key")
	}
}

func TestWriteThroughAsyncOrder(t *testing.T) {
	u := newUpFixture(t, 64<<20, "write-through-async")
	for i := range 200 {
		u.set(t, fmt.Sprintf("k%d", i%10), fmt.Sprintf("v%d", i), SetOptions{})
	}
	if err := u.s.Close(); err != nil {
		t.Fatal(err)
	}
	for k := range 10 {
		want := fmt.Sprintf("v%d", 190+k)
		if v, _, ok := u.up(fmt.Sprintf("k%d", k)); !ok || v != want {
			t.Fatalf("upstream k%d = %q %v, want %q: an older write landed last", k, v, ok, want)
		}
	}
	if st := u.s.Stats().Upstream; st.Dropped != 0 || st.Failed != 0 || st.Queued != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// With write-back, what DRAM evicts goes upstream and comes back by
// read-through; a value read through is not written back again.
func TestWriteBack(t *testing.T) {
	u := newUpFixture(t, 8<<20, "write-back,read-through")
	const n, size = 64, 512 << 10 // 32 MiB through an 8 MiB tier
	val := func(i int) string { return strings.Repeat(string(rune('a'+i%26)), size-8) + fmt.Sprintf("%08d", i) }
	for i := range n {
		u.set(t, fmt.Sprintf("k%d", i), val(i), SetOptions{})
	}
	for i := range n {
		if v, ok := u.get(t, fmt.Sprintf("k%d", i)); !ok || v != val(i) {
			t.Fatalf("k%d lost or wrong (%v)", i, ok)
		}
	}
	// Close writes back what DRAM still holds and drains the queue: every
	// value ends up upstream, each written once.
	if err := u.s.Close(); err != nil {
		t.Fatal(err)
	}
	st := u.s.Stats().Upstream
	if st.Dropped != 0 || st.Failed != 0 || st.Admitted == 0 || st.HeldSkips == 0 {
		t.Fatalf("stats %+v", st)
	}
	if puts := u.mem.Calls("put"); puts != st.Written || puts != n {
		t.Fatalf("%d upstream writes (%d written), want each of the %d keys once", puts, st.Written, n)
	}
	for i := range n {
		if v, _, ok := u.up(fmt.Sprintf("k%d", i)); !ok || v != val(i) {
			t.Fatalf("k%d is not upstream after Close (%v)", i, ok)
		}
	}
}

// With write-back and DRAM the only local tier, Close sends up what DRAM
// holds and the upstream does not, so a graceful shutdown loses nothing;
// what was written through is not written again.
func TestWriteBackAtClose(t *testing.T) {
	for _, modes := range []string{"write-back", "write-back,write-through"} {
		u := newUpFixture(t, 8<<20, modes)
		for i := range 4 {
			u.set(t, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i), SetOptions{})
		}
		before := u.mem.Calls("put")
		if err := u.s.Close(); err != nil {
			t.Fatal(err)
		}
		wantPuts := map[string]uint64{"write-back": 4, "write-back,write-through": 0}[modes]
		if puts := u.mem.Calls("put") - before; puts != wantPuts {
			t.Errorf("%s: %d upstream writes at Close, want %d", modes, puts, wantPuts)
		}
		for i := range 4 {
			if v, _, ok := u.up(fmt.Sprintf("k%d", i)); !ok || v != fmt.Sprintf("v%d", i) {
				t.Errorf("%s: k%d is not upstream after Close (%q, %v)", modes, i, v, ok)
			}
		}
		if err := u.s.Close(); err != nil || u.mem.Calls("put")-before != wantPuts {
			t.Errorf("%s: a second Close: %v, %d more writes", modes, err, u.mem.Calls("put")-before-wantPuts)
		}
	}
	// An upstream that fails the writes: Close says how many values it lost.
	u := newUpFixture(t, 8<<20, "write-back")
	for i := range 4 {
		u.set(t, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i), SetOptions{})
	}
	u.mem.SetFail(errors.New("upstream down"))
	if err := u.s.Close(); err == nil || !strings.Contains(err.Error(), "4 values did not reach the upstream") {
		t.Errorf("Close with the upstream failing: %v", err)
	}
}

// SET without write-through removes the upstream's older value with the
// del mode, so that read-through cannot bring it back.
func TestSetRemovesStaleUpstream(t *testing.T) {
	u := newUpFixture(t, 16<<20, "read-through,del")
	u.putUp(t, "k", "old", 0)
	u.set(t, "k", "new", SetOptions{})
	if _, _, ok := u.up("k"); ok {
		t.Fatal("the upstream kept the older value")
	}
	u.s.Flush() // local only: the upstream is never flushed
	if _, ok := u.get(t, "k"); ok {
		t.Fatal("a stale value came back")
	}
}

// An upstream that hangs costs the node one timeout; local keys are served
// throughout, and the node uses the upstream again once it is back.
func TestUpstreamOutage(t *testing.T) {
	u := newUpFixture(t, 16<<20, DefaultUpstreamModes)
	u.set(t, "local", "v", SetOptions{})
	u.mem.SetHang(true)
	for i := range 20 {
		if v, ok := u.get(t, "local"); !ok || v != "v" {
			t.Fatal("local key not served during the outage")
		}
		if _, ok := u.get(t, fmt.Sprintf("miss%d", i)); ok {
			t.Fatal("hit on a missing key")
		}
		u.set(t, fmt.Sprintf("new%d", i), "w", SetOptions{})
	}
	if n := u.mem.Calls("get"); n != 1 {
		t.Fatalf("%d upstream reads during the outage, want 1 (the breaker)", n)
	}
	// The asynchronous write of "local" may have been under way when the
	// upstream hung: one more timeout at most.
	ps := u.proxy.ProxyStats()
	if ps.Opens != 1 || ps.Skipped == 0 || ps.Timeouts > 2 || u.mem.Calls("put") > 1 {
		t.Fatalf("proxy stats %+v", ps)
	}
	u.mem.SetHang(false)
	u.putUp(t, "back", "b", 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if v, ok := u.get(t, "back"); ok && v == "b" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node did not use the upstream again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := u.proxy.ProxyStats(); st.Breaker != tiers.BreakerClosed {
		t.Fatalf("breaker %s", st.Breaker)
	}
	if err := u.s.Close(); err != nil && !errors.Is(err, tiers.ErrBreakerOpen) {
		t.Fatal(err)
	}
}

// A value read through while it streams: readers get it at once with its
// Fill, concurrent readers share the one transfer, and it is admitted once
// the transfer is over.
func TestReadThroughStream(t *testing.T) {
	u := newUpFixture(t, 16<<20, "read-through")
	val := strings.Repeat("0123456789abcdef", 4096) // 64 KiB: 16 chunks
	u.putUp(t, "k", val, 0)
	gate := make(chan struct{})
	u.mem.SetStream(true, gate, 0)

	buf, fill, ok, err := u.s.GetStream("k")
	if err != nil || !ok || fill == nil || buf.Len() != len(val) {
		t.Fatalf("GetStream = %v %v %v", ok, fill != nil, err)
	}
	if n, done, _ := fill.Wait(-1); n != 0 || done {
		t.Fatalf("filled %d (done %v) before the upstream sent anything", n, done)
	}
	// A second reader joins the transfer under way.
	buf2, fill2, ok, _ := u.s.GetStream("k")
	if !ok || fill2 != fill || buf2 != buf {
		t.Fatal("a concurrent GET did not share the transfer")
	}
	// A plain Get waits for the whole value.
	got := make(chan string)
	go func() { v, _ := u.get(t, "k"); got <- v }()
	// It has joined before the upstream sends anything (else it might
	// find the value admitted already).
	deadline := time.Now().Add(5 * time.Second)
	for u.s.Stats().Upstream.Joined < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the plain GET did not join the transfer")
		}
		time.Sleep(time.Millisecond)
	}
	for range len(val) / 4096 {
		gate <- struct{}{}
	}
	if v := <-got; v != val {
		t.Fatal("plain GET of a streamed value: wrong bytes")
	}
	if _, done, err := fill.Wait(len(val)); !done || err != nil || string(buf.Bytes()) != val {
		t.Fatalf("fill done %v err %v", done, err)
	}
	buf.Release()
	buf2.Release()
	waitAdmitted(t, u, 1)
	if n := u.mem.Calls("get"); n != 1 {
		t.Fatalf("%d upstream reads for three GETs", n)
	}
	if st := u.s.Stats().Upstream; st.Joined != 2 {
		t.Fatalf("stats %+v", st)
	}
	if v, ok := u.get(t, "k"); !ok || v != val {
		t.Fatal("the admitted value is wrong")
	}
}

func waitAdmitted(t *testing.T, u *upFixture, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for u.s.Stats().Upstream.Admitted < n {
		if time.Now().After(deadline) {
			t.Fatalf("admitted %d, want %d", u.s.Stats().Upstream.Admitted, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A SET while a value streams wins: the streamed (older) value is not
// admitted over it. A transfer that fails is not admitted either.
func TestReadThroughStreamCancelAndFail(t *testing.T) {
	u := newUpFixture(t, 16<<20, "read-through")
	old := strings.Repeat("o", 16<<10)
	u.putUp(t, "k", old, 0)
	gate := make(chan struct{})
	u.mem.SetStream(true, gate, 0)
	buf, fill, ok, _ := u.s.GetStream("k")
	if !ok || fill == nil {
		t.Fatal("no stream")
	}
	u.set(t, "k", "new", SetOptions{})
	close(gate)
	<-fill.Done()
	buf.Release()
	if err := u.s.Close(); err != nil { // waits for the transfer's end
		t.Fatal(err)
	}
	if v, _ := u.get(t, "k"); v != "new" {
		t.Fatalf("GET = %q: the older streamed value was admitted over a SET", v)
	}

	u2 := newUpFixture(t, 16<<20, "read-through")
	u2.putUp(t, "k", old, 0)
	u2.mem.SetStream(true, nil, 5000)
	buf, fill, ok, _ = u2.s.GetStream("k")
	if !ok || fill == nil {
		t.Fatal("no stream")
	}
	if _, done, err := fill.Wait(len(old)); !done || err == nil {
		t.Fatalf("broken transfer: done %v err %v", done, err)
	}
	buf.Release()
	if _, ok := u2.get(t, "k"); ok {
		t.Fatal("a plain GET served a broken transfer")
	}
	if err := u2.s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := u2.s.Stats().Upstream; st.Admitted != 0 {
		t.Fatalf("a broken transfer was admitted: %+v", st)
	}
	if _, ok, _ := u2.tier.Get("k"); ok {
		t.Fatal("DRAM holds a broken transfer")
	}
}

// A DEL or a write the upstream does not take must not let the older
// upstream value come back by read-through or EXISTS; the retrier deletes
// it once the upstream is back.
func TestStaleAfterOutage(t *testing.T) {
	// The retrier runs only when the test says (retryStaleOnce), so that
	// the reads below meet the old copies still upstream.
	u := newUpFixture(t, 16<<20, "read-through,write-through,exists,del", func(o *Options) { o.staleRetry = time.Hour })
	u.set(t, "gone", "old", SetOptions{})
	u.set(t, "changed", "v1", SetOptions{})
	u.mem.SetFail(uptest.ErrDown)
	if ok, _ := u.s.Delete("gone"); !ok {
		t.Fatal("DEL found nothing")
	}
	u.set(t, "changed", "v2", SetOptions{})
	u.s.Flush() // the local copies go; the upstream keeps v1 and old
	if st := u.s.Stats().Upstream; st.Stale != 2 {
		t.Fatalf("stats %+v", st)
	}
	u.mem.SetFail(nil)
	deadline := time.Now().Add(10 * time.Second)
	for u.proxy.ProxyStats().Breaker == tiers.BreakerOpen { // the cooldown
		if time.Now().After(deadline) {
			t.Fatal("the breaker stays open")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ok, _ := u.s.Exists("gone"); ok {
		t.Fatal("EXISTS found a deleted key upstream")
	}
	if v, ok := u.get(t, "changed"); ok {
		t.Fatalf("GET = %q: an older upstream value came back", v)
	}
	if n := u.mem.Len(); n != 2 {
		t.Fatalf("%d keys upstream; the stale copies (2) must still be there for the reads above to mean anything", n)
	}
	if st := u.s.Stats().Upstream; st.Stale != 2 {
		t.Fatalf("stats %+v", st)
	}
	u.s.retryStaleOnce()
	if n, st := u.mem.Len(), u.s.Stats().Upstream.Stale; n != 0 || st != 0 {
		t.Fatalf("the retrier left %d upstream keys, %d stale", n, st)
	}
	// The key is usable again: a new value written through is read back.
	u.set(t, "changed", "v3", SetOptions{})
	u.s.Flush()
	if v, ok := u.get(t, "changed"); !ok || v != "v3" {
		t.Fatalf("GET = %q %v", v, ok)
	}
}
