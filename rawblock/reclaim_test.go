package rawblock

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"kvresp/slab"
	"kvresp/tiers"
)

// TestReclaimOwnBuffers: what reclaim reads, the values it offers to OnEvict and the entries it
// reinserts, lands in the engine's own buffers. With Options.Arena full and its Reclaimer (the
// DRAM tier's eviction, in the server, whose evictions may wait for this very reclaim) counting
// its calls, a reclaim that drops and reinserts entries never calls it, every dropped value
// reaches OnEvict exact, and the reinserted ones stay readable.
func TestReclaimOwnBuffers(t *testing.T) {
	a, err := slab.New(slab.Options{Limit: 4 << 20, WaitTimeout: 50 * time.Millisecond, ValueOffset: slab.DefaultValueOffset})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	var asked atomic.Int64
	a.SetReclaimer(func(int64, int) int64 { asked.Add(1); return 0 })
	evicted := map[string][]byte{} // OnEvict runs on the goroutine that calls Reclaim
	e := open(t, NewMemDevice(16<<20, 4096, false), a, func(o *Options) {
		o.OnEvict = func(key string, it tiers.Item) func() {
			evicted[key] = bytes.Clone(it.Buf.Bytes())
			return nil
		}
	})
	// Inline, small (one I/O, copied out) and large (read straight into the buffer) entries,
	// over more than one 1 MiB region.
	sizes := []int{28, 3000, 100 << 10, 200 << 10}
	const n = 24
	for i := 0; i < n; i++ {
		mustPut(t, e, a, key(i), value(sizes[i%len(sizes)], i))
	}
	// Read since written: reclaim reinserts them.
	wantValue(t, e, key(1), value(sizes[1], 1))
	wantValue(t, e, key(2), value(sizes[2], 2))

	// Fill the arena: every byte in use, nothing cached, so that any allocation from it must
	// ask the Reclaimer.
	st := a.Stats()
	fill, err := a.Alloc(int(st.Limit - st.InUse - st.Reserved))
	if err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Used != st.Limit || st.Cached != 0 {
		t.Fatalf("arena not full: %+v", st)
	}
	// A full region is sealed in the background (its summary written after a flush).
	deadline := time.Now().Add(10 * time.Second)
	for e.EngineStats().SealedRegions == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no region was sealed")
		}
		time.Sleep(time.Millisecond)
	}
	if !e.Reclaim() {
		t.Fatal("no region to reclaim")
	}
	if k := asked.Load(); k != 0 {
		t.Errorf("reclaim asked the arena's Reclaimer %d times: it allocated from the tier above's memory", k)
	}
	es := e.EngineStats()
	if es.Reinsertions == 0 || len(evicted) == 0 {
		t.Fatalf("reclaim reinserted %d entries and evicted %d: the test exercises neither path", es.Reinsertions, len(evicted))
	}
	if es.ReclaimBufferBytes == 0 || es.ReclaimBufferBytes > es.ReclaimBufferLimit {
		t.Errorf("reclaim buffers: %d bytes mapped, limit %d", es.ReclaimBufferBytes, es.ReclaimBufferLimit)
	}
	fill.Release()
	for i := 0; i < n; i++ {
		want := value(sizes[i%len(sizes)], i)
		if got, ok := evicted[key(i)]; ok {
			if !bytes.Equal(got, want) {
				t.Errorf("%s reached OnEvict with %d bytes that differ from the %d put", key(i), len(got), len(want))
			}
			continue
		}
		wantValue(t, e, key(i), want)
	}
	for _, i := range []int{1, 2} {
		if _, ok := evicted[key(i)]; ok {
			t.Errorf("%s was read since written, but reclaim dropped it", key(i))
		}
	}
}
