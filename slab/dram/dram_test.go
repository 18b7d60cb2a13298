package dram

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kvresp/slab"
	"kvresp/tiers"
)

type clock struct{ ms atomic.Int64 }

func (c *clock) now() int64 { return c.ms.Load() }

// newTier makes an arena and a tier over it, checked and closed at cleanup.
func newTier(t *testing.T, limit int64, onEvict tiers.EvictFunc) (*Tier, *slab.Arena, *clock) {
	t.Helper()
	a, err := slab.New(slab.Options{Limit: limit, WaitTimeout: 200 * time.Millisecond, ValueOffset: slab.DefaultValueOffset})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	clk.ms.Store(1_000_000)
	tr, err := New(Options{Arena: a, OnEvict: onEvict, Now: clk.now, HZ: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Check(); err != nil {
			t.Errorf("tier check: %v", err)
		}
		_ = tr.Close()
		if st := a.Stats(); st.InUse != 0 || st.Reserved != 0 {
			t.Errorf("after Close: %d bytes in use, %d reserved", st.InUse, st.Reserved)
		}
		if err := a.Check(); err != nil {
			t.Errorf("arena check: %v", err)
		}
		_ = a.Close()
	})
	return tr, a, clk
}

func put(t *testing.T, tr *Tier, a *slab.Arena, key string, size int, fill byte, exp int64) {
	t.Helper()
	b, err := a.AllocValue(size) // as the server does
	if err != nil {
		t.Fatalf("alloc %s: %v", key, err)
	}
	copy(b.Bytes(), bytes.Repeat([]byte{fill}, size))
	if err := tr.Put(key, tiers.Item{Buf: b, ExpireAt: exp}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	b.Release()
}

func TestPutGetDelete(t *testing.T) {
	tr, a, _ := newTier(t, 64<<20, nil)
	put(t, tr, a, "k", 28, 'm', 0)
	it, ok, err := tr.Get("k")
	if err != nil || !ok || !bytes.Equal(it.Buf.Bytes(), bytes.Repeat([]byte("m"), 28)) {
		t.Fatalf("get = %v %v %v", it, ok, err)
	}
	it.Buf.Release()
	put(t, tr, a, "k", 1<<20, 'n', 0) // overwrite frees the old value
	if m, ok, _ := tr.Stat("k"); !ok || m.Size != 1<<20 {
		t.Fatalf("stat after overwrite = %v %v", m, ok)
	}
	if ok, _ := tr.Delete("k"); !ok {
		t.Fatal("delete of present key reported absent")
	}
	if ok, _ := tr.Delete("k"); ok {
		t.Fatal("second delete reported present")
	}
	if st := a.Stats(); st.InUse != 0 {
		t.Fatalf("%d bytes still in use after delete", st.InUse)
	}
}

func TestTTL(t *testing.T) {
	tr, a, clk := newTier(t, 64<<20, nil)
	put(t, tr, a, "lazy", 10, 'x', clk.now()+1000)
	put(t, tr, a, "keep", 10, 'x', 0)
	it, ok, _ := tr.Get("lazy")
	if !ok {
		t.Fatal("key gone before its expiry")
	}
	it.Buf.Release()
	clk.ms.Add(1000)
	if _, ok, _ := tr.Stat("lazy"); ok {
		t.Fatal("expired key still visible")
	}
	// Active expiry removes keys nobody reads.
	for i := 0; i < 100; i++ {
		put(t, tr, a, fmt.Sprint("v", i), 10, 'x', clk.now()+10)
	}
	clk.ms.Add(10)
	deadline := time.Now().Add(10 * time.Second)
	for tr.Len() > 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := tr.Len(); n != 1 {
		t.Fatalf("active expiry left %d items, want 1", n)
	}
	if st := tr.Stats(); st.Expired != 101 {
		t.Fatalf("expired = %d, want 101", st.Expired)
	}
}

// Filling past the limit evicts the least recently used items, offers each
// to OnEvict, and keeps what was read recently.
func TestEvictionLRU(t *testing.T) {
	var evicted []string
	var mu sync.Mutex
	tr, a, _ := newTier(t, 16<<20, func(key string, it tiers.Item) func() {
		mu.Lock()
		evicted = append(evicted, key)
		mu.Unlock()
		return nil
	})
	for i := 0; i < 3; i++ {
		put(t, tr, a, fmt.Sprint("k", i), 4<<20, byte(i), 0)
	}
	tr.Touch("k0") // k1 is now the least recently used
	put(t, tr, a, "k3", 4<<20, 3, 0)
	put(t, tr, a, "k4", 4<<20, 4, 0)
	mu.Lock()
	defer mu.Unlock()
	if len(evicted) == 0 || evicted[0] != "k1" {
		t.Fatalf("evicted %v, want k1 first", evicted)
	}
	if _, ok, _ := tr.Stat("k0"); !ok {
		t.Fatal("recently read k0 was evicted")
	}
}

// A reader keeps its buffer valid after the item is evicted; the memory
// comes back when it releases.
func TestEvictionWithPinnedReader(t *testing.T) {
	tr, a, _ := newTier(t, 12<<20, nil)
	put(t, tr, a, "a", 4<<20, 'a', 0)
	put(t, tr, a, "b", 4<<20, 'b', 0)
	it, ok, _ := tr.Get("a")
	if !ok {
		t.Fatal("a missing")
	}
	tr.Touch("b")
	put(t, tr, a, "c", 4<<20, 'c', 0) // evicts a, the oldest
	if _, ok, _ := tr.Stat("a"); ok {
		t.Fatal("a not evicted")
	}
	if !bytes.Equal(it.Buf.Bytes(), bytes.Repeat([]byte("a"), 4<<20)) {
		t.Fatal("pinned buffer changed under its reader")
	}
	done := make(chan error, 1)
	go func() {
		b, err := a.Alloc(4 << 20) // needs a's memory or another eviction
		if err == nil {
			b.Release()
		}
		done <- err
	}()
	it.Buf.Release()
	if err := <-done; err != nil {
		t.Fatalf("alloc after release: %v", err)
	}
}

// TestEvictionSameClass: a value evicted for a new one of its size class gives its buffer to it
// as it is, even though the older item of another class is a little older; values placed mid-page
// (slab.AllocValue) are classed by their buffers' class size, which is what the arena asks for.
func TestEvictionSameClass(t *testing.T) {
	tr, a, _ := newTier(t, 16<<20, nil)
	put(t, tr, a, "x", 2<<20, 'x', 0)
	for i := range 3 {
		put(t, tr, a, fmt.Sprint("y", i), 4<<20, 'y', 0)
	}
	put(t, tr, a, "y3", 4<<20, 'y', 0) // 2 + 4×4 MiB > 16 MiB: one must go
	if _, ok, _ := tr.Stat("x"); !ok {
		t.Error("the 2 MiB item was evicted for a 4 MiB one while a 4 MiB item almost as old was there")
	}
	if _, ok, _ := tr.Stat("y0"); ok {
		t.Error("y0, the oldest item of the class, is still there")
	}
	if st := a.Stats(); st.Unmaps != 0 {
		t.Errorf("%d mappings unmapped; the evicted buffer should have been reused", st.Unmaps)
	}
}

// When the workload's value size changes, memory moves to the new class:
// the old class's items are evicted and their buffers unmapped, so the new
// values fit (none is refused) and little memory stays in the old class.
func TestClassRebalancing(t *testing.T) {
	tr, a, _ := newTier(t, 64<<20, nil)
	for i := 0; i < 7; i++ {
		put(t, tr, a, fmt.Sprint("small", i), 8<<20, 's', 0)
	}
	for i := 0; i < 6; i++ {
		put(t, tr, a, fmt.Sprint("big", i), 20<<20, 'b', 0)
	}
	for i := 3; i < 6; i++ {
		if _, ok, _ := tr.Stat(fmt.Sprint("big", i)); !ok {
			t.Errorf("big%d missing after rebalancing", i)
		}
	}
	st := a.Stats()
	for _, c := range st.Classes {
		if c.Size == 8<<20 && c.Bytes > 8<<20 {
			t.Errorf("%d bytes still stranded in the 8 MiB class", c.Bytes)
		}
	}
	if st.Used > st.Limit {
		t.Errorf("used %d over the limit %d", st.Used, st.Limit)
	}
}

func TestScanReturnsEveryKeyOnce(t *testing.T) {
	tr, a, _ := newTier(t, 64<<20, nil)
	const n = 2000
	for i := 0; i < n; i++ {
		put(t, tr, a, fmt.Sprint("key:", i), 8, 'x', 0)
	}
	seen := map[string]int{}
	var cursor uint64
	extra := 0
	for {
		cursor = tr.Scan(cursor, 50, func(key string, _ tiers.Meta) { seen[key]++ })
		// Keys added and removed during the iteration must not disturb the
		// ones present throughout.
		put(t, tr, a, fmt.Sprint("extra:", extra), 8, 'y', 0)
		_, _ = tr.Delete(fmt.Sprint("extra:", extra-1))
		extra++
		if cursor == 0 {
			break
		}
	}
	for i := 0; i < n; i++ {
		if c := seen[fmt.Sprint("key:", i)]; c != 1 {
			t.Fatalf("key:%d returned %d times", i, c)
		}
	}
	if k, ok := tr.RandomKey(); !ok || k == "" {
		t.Fatal("RandomKey on a full tier found nothing")
	}
}

func TestFlushFreesMemory(t *testing.T) {
	tr, a, _ := newTier(t, 64<<20, nil)
	for i := 0; i < 10; i++ {
		put(t, tr, a, fmt.Sprint(i), 1<<20, 'x', 0)
	}
	tr.Flush()
	if tr.Len() != 0 {
		t.Fatal("items left after Flush")
	}
	if st := a.Stats(); st.InUse != 0 || st.Reserved != 0 {
		t.Fatalf("after flush: in use %d, reserved %d", st.InUse, st.Reserved)
	}
}

// TestConcurrentConsistency runs puts, gets, deletes, expiries and
// evictions from several goroutines and then checks every invariant. Values
// carry their key, so a reader would notice a buffer reused under it.
func TestConcurrentConsistency(t *testing.T) {
	tr, a, clk := newTier(t, 32<<20, nil)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 1))
			for i := 0; i < 2000; i++ {
				key := fmt.Sprint("k", rng.IntN(200))
				switch rng.IntN(6) {
				case 0, 1:
					size := []int{28, 300, 64 << 10, 1 << 20}[rng.IntN(4)]
					b, err := a.Alloc(size)
					if err != nil {
						t.Error(err)
						return
					}
					copy(b.Bytes(), key)
					var exp int64
					if rng.IntN(4) == 0 {
						exp = clk.now() + int64(rng.IntN(50))
					}
					if err := tr.Put(key, tiers.Item{Buf: b, ExpireAt: exp}); err != nil {
						t.Error(err)
					}
					b.Release()
				case 2, 3:
					if it, ok, _ := tr.Get(key); ok {
						if !bytes.HasPrefix(it.Buf.Bytes(), []byte(key)) && it.Buf.Len() >= len(key) {
							t.Errorf("value of %s holds %q", key, it.Buf.Bytes()[:len(key)])
						}
						it.Buf.Release()
					}
				case 4:
					_, _ = tr.Delete(key)
				case 5:
					clk.ms.Add(1)
					_, _ = tr.SetExpire(key, 0)
				}
			}
		}(uint64(w))
	}
	wg.Wait()
	if err := tr.Check(); err != nil {
		t.Fatal(err)
	}
}
