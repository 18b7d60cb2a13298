package slab

import "math/bits"

const (
	// largeAlign is the alignment and capacity granule of large buffers: O_DIRECT I/O and
	// io_uring fixed buffers need logical-block alignment, and 4 KiB covers every NVMe format.
	largeAlign = 4096
	// maxSmall is the largest size carved out of shared pages; anything bigger gets its own
	// mapping. 16 KiB keeps a page at 64 or more slots, and values this small are not KV chunks.
	maxSmall = 16 << 10
	// smallPageBytes is the mapping small classes carve slots from: big enough that 28-byte
	// metadata values cost no mapping each, small enough that an empty page is quickly returned.
	smallPageBytes = 1 << 20
	// smallGrain is the alignment of small slots (and so of every small size).
	smallGrain = 16
	// maxSpare bounds the pooled Buf structs kept per small class.
	maxSpare = 1024
)

// smallSizes are the small classes: 16-byte steps to 128, then four steps per doubling
// (×1.25, ×1.5, ×1.75, ×2), so a value wastes at most 20% of its slot beyond 128 bytes.
var smallSizes = func() []int {
	s := []int{32, 48, 64, 80, 96, 112, 128}
	for p := 128; p < maxSmall; p *= 2 {
		s = append(s, p*5/4, p*6/4, p*7/4, p*2)
	}
	return s
}()

const numSmall = 35 // len(smallSizes); checked in init

// smallTable maps ceil(n/smallGrain) to the index of the smallest class holding n bytes.
var smallTable [maxSmall/smallGrain + 1]uint8

func init() {
	if len(smallSizes) != numSmall {
		panic("BUG: slab: numSmall does not match smallSizes")
	}
	c := 0
	for i := range smallTable {
		for smallSizes[c] < i*smallGrain {
			c++
		}
		smallTable[i] = uint8(c)
	}
}

func smallIndex(n int) int { return int(smallTable[(n+smallGrain-1)/smallGrain]) }

// class is one size class. Small classes hold pages of slots; large classes hold one mapping per
// buffer. All fields are guarded by Arena.mu.
type class struct {
	size    int // capacity of each buffer
	isSmall bool
	inuse   int // buffers handed out
	pending int // mappings being created outside the lock

	// Large classes.
	free []*Buf // cached, refs == 0
	all  []*Buf // every buffer of the class, free or in use; Buf.idx is its position

	// Small classes.
	slots, pageBytes int
	pages            []*page // every page; page.idx is its position
	avail            []*page // pages with a free slot; page.aidx is its position, -1 if absent
	nfree            int     // free slots over all pages
	spare            []*Buf  // pooled Buf structs, so a tiny Alloc makes no garbage
}

// page is a small class's mapping, cut into slots.
type page struct {
	mem   []byte
	free  []uint64 // bit i set: slot i is free
	nfree int
	hint  int // every word of free before hint is zero
	idx   int
	aidx  int
}

func (c *class) initSmall(size int) {
	c.size = size
	c.isSmall = true
	c.slots = smallPageBytes / size
	c.pageBytes = c.slots * size
}

func (c *class) addPage(mem []byte) {
	p := &page{mem: mem, free: make([]uint64, (c.slots+63)/64), nfree: c.slots, idx: len(c.pages), aidx: len(c.avail)}
	for i := range p.free {
		p.free[i] = ^uint64(0)
	}
	if r := c.slots % 64; r != 0 {
		p.free[len(p.free)-1] = 1<<r - 1
	}
	c.pages = append(c.pages, p)
	c.avail = append(c.avail, p)
	c.nfree += c.slots
}

// removePage forgets a page and returns its mapping.
func (c *class) removePage(p *page) []byte {
	last := c.pages[len(c.pages)-1]
	c.pages[p.idx], last.idx = last, p.idx
	c.pages[len(c.pages)-1] = nil
	c.pages = c.pages[:len(c.pages)-1]
	if p.aidx >= 0 {
		c.removeAvail(p)
	}
	c.nfree -= p.nfree
	mem := p.mem
	p.mem = nil
	return mem
}

func (c *class) removeAvail(p *page) {
	last := c.avail[len(c.avail)-1]
	c.avail[p.aidx], last.aidx = last, p.aidx
	c.avail[len(c.avail)-1] = nil
	c.avail = c.avail[:len(c.avail)-1]
	p.aidx = -1
}

// takeSmall hands out a free slot, or nil. It takes from the page that most recently gained a
// free slot, which tends to fill nearly full pages and leave others to empty out.
func (c *class) takeSmall(a *Arena) *Buf {
	if len(c.avail) == 0 {
		return nil
	}
	p := c.avail[len(c.avail)-1]
	slot := -1
	for w := p.hint; w < len(p.free); w++ {
		if x := p.free[w]; x != 0 {
			i := bits.TrailingZeros64(x)
			p.free[w] = x &^ (1 << i)
			p.hint = w
			slot = w*64 + i
			break
		}
	}
	if slot < 0 {
		panic("BUG: slab: page on the available list has no free slot")
	}
	p.nfree--
	c.nfree--
	if p.nfree == 0 {
		c.removeAvail(p)
	}
	var b *Buf
	if k := len(c.spare); k > 0 {
		b = c.spare[k-1]
		c.spare[k-1] = nil
		c.spare = c.spare[:k-1]
	} else {
		b = &Buf{a: a, c: c}
	}
	off := slot * c.size
	b.page, b.slot = p, slot
	b.data = p.mem[off : off+c.size : off+c.size]
	return b
}

// putSmall returns b's slot to its page and pools b.
func (c *class) putSmall(b *Buf) {
	p := b.page
	w, bit := b.slot/64, uint64(1)<<(b.slot%64)
	if p.free[w]&bit != 0 {
		panic("BUG: slab: slot freed twice")
	}
	p.free[w] |= bit
	if w < p.hint {
		p.hint = w
	}
	p.nfree++
	c.nfree++
	if p.aidx < 0 {
		p.aidx = len(c.avail)
		c.avail = append(c.avail, p)
	}
	b.page, b.data, b.n = nil, nil, 0
	if len(c.spare) < maxSpare {
		c.spare = append(c.spare, b)
	}
}

func (c *class) addLarge(b *Buf) {
	b.idx = len(c.all)
	c.all = append(c.all, b)
}

// removeLarge forgets a large buffer and returns its mapping.
func (c *class) removeLarge(b *Buf) []byte {
	last := c.all[len(c.all)-1]
	c.all[b.idx], last.idx = last, b.idx
	c.all[len(c.all)-1] = nil
	c.all = c.all[:len(c.all)-1]
	mem := b.data
	b.data, b.free = nil, false
	return mem
}
