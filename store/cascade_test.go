package store

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"kvresp/rawblock"
	"kvresp/slab"
	"kvresp/slab/dram"
	"kvresp/tiers"
)

// threeTiers is DRAM over an NVMe-like log over a DAX-like log: rawblock engines on in-memory
// devices, sharing DRAM's 8 MiB arena as in the server. The middle log (24 MiB, regions of
// 2 MiB) hands what it reclaims down; the last (128 MiB) only says which keys it dropped.
type threeTiers struct {
	s         *Store
	f         *fixture
	arena     *slab.Arena
	dram      *dram.Tier
	nvme, dax *rawblock.Engine
	closed    bool
}

func newThreeTiers(t *testing.T) *threeTiers {
	t.Helper()
	a, dt := newDRAM(t, slab.Options{Limit: 8 << 20}, nil)
	nvme, err := rawblock.Open(rawblock.Options{Device: rawblock.NewMemDevice(24<<20, 4096, false), Arena: a,
		RegionSize: 2 << 20, IOBuffers: 4, FlushInterval: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	dax, err := rawblock.Open(rawblock.Options{Device: rawblock.NewMemDevice(128<<20, 4096, false), Arena: a,
		RegionSize: 4 << 20, IOBuffers: 4, FlushInterval: -1, EvictKeysOnly: true, Logger: quiet, Name: "dax"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Tiers: []tiers.Tier{dt, nvme, dax}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	tt := &threeTiers{s: s, f: &fixture{s: s, arena: a}, arena: a, dram: dt, nvme: nvme, dax: dax}
	t.Cleanup(func() { tt.closeStore(t); tt.closeTiers(t) })
	return tt
}

// closeStore closes the store (DRAM written down, demotions finished) and checks each tier.
func (tt *threeTiers) closeStore(t *testing.T) {
	if tt.closed {
		return
	}
	tt.closed = true
	if err := tt.s.Close(); err != nil {
		t.Errorf("store close: %v", err)
	}
	for _, c := range []interface{ Check() error }{tt.dram, tt.nvme, tt.dax} {
		if err := c.Check(); err != nil {
			t.Errorf("check: %v", err)
		}
	}
}

func (tt *threeTiers) closeTiers(t *testing.T) {
	if tt.arena == nil {
		return
	}
	_ = tt.dram.Close()
	_ = tt.nvme.Close()
	_ = tt.dax.Close()
	if st := tt.arena.Stats(); st.InUse != 0 {
		t.Errorf("%d bytes in use after close: a reference leaked", st.InUse)
	}
	_ = tt.arena.Close()
	tt.arena = nil
}

// fill writes n values of 1 MiB, k0 to k<n-1>, from four writers, so that evictions and
// demotions race the SETs (a value evicted while its own SET clears the tiers below goes down
// after it: see demoter.hold).
func (tt *threeTiers) fill(t *testing.T, n int) {
	const writers = 4
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				tt.f.set(t, fmt.Sprint("k", i), value(i, 1<<20), SetOptions{})
			}
		})
	}
	wg.Wait()
}

// noDrops fails the test if a demotion was dropped or failed.
func (tt *threeTiers) noDrops(t *testing.T, when string) {
	t.Helper()
	if st := tt.s.Stats(); st.DemoteDropped != 0 || st.DemoteFailed != 0 {
		t.Errorf("%s: demotions dropped %d, failed %d; want none", when, st.DemoteDropped, st.DemoteFailed)
	}
}

// TestThreeTiersNoDrops: DRAM full of values only it holds, and more values written than DRAM
// and the middle log hold, so that the middle log's reclaim sends values down to the last.
// That reclaim reads them into the engine's own buffers: read into DRAM's memory, they made
// DRAM evict into the demotion queue whose writers wait for that very reclaim, and evictions
// were dropped (or allocations failed) once the waits ran out. Nothing is dropped or fails,
// and every value reads back exact.
func TestThreeTiersNoDrops(t *testing.T) {
	tt := newThreeTiers(t)
	const n = 64
	tt.fill(t, n)
	// Let the queues drain before counting.
	for deadline := time.Now().Add(time.Minute); tt.s.dem.len() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	tt.noDrops(t, "after the writes")
	st := tt.s.Stats()
	if tt.nvme.EngineStats().Reclaims == 0 || st.Tiers[2].Items == 0 {
		t.Fatalf("the middle log reclaimed %d regions and the last holds %d items: the test does not exercise the cascade",
			tt.nvme.EngineStats().Reclaims, st.Tiers[2].Items)
	}
	for i := 0; i < n; i++ {
		if v, ok := tt.f.get(t, fmt.Sprint("k", i)); !ok || v != value(i, 1<<20) {
			t.Errorf("k%d: found %v, exact %v", i, ok, v == value(i, 1<<20))
		}
	}
}

// TestThreeTiersClose: Close writes DRAM down into a full middle log, whose reclaim, in the
// background, sends values on to the last; Close returns once they got there (the demoter lets
// the log it feeds finish reclaiming, rawblock.Engine.WaitReclaim, before it closes the
// boundary below), so that every value is in one of the two logs afterwards and none was
// dropped at a closed boundary.
func TestThreeTiersClose(t *testing.T) {
	tt := newThreeTiers(t)
	const n = 48
	tt.fill(t, n)
	tt.closeStore(t)
	tt.noDrops(t, "after Close")
	for i := 0; i < n; i++ {
		k := fmt.Sprint("k", i)
		found := false
		for _, e := range []*rawblock.Engine{tt.nvme, tt.dax} {
			it, ok, err := e.Get(k)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				found = found || string(it.Buf.Bytes()) == value(i, 1<<20)
				it.Buf.Release()
			}
		}
		if !found {
			t.Errorf("%s is in neither log after Close", k)
		}
	}
}
