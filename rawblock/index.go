package rawblock

import (
	"math/bits"
	"slices"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// The index maps a key's 64-bit hash to where its newest entry lives. It holds no Go pointers
// (the GC never scans it) and costs ≤ 32 bytes per entry: 1024 shards, each an open-addressing
// table of 24-byte slots (hash, two packed words) at a load factor kept between 0.76 and 0.86 by
// growing 12.5% at a time. Linear probing starts at a home slot that grows with the hash, and
// deletion shifts back (no tombstones). Each shard has its own mutex, held only for in-memory
// work; 1024 shards keep that work (and a growth) to a thousandth of the index.
//
// Keys are not stored: a read checks the key in the entry header, so a colliding or stale slot
// reads as a miss. Two keys with one hash share a slot (the later Put wins; the other key is lost,
// as if evicted).
const (
	shardBits  = 10
	numShards  = 1 << shardBits
	slotWords  = 3
	minSlots   = 8
	maxLoadNum = 86 // grow above 86% full
	maxLoadDen = 100
)

// Index value flags (4 bits).
const (
	ixAccess = 1 << 0 // read since written or last reclaimed
	ixTomb   = 1 << 1 // recovery only: a tombstone or an expired entry shadowing older ones
	ixInline = 1 << 2
)

// ival is an index value: where an entry lives and what Stat needs.
type ival struct {
	region   uint32 // < 2^20
	off512   uint32 // < 2^22: byte offset in the region / 512
	hk512    uint8  // < 2^6
	flags    uint8  // < 2^4
	vlen     int64  // < 2^34
	expireAt int64  // < 2^42 Unix ms (year 2109); later expiries are clamped
}

const maxExpire = 1<<42 - 1

func (v ival) pack() (w1, w2 uint64) {
	exp := uint64(min(v.expireAt, maxExpire))
	w1 = uint64(v.region)<<44 | uint64(v.off512)<<22 | uint64(v.hk512)<<16 | uint64(v.flags)<<12 | uint64(v.vlen)>>22&0xfff
	w2 = exp<<22 | uint64(v.vlen)&(1<<22-1)
	return
}

func unpack(w1, w2 uint64) ival {
	return ival{
		region: uint32(w1 >> 44), off512: uint32(w1 >> 22 & (1<<22 - 1)), hk512: uint8(w1 >> 16 & 63),
		flags: uint8(w1 >> 12 & 15), vlen: int64(w1&0xfff)<<22 | int64(w2&(1<<22-1)), expireAt: int64(w2 >> 22),
	}
}

func (v ival) sameLoc(o ival) bool { return v.region == o.region && v.off512 == o.off512 }

// keyHash is the index hash of key; 0 marks an empty slot, so it is never returned.
func keyHash(key string) uint64 {
	h := xxhash.Sum64String(key)
	if h == 0 {
		h = 1
	}
	return h
}

type shard struct {
	mu    sync.Mutex
	slots []uint64 // slotWords per slot: hash, w1, w2
	seqs  []uint64 // recovery only: the sequence number of each slot's entry
	n     int      // slots
	count int
	bytes int64 // value bytes of the entries (tombstones have none)
	_     [24]byte
}

type index struct {
	shards [numShards]shard
}

func newIndex() *index {
	x := &index{}
	for i := range x.shards {
		x.shards[i].init(minSlots)
	}
	return x
}

func (x *index) shard(h uint64) *shard { return &x.shards[h>>(64-shardBits)] }

func (s *shard) init(n int) {
	s.n = n
	s.slots = make([]uint64, n*slotWords)
	s.count, s.bytes = 0, 0
	if s.seqs != nil {
		s.seqs = make([]uint64, n)
	}
}

// home is h's first probe: the hash bits below the shard number, scaled to n (monotone in h).
func (s *shard) home(h uint64) int {
	hi, _ := bits.Mul64(h<<shardBits, uint64(s.n))
	return int(hi)
}

// find returns h's slot or -1.
func (s *shard) find(h uint64) int {
	for i := s.home(h); ; {
		switch s.slots[i*slotWords] {
		case h:
			return i
		case 0:
			return -1
		}
		if i++; i == s.n {
			i = 0
		}
	}
}

func (s *shard) val(i int) ival { return unpack(s.slots[i*slotWords+1], s.slots[i*slotWords+2]) }

func (s *shard) setVal(i int, v ival) {
	old := s.val(i)
	if old.flags&ixTomb == 0 {
		s.bytes -= old.vlen
	}
	s.slots[i*slotWords+1], s.slots[i*slotWords+2] = v.pack()
	if v.flags&ixTomb == 0 {
		s.bytes += v.vlen
	}
}

// put inserts or replaces h's value, returning the slot.
func (s *shard) put(h uint64, v ival) int {
	if i := s.find(h); i >= 0 {
		s.setVal(i, v)
		return i
	}
	if (s.count+1)*maxLoadDen > s.n*maxLoadNum {
		s.grow()
	}
	i := s.home(h)
	for s.slots[i*slotWords] != 0 {
		if i++; i == s.n {
			i = 0
		}
	}
	s.slots[i*slotWords] = h
	s.slots[i*slotWords+1], s.slots[i*slotWords+2] = 0, 0
	s.count++
	s.setVal(i, v)
	return i
}

func (s *shard) grow() {
	old, oldSeqs, oldN := s.slots, s.seqs, s.n
	s.init(max(minSlots, oldN+oldN/8+1))
	for i := 0; i < oldN; i++ {
		h := old[i*slotWords]
		if h == 0 {
			continue
		}
		j := s.put(h, unpack(old[i*slotWords+1], old[i*slotWords+2]))
		if oldSeqs != nil {
			s.seqs[j] = oldSeqs[i]
		}
	}
}

// remove empties slot i and shifts later entries of its probe run back.
func (s *shard) remove(i int) {
	if v := s.val(i); v.flags&ixTomb == 0 {
		s.bytes -= v.vlen
	}
	s.count--
	for {
		s.slots[i*slotWords] = 0
		j := i
		for {
			if j++; j == s.n {
				j = 0
			}
			h := s.slots[j*slotWords]
			if h == 0 {
				return
			}
			k := s.home(h)
			// The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
			if (j > i && (k <= i || k > j)) || (j < i && k <= i && k > j) {
				copy(s.slots[i*slotWords:i*slotWords+slotWords], s.slots[j*slotWords:j*slotWords+slotWords])
				if s.seqs != nil {
					s.seqs[i] = s.seqs[j]
				}
				i = j
				break
			}
		}
	}
}

// delAt removes h if it still lives at loc's place.
func (s *shard) delAt(h uint64, loc ival) bool {
	i := s.find(h)
	if i < 0 || !s.val(i).sameLoc(loc) {
		return false
	}
	s.remove(i)
	return true
}

// putSeq is recovery's upsert: the higher sequence wins, and at equal sequence a tombstone.
func (s *shard) putSeq(h uint64, v ival, seq uint64) {
	if i := s.find(h); i >= 0 {
		old := s.seqs[i]
		if seq < old || (seq == old && v.flags&ixTomb == 0) {
			return
		}
		s.setVal(i, v)
		s.seqs[i] = seq
		return
	}
	j := s.put(h, v)
	s.seqs[j] = seq
}

// scanItem is an index entry seen by Scan.
type scanItem struct {
	h uint64
	v ival
}

// collect appends the shard's live entries with hash ≥ from, sorted by hash.
func (s *shard) collect(from uint64, out []scanItem) []scanItem {
	start := len(out)
	s.mu.Lock()
	for i := 0; i < s.n; i++ {
		h := s.slots[i*slotWords]
		if h != 0 && h >= from {
			if v := s.val(i); v.flags&ixTomb == 0 {
				out = append(out, scanItem{h, v})
			}
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out[start:], func(a, b scanItem) int {
		if a.h < b.h {
			return -1
		}
		return 1
	})
	return out
}

// len returns the number of entries and their value bytes.
func (x *index) len() (n int, bytes int64) {
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.Lock()
		n += s.count
		bytes += s.bytes
		s.mu.Unlock()
	}
	return
}

// memBytes is the index's table memory.
func (x *index) memBytes() int64 {
	var b int64
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.Lock()
		b += int64(cap(s.slots))*8 + int64(cap(s.seqs))*8
		s.mu.Unlock()
	}
	return b
}

// remove drops h under its shard lock if it still lives at loc's place.
func (x *index) remove(h uint64, loc ival) bool {
	s := x.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delAt(h, loc)
}
