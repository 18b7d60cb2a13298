package slab

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// fill stamps b with tag where an overlapping buffer would clobber it: all of a small buffer, the
// ends of a large one.
func fill(b *Buf, tag byte) {
	p := b.Bytes()
	if len(p) <= 2*4096 {
		for i := range p {
			p[i] = tag
		}
		return
	}
	for i := range 4096 {
		p[i], p[len(p)-1-i] = tag, tag
	}
}

func verify(t *testing.T, b *Buf, tag byte) {
	p := b.Bytes()
	n := len(p)
	if n > 2*4096 {
		n = 4096
	}
	for i := range n {
		if p[i] != tag || p[len(p)-1-i] != tag {
			t.Errorf("buffer of %d bytes clobbered at %d: %d/%d, want %d", len(p), i, p[i], p[len(p)-1-i], tag)
			return
		}
	}
}

type item struct {
	b   *Buf
	tag byte
}

// tier is a toy DRAM tier: it holds a reference on each item, and evicts oldest first,
// preferring items of the asking class, as the real one does. Readers may hold their own
// references.
type tier struct {
	mu    sync.Mutex
	items []item
}

func (tr *tier) add(b *Buf, tag byte) {
	tr.mu.Lock()
	tr.items = append(tr.items, item{b, tag})
	tr.mu.Unlock()
}

func (tr *tier) reclaim(need int64, size int) int64 {
	var freed int64
	for freed < need {
		tr.mu.Lock()
		if len(tr.items) == 0 {
			tr.mu.Unlock()
			break
		}
		// Prefer an item of the asking class, as the DRAM tier does.
		j := 0
		for i, it := range tr.items {
			if it.b.ClassSize() == size {
				j = i
				break
			}
		}
		it := tr.items[j]
		tr.items = append(tr.items[:j], tr.items[j+1:]...)
		tr.mu.Unlock()
		freed += int64(it.b.ClassSize())
		it.b.Release()
	}
	return freed
}

// pin returns a random item with a reader's reference, or false.
func (tr *tier) pin(rng *rand.Rand) (item, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.items) == 0 {
		return item{}, false
	}
	it := tr.items[rng.IntN(len(tr.items))]
	it.b.Retain() // safe: the tier's reference is held while we hold its lock
	return it, true
}

func TestStress(t *testing.T) {
	const workers = 4
	iters := 600
	if testing.Short() {
		iters = 100
	}
	a := newArena(t, Options{Limit: 256 * MiB, WaitTimeout: time.Minute, ValueOffset: DefaultValueOffset})
	var tr tier
	a.SetReclaimer(tr.reclaim)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range iters {
				var n int
				switch r := rng.IntN(100); {
				case r < 50:
					n = rng.IntN(200) // metadata and small benchmark values
				case r < 70:
					n = rng.IntN(maxSmall + 1)
				case r < 95:
					n = maxSmall + 1 + rng.IntN(8*MiB)
				default:
					n = []int{8 * MiB, 32 * MiB}[rng.IntN(2)]
				}
				alloc := a.Alloc
				if i%2 == 0 {
					alloc = a.AllocValue // values mid-page, in classes shared with Alloc's
				}
				b, err := alloc(n)
				if err != nil {
					t.Errorf("Alloc(%d): %v", n, err)
					return
				}
				if b.Len() != n || b.Refs() != 1 {
					t.Errorf("Alloc(%d): len %d refs %d", n, b.Len(), b.Refs())
				}
				tag := byte(w*iters + i)
				fill(b, tag)
				if rng.IntN(3) == 0 {
					verify(t, b, tag)
					b.Release()
				} else {
					tr.add(b, tag)
				}
				if it, ok := tr.pin(rng); ok {
					verify(t, it.b, it.tag)
					it.b.Release()
				}
			}
		})
	}
	wg.Go(func() { // an operator and the index fiddling with the limit meanwhile
		rng := rand.New(rand.NewPCG(99, 42))
		for range iters / 10 {
			if err := a.SetLimit(int64(192+rng.IntN(65)) * MiB); err != nil {
				t.Error(err)
			}
			if err := a.Reserve(MiB); err != nil {
				t.Error(err)
				return
			}
			_ = a.Stats()
			a.Unreserve(MiB)
		}
	})
	wg.Wait()
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
	for _, it := range tr.items {
		verify(t, it.b, it.tag)
	}
	tr.reclaim(1<<62, 0)
	s := a.Stats()
	if s.InUse != 0 || s.Used != s.Cached || s.Allocs != s.Frees {
		t.Errorf("after releasing everything: %+v", s)
	}
	t.Logf("allocs %d reclaims %d waits %d unmaps %d classes %d", s.Allocs, s.Reclaims, s.Waits, s.Unmaps, len(s.Classes))
}
