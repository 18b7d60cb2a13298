package store

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kvresp/rawblock"
	"kvresp/slab"
	"kvresp/slab/dram"
	"kvresp/tiers"
)

type tiered struct {
	s     *Store
	arena *slab.Arena
	dram  *dram.Tier
	rb    *rawblock.Engine
	dev   rawblock.Device
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newTiered makes DRAM over a rawblock engine on an in-memory device.
func newTiered(t *testing.T, dramLimit int64, dev rawblock.Device, o Options) *tiered {
	t.Helper()
	a, dt := newDRAM(t, slab.Options{Limit: dramLimit, WaitTimeout: 2 * time.Second}, nil)
	if dev == nil {
		dev = rawblock.NewMemDevice(64<<20, 4096, false)
	}
	rb, err := rawblock.Open(rawblock.Options{Device: dev, Arena: a, RegionSize: 4 << 20, Logger: quiet, IOBuffers: 4, Sync: o.WriteThrough, EvictKeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	o.Tiers = []tiers.Tier{dt, rb}
	o.Logger = quiet
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	tr := &tiered{s: s, arena: a, dram: dt, rb: rb, dev: dev}
	t.Cleanup(func() { tr.close(t) })
	return tr
}

func (tr *tiered) close(t *testing.T) {
	if tr.s == nil {
		return
	}
	if err := tr.s.Close(); err != nil {
		t.Errorf("store close: %v", err)
	}
	if err := tr.dram.Check(); err != nil {
		t.Errorf("dram check: %v", err)
	}
	if err := tr.rb.Check(); err != nil {
		t.Errorf("rawblock check: %v", err)
	}
	_ = tr.dram.Close()
	_ = tr.rb.Close()
	if st := tr.arena.Stats(); st.InUse != 0 {
		t.Errorf("%d bytes in use after close: a reference leaked", st.InUse)
	}
	_ = tr.arena.Close()
	tr.s = nil
}

// set and get use the plain fixture's helpers on the tiered store.
func (tr *tiered) set(t *testing.T, k, v string) {
	t.Helper()
	(&fixture{s: tr.s, arena: tr.arena}).set(t, k, v, SetOptions{})
}

func (tr *tiered) get(t *testing.T, k string) (string, bool) {
	t.Helper()
	return (&fixture{s: tr.s, arena: tr.arena}).get(t, k)
}

func value(i, size int) string {
	p := fmt.Sprintf("value-%d-", i)
	return p + strings.Repeat("x", size-len(p))
}

// Evicting from DRAM demotes to the next tier: every value stays readable,
// DBSIZE counts each key once, and SCAN returns each key once.
func TestDemotionAndPromotion(t *testing.T) {
	tr := newTiered(t, 8<<20, nil, Options{Promote: true})
	const n, size = 20, 1 << 20
	for i := 0; i < n; i++ {
		tr.set(t, fmt.Sprint("k", i), value(i, size))
	}
	deadline := time.Now().Add(10 * time.Second)
	for tr.s.Stats().Demoted == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < n; i++ {
		if v, ok := tr.get(t, fmt.Sprint("k", i)); !ok || v != value(i, size) {
			t.Fatalf("k%d: ok=%v, value wrong=%v", i, ok, v != value(i, size))
		}
	}
	st := tr.s.Stats()
	if st.Demoted == 0 || st.Promoted == 0 {
		t.Fatalf("demoted %d, promoted %d: both should have happened", st.Demoted, st.Promoted)
	}
	if got := tr.s.Len(); got != n {
		t.Fatalf("Len = %d, want %d", got, n)
	}
	seen := map[string]int{}
	var c uint64
	for {
		c = tr.s.Scan(c, 5, func(k string, _ tiers.Meta) { seen[k]++ })
		if c == 0 {
			break
		}
	}
	if len(seen) != n {
		t.Fatalf("scan saw %d keys, want %d", len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Fatalf("scan returned %s %d times", k, c)
		}
	}
}

// An overwrite or delete of a key whose old value is being demoted wins:
// the old value never comes back from the lower tier.
func TestOverwriteBeatsDemotion(t *testing.T) {
	// The lower tier holds everything written (its reclaim would drop
	// live values, which a cache may, and which this test must not mistake
	// for a lost overwrite).
	tr := newTiered(t, 8<<20, rawblock.NewMemDevice(256<<20, 4096, false), Options{})
	const size = 1 << 20
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				k := fmt.Sprintf("w%d-k%d", w, i%5)
				tr.set(t, k, value(i, size))
				if i%7 == 0 {
					if _, err := tr.s.Delete(k); err != nil {
						t.Error(err)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	// Expected final state per key, from the last operation on it.
	for w := 0; w < 4; w++ {
		for j := 0; j < 5; j++ {
			last := -1
			deleted := false
			for i := 0; i < 30; i++ {
				if i%5 == j {
					last, deleted = i, i%7 == 0
				}
			}
			v, ok := tr.get(t, fmt.Sprintf("w%d-k%d", w, j))
			if deleted && ok {
				t.Fatalf("w%d-k%d: deleted value came back", w, j)
			}
			if !deleted && ok && v != value(last, size) {
				t.Fatalf("w%d-k%d: an older value came back", w, j)
			}
			// A live key may be missing only if a demotion was dropped or
			// failed (the cache lost it, which it may; it never serves an
			// older value).
			if st := tr.s.Stats(); !deleted && !ok && st.DemoteDropped == 0 && st.DemoteFailed == 0 {
				t.Fatalf("w%d-k%d: the last value is lost with no dropped or failed demotion", w, j)
			}
		}
	}
	if tr.s.Stats().Demoted == 0 {
		t.Fatal("nothing was demoted: the test did not race writes against demotions")
	}
	if n := tr.rb.EngineStats().Reclaims; n != 0 {
		t.Fatalf("the lower tier reclaimed %d regions: it is too small for this test", n)
	}
}

// With write-through every acknowledged SET is in the lower tier at once;
// Close writes the rest down, so a restart over the same device is warm.
func TestWriteThroughAndWarmRestart(t *testing.T) {
	dev := rawblock.NewMemDevice(64<<20, 4096, false)
	tr := newTiered(t, 64<<20, dev, Options{WriteThrough: true})
	tr.set(t, "a", "alpha")
	if _, ok, _ := tr.rb.Stat("a"); !ok {
		t.Fatal("write-through SET is not in the lower tier")
	}
	tr.close(t)
	trA := newTiered(t, 64<<20, rawblock.NewMemDeviceFrom(dev.Image(), 4096, false), Options{})
	if v, ok := trA.get(t, "a"); !ok || v != "alpha" {
		t.Fatalf("after restart a = %q, %v", v, ok)
	}

	dev2 := rawblock.NewMemDevice(64<<20, 4096, false)
	tr2 := newTiered(t, 64<<20, dev2, Options{})
	tr2.set(t, "b", "beta") // only in DRAM until Close writes it down
	tr2.close(t)
	tr3 := newTiered(t, 64<<20, rawblock.NewMemDeviceFrom(dev2.Image(), 4096, false), Options{})
	if v, ok := tr3.get(t, "b"); !ok || v != "beta" {
		t.Fatalf("after restart b = %q, %v", v, ok)
	}
	if ok, _ := tr3.s.Expire("b", tr3.s.Now()+100000, ExpireAlways); !ok {
		t.Fatal("EXPIRE on a lower-tier key failed")
	}
	if m, ok, _ := tr3.rb.Stat("b"); !ok || m.ExpireAt == 0 {
		t.Fatal("EXPIRE did not reach the lower tier")
	}
}

// I/O errors of the lower tier are counted and survived: reads of what it
// cannot read are misses, never wrong bytes, and the server keeps serving.
func TestLowerTierFaults(t *testing.T) {
	fd := rawblock.NewFaultDevice(rawblock.NewMemDevice(64<<20, 4096, false))
	tr := newTiered(t, 8<<20, fd, Options{})
	const n, size = 16, 1 << 20
	for i := 0; i < n; i++ {
		tr.set(t, fmt.Sprint("k", i), value(i, size))
	}
	deadline := time.Now().Add(10 * time.Second)
	for tr.s.Stats().Demoted < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	fd.Inject(rawblock.Fault{Op: rawblock.OpRead, Err: syscall.EIO})
	fd.Inject(rawblock.Fault{Op: rawblock.OpWrite, Err: syscall.ENOSPC})
	hits, misses := 0, 0
	for i := 0; i < n; i++ {
		b, ok, _ := tr.s.Get(fmt.Sprint("k", i))
		if !ok {
			misses++
			continue
		}
		if string(b.Bytes()) != value(i, size) {
			t.Fatalf("k%d: wrong bytes under I/O errors", i)
		}
		b.Release()
		hits++
	}
	if misses == 0 {
		t.Fatal("no read went to the failing tier: the test did not exercise it")
	}
	// Writes keep working in DRAM while the lower tier refuses them.
	for i := 0; i < n; i++ {
		tr.set(t, fmt.Sprint("new", i), value(i, size))
	}
	if tr.rb.Stats().Errors == 0 && tr.rb.EngineStats().IOErrors == 0 {
		t.Fatal("I/O errors were not counted")
	}
	fd.Clear()
	for tr.rb.Reclaim() {
		// Free the regions the faults kept from being reclaimed.
	}
	tr.set(t, "after", "ok")
	if v, ok := tr.get(t, "after"); !ok || v != "ok" {
		t.Fatal("store does not serve after the faults are gone")
	}
	t.Logf("under faults: %d hits, %d misses; store stats %+v", hits, misses, tr.s.Stats())
}
