package rawblock

import (
	"math/rand/v2"

	"kvresp/tiers"
)

// The keyspace is enumerated through the index in hash order; the index holds no keys, so each
// key returned costs one small read of its entry's header block (a few KiB) from the device.
// SCAN on this tier is therefore I/O bound, at about one block read per key.

// Len implements tiers.Keyspace (expired entries not yet reclaimed included).
func (e *Engine) Len() int {
	n, _ := e.idx.len()
	return n
}

// Scan implements tiers.Keyspace. The cursor is a key hash without its low 8
// bits (56 bits, so that store can name the tier in a SCAN cursor's high
// bits): entries come back in hash order, a group sharing those 56 bits is
// returned whole, and so an entry present for a whole iteration is returned
// exactly once whatever moves or grows meanwhile. Expired entries and
// entries whose header cannot be read are skipped.
func (e *Engine) Scan(cursor uint64, count int, fn func(key string, m tiers.Meta)) uint64 {
	const drop = 8
	if count <= 0 {
		count = 10
	}
	start := cursor << drop
	var items []scanItem
	next := uint64(0)
	for s := start >> (64 - shardBits); s < numShards; s++ {
		from := max(start, s<<(64-shardBits))
		got := e.idx.shards[s].collect(from, nil)
		if cut := count - len(items); len(got) > cut && cut >= 0 {
			cut = max(cut, 1)
			for cut < len(got) && got[cut].h>>drop == got[cut-1].h>>drop {
				cut++
			}
			if cut < len(got) {
				items = append(items, got[:cut]...)
				next = got[cut-1].h>>drop + 1
				break
			}
		}
		items = append(items, got...)
		next = (s + 1) << (64 - shardBits) >> drop // 0 after the last shard
		if len(items) >= count {
			break
		}
	}
	for _, it := range items {
		if e.expired(it.v) {
			continue
		}
		if k, ok := e.keyOf(it.h); ok {
			fn(k, tiers.Meta{Size: it.v.vlen, ExpireAt: it.v.expireAt})
		}
	}
	return next
}

// keyOf reads the key of h's entry from its header.
func (e *Engine) keyOf(h uint64) (string, bool) {
	loc, ok := e.lookup(h, false)
	if !ok {
		return "", false
	}
	_, k, _, err := e.readEntry(loc, "", nil)
	if err == nil && e.regions[loc.region].gen.Load() != loc.gen {
		err = errStale
	}
	if err != nil {
		e.readFailed(h, loc, err)
		return "", false
	}
	return k, true
}

// RandomKey implements tiers.Keyspace.
func (e *Engine) RandomKey() (string, bool) {
	for try := 0; try < 64; try++ {
		s := &e.idx.shards[rand.IntN(numShards)]
		s.mu.Lock()
		var h uint64
		if s.count > 0 {
			for i, j := rand.IntN(s.n), 0; j < s.n; j++ {
				if x := s.slots[((i+j)%s.n)*slotWords]; x != 0 && !e.expired(s.val((i+j)%s.n)) {
					h = x
					break
				}
			}
		}
		s.mu.Unlock()
		if h != 0 {
			if k, ok := e.keyOf(h); ok {
				return k, true
			}
		}
	}
	return "", false
}

// Flush implements tiers.Keyspace: every entry is dropped, every region invalidated (durably,
// so nothing comes back after a restart) and trimmed.
func (e *Engine) Flush() {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	e.mu.Lock()
	for len(e.inflight) > 0 { // summaries being written
		e.cond.Wait()
	}
	var live []*region
	for _, r := range e.regions {
		if r.state != regionFree {
			live = append(live, r)
		}
	}
	e.open = [numClasses]int{-1, -1, -1}
	e.mu.Unlock()
	for i := range e.idx.shards {
		s := &e.idx.shards[i]
		s.mu.Lock()
		s.init(minSlots)
		s.mu.Unlock()
	}
	for _, r := range live {
		e.retire(r)
	}
	e.mu.Lock()
	for _, r := range live {
		e.freeLocked(r)
	}
	e.mu.Unlock()
}
