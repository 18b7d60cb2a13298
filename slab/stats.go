package slab

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// Stats is a snapshot of an arena's accounting.
type Stats struct {
	Limit int64
	// Used = InUse + Cached + Reserved (+ mappings being created); it is what Limit bounds.
	Used                    int64
	InUse, Cached, Reserved int64 // bytes: capacity of buffers handed out, of cached free ones, and Reserve()d
	// Allocs and Frees count buffers handed out and returned; Reclaims counts calls to the
	// Reclaimer, Waits allocations that had to wait for a release, Unmaps mappings returned to
	// the kernel.
	Allocs, Frees, Reclaims, Waits, Unmaps uint64
	Classes                                []ClassStats // classes holding memory, by size
}

// ClassStats describes one size class. For small classes Free counts free slots in mapped pages.
type ClassStats struct {
	Size        int
	InUse, Free int
	Bytes       int64 // mapped bytes
}

// Stats returns a snapshot of the arena's accounting.
func (a *Arena) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Stats{
		Limit: a.limit, Used: a.used, InUse: a.inUse, Cached: a.cached, Reserved: a.reserved,
		Allocs: a.allocs, Frees: a.frees, Reclaims: a.reclaims, Waits: a.waits, Unmaps: a.unmaps,
	}
	for i := range a.small {
		c := &a.small[i]
		if len(c.pages) > 0 {
			s.Classes = append(s.Classes, ClassStats{Size: c.size, InUse: c.inuse, Free: c.nfree, Bytes: int64(len(c.pages) * c.pageBytes)})
		}
	}
	for _, c := range a.large {
		if len(c.all) > 0 {
			s.Classes = append(s.Classes, ClassStats{Size: c.size, InUse: c.inuse, Free: len(c.free), Bytes: int64(len(c.all) * c.size)})
		}
	}
	slices.SortFunc(s.Classes, func(x, y ClassStats) int { return x.Size - y.Size })
	return s
}

// Check verifies the arena's invariants: the accounting sums match the classes, no buffer or slot
// is both free and in use, reference counts are sane, and mappings are aligned. It is meant for
// tests, on an arena with no Alloc or Release in flight (a Release between its decrement and
// taking the lock would show as an in-use buffer with no references).
func (a *Arena) Check() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("slab: check: "+format, args...)) }
	var inUse, cached int64
	for i := range a.small {
		c := &a.small[i]
		var used, nfree int
		for j, p := range c.pages {
			if p.idx != j {
				bad("class %d: page %d has index %d", c.size, j, p.idx)
			}
			if len(p.mem) != c.pageBytes || Addr(p.mem)%largeAlign != 0 {
				bad("class %d: page %d has length %d at %#x, want %d bytes 4 KiB aligned", c.size, j, len(p.mem), Addr(p.mem), c.pageBytes)
			}
			n := 0
			for w, x := range p.free {
				n += bits.OnesCount64(x)
				if w < p.hint && x != 0 {
					bad("class %d: page %d has free slots before its search hint", c.size, j)
				}
			}
			if r := c.slots % 64; r != 0 && p.free[len(p.free)-1]>>r != 0 {
				bad("class %d: page %d marks slots past its end free", c.size, j)
			}
			if n != p.nfree {
				bad("class %d: page %d counts %d free slots, bitmap has %d", c.size, j, p.nfree, n)
			}
			if (p.nfree > 0) != (p.aidx >= 0) || p.aidx >= len(c.avail) || (p.aidx >= 0 && c.avail[p.aidx] != p) {
				bad("class %d: page %d with %d free slots is misplaced on the available list", c.size, j, p.nfree)
			}
			used += c.slots - p.nfree
			nfree += p.nfree
		}
		for j, p := range c.avail {
			if p.aidx != j || p.idx >= len(c.pages) || c.pages[p.idx] != p {
				bad("class %d: available page %d is not a live page", c.size, j)
			}
		}
		if used != c.inuse || nfree != c.nfree {
			bad("class %d: counts %d in use and %d free, pages hold %d and %d", c.size, c.inuse, c.nfree, used, nfree)
		}
		for _, b := range c.spare {
			if b.data != nil || b.page != nil {
				bad("class %d: pooled Buf still points at memory", c.size)
			}
		}
		inUse += int64(used * c.size)
		cached += int64(nfree * c.size)
	}
	nlarge := 0
	for size, c := range a.large {
		if c.size != size || c.isSmall || size%largeAlign != 0 || size <= maxSmall {
			bad("large class %d has size %d", size, c.size)
		}
		free := make(map[*Buf]bool, len(c.free))
		for _, b := range c.free {
			if free[b] {
				bad("class %d: buffer on the free list twice", size)
			}
			free[b] = true
			if !b.free {
				bad("class %d: buffer on the free list is marked in use", size)
			}
		}
		nused := 0
		for j, b := range c.all {
			if b.idx != j || b.c != c {
				bad("class %d: buffer %d has index %d", size, j, b.idx)
			}
			if len(b.data) != size || Addr(b.data)%largeAlign != 0 {
				bad("class %d: buffer %d has length %d at %#x, want 4 KiB aligned", size, j, len(b.data), Addr(b.data))
			}
			r := b.refs.Load()
			switch {
			case r < 0:
				bad("class %d: buffer %d has %d references", size, j, r)
			case b.free != free[b]:
				bad("class %d: buffer %d marked free=%v but on free list=%v", size, j, b.free, free[b])
			case b.free && r != 0:
				bad("class %d: free buffer %d has %d references", size, j, r)
			case !b.free && r == 0:
				bad("class %d: buffer %d in use with no references (leaked release?)", size, j)
			}
			if !b.free {
				nused++
			}
		}
		if nused != c.inuse || nused+len(c.free) != len(c.all) {
			bad("class %d: counts %d in use and %d free of %d buffers, found %d in use", size, c.inuse, len(c.free), len(c.all), nused)
		}
		inUse += int64(nused * size)
		cached += int64(len(c.free) * size)
		nlarge += len(c.all)
	}
	if len(a.spans) != nlarge {
		bad("%d large buffers but %d mappings indexed for MappingOf", nlarge, len(a.spans))
	}
	for i, s := range a.spans {
		if s.base != Addr(s.mem) || (i > 0 && a.spans[i-1].base+uintptr(len(a.spans[i-1].mem)) > s.base) {
			bad("mapping index entry %d at %#x is out of order or overlaps", i, s.base)
		}
	}
	if inUse != a.inUse || cached != a.cached {
		bad("accounting says %d in use and %d cached, classes hold %d and %d", a.inUse, a.cached, inUse, cached)
	}
	if a.reserved < 0 || a.pending < 0 || a.used != a.inUse+a.cached+a.reserved+a.pending {
		bad("used %d != in use %d + cached %d + reserved %d + pending %d", a.used, a.inUse, a.cached, a.reserved, a.pending)
	}
	if a.used > a.limit {
		// Partly used small pages cannot be unmapped; everything else cached should have been.
		for size, c := range a.large {
			if len(c.free) > 0 {
				bad("over the limit (%d > %d) while caching %d free buffers of class %d", a.used, a.limit, len(c.free), size)
			}
		}
		for i := range a.small {
			for _, p := range a.small[i].pages {
				if p.nfree == a.small[i].slots {
					bad("over the limit (%d > %d) while caching an empty page of class %d", a.used, a.limit, a.small[i].size)
				}
			}
		}
	}
	return errors.Join(errs...)
}
