package rawblock

import (
	"kvresp/tiers"
)

// Reclaim frees whole regions, oldest first (FIFO by the last write: the sealed region with the
// smallest maxSeq). An entry of the victim that is still current is reinserted into the cold
// region if it was read since it was written (the index's access bit) and the budget allows,
// and dropped otherwise (offered to OnEvict). The region's header and trailer are then
// overwritten and made durable, its generation bumped (readers racing the reuse miss) and its
// range trimmed.
//
// Old versions never come back. Recovery keeps the newest sequence per key, so dropping the
// current entry of a key, or a tombstone, is safe only if no live region still holds an older
// entry of that key. Regions older than the victim are gone, but the cold region is written
// alongside the hot one, so another live region may hold entries older than some of the
// victim's. Reclaim therefore lists the keys of live regions whose smallest sequence is below
// the victim's largest, and for each such key (a few regions at most, usually the open cold
// one) keeps a tombstone: the victim's own tombstone is rewritten into the cold region with
// its sequence, and a dropped current entry leaves an eviction tombstone carrying the
// entry's sequence.
//
// What reclaim reads (a dropped value offered to OnEvict, an entry it reinserts) lands in the
// engine's own arena (Engine.rarena), never in Options.Arena: allocating there could make the
// tier above evict, and that tier's evictions wait for writers that wait for this reclaim. In
// its own arena reclaim waits at most for the tier below to write what it was handed, which
// never needs this reclaim.

type dropped struct {
	key string
	v   ival
}

func (e *Engine) reclaimLoop() {
	defer e.wg.Done()
	for {
		select {
		case <-e.stop:
			return
		case <-e.kick:
		}
		e.reclaimMu.Lock()
		for e.needReclaim() {
			if !e.reclaimOne() {
				break
			}
		}
		e.reclaimMu.Unlock()
	}
}

func (e *Engine) needReclaim() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.closed && e.nfree < e.opt.FreeRegions
}

// Reclaim reclaims the oldest sealed region now, reporting whether there was one. Reclaim runs
// on its own when free regions run low; this is for tests and tools.
func (e *Engine) Reclaim() bool { return e.reclaimOne() }

// WaitReclaim returns once reclaim has nothing left to do for the writes made so far: free
// regions are back at Options.FreeRegions (or nothing is left to reclaim) and no reclaim is
// under way, so that everything those reclaims dropped has been handed to OnEvict. Reclaim
// runs in the background, so a tier above that stops writing into this engine calls it before
// it stops taking what this engine evicts (store, when it closes): else what the last writes
// made reclaim evict would find nowhere to go.
func (e *Engine) WaitReclaim() {
	e.reclaimMu.Lock() // after the background loop's round, if one is under way
	defer e.reclaimMu.Unlock()
	for e.needReclaim() && e.reclaimOne() {
	}
}

func (e *Engine) reclaimOne() bool {
	e.inReclaim.Add(1)
	defer e.inReclaim.Add(-1)
	e.flushMu.RLock()
	defer e.flushMu.RUnlock()
	e.mu.Lock()
	var victim *region
	for _, r := range e.regions {
		if r.state == regionSealed && (victim == nil || r.maxSeq < victim.maxSeq) {
			victim = r
		}
	}
	if victim == nil || e.closed {
		e.mu.Unlock()
		return false
	}
	victim.state = regionReclaiming
	vmax, vepoch := victim.maxSeq, victim.epoch
	type other struct {
		idx   int
		epoch uint64
		recs  []record // open regions
		open  bool
	}
	var others []other
	for _, r := range e.regions {
		if r != victim && r.state != regionFree && r.minSeq != 0 && r.minSeq < vmax {
			o := other{idx: r.idx, epoch: r.epoch}
			if r.recs != nil {
				o.recs, o.open = append([]record(nil), r.recs...), true
			}
			others = append(others, o)
		}
	}
	onEvict := e.onEvict
	e.mu.Unlock()

	recs, err := e.readSummary(victim.idx, vepoch)
	if err != nil {
		e.c.corrupt.Add(1)
		e.log.Warn("rawblock: cannot read the summary of a region to reclaim; scanning it", "region", victim.idx, "error", err)
		recs, _ = e.scanRegion(victim.idx, vepoch, e.rarena)
		// A scan stops at the first entry that does not check (a failed or torn write);
		// entries written after it, by writers that raced the failure, are indexed all the
		// same. Find them in the index and reclaim them like the rest.
		recs = append(recs, e.strays(victim.idx, vepoch, recs)...)
	}
	older := make(map[uint64]uint64)
	for _, o := range others {
		ors := o.recs
		if !o.open {
			if ors, err = e.readSummary(o.idx, o.epoch); err != nil {
				ors, _ = e.scanRegion(o.idx, o.epoch, e.rarena)
			}
		}
		for _, r := range ors {
			if r.seq < vmax {
				h := keyHash(r.key)
				if s, ok := older[h]; !ok || r.seq < s {
					older[h] = r.seq
				}
			}
		}
	}
	hasOlder := func(h, seq uint64) bool { s, ok := older[h]; return ok && s < seq }

	budget := int64(0)
	if e.opt.ReinsertPercent > 0 {
		budget = e.regSize * int64(e.opt.ReinsertPercent) / 100
	}
	var drops []dropped
	keepFailed := false // a tombstone or the flush before retiring failed
	for _, rec := range recs {
		h := keyHash(rec.key)
		if rec.flags&entryTombstone != 0 {
			if hasOlder(h, rec.seq) {
				keepFailed = e.keepTombstone(rec.key, rec.seq) != nil || keepFailed
				e.c.tombsKept.Add(1)
			}
			continue
		}
		loc, ok := e.lookup(h, false)
		if !ok && hasOlder(h, rec.seq) {
			// Not indexed (expired at the last Open, or dropped after a
			// failed read) yet newer than a copy elsewhere: that copy must
			// not win once this region is gone.
			keepFailed = e.keepTombstone(rec.key, rec.seq) != nil || keepFailed
			e.c.evictTombs.Add(1)
		}
		if !ok || loc.region != victim.idx || loc.v.off512 != rec.off512 {
			continue // superseded
		}
		expired := e.expired(loc.v)
		_, _, total := layout(len(rec.key), rec.vlen, e.bs)
		if !expired && loc.v.flags&ixAccess != 0 && total <= budget && e.reinsert(h, rec.key, loc) {
			budget -= total
			continue
		}
		if !e.idx.remove(h, loc.v) {
			continue
		}
		if expired {
			e.c.expired.Add(1)
		} else {
			e.c.evictions.Add(1)
			drops = append(drops, dropped{rec.key, loc.v})
		}
		if hasOlder(h, rec.seq) {
			keepFailed = e.keepTombstone(rec.key, rec.seq) != nil || keepFailed
			e.c.evictTombs.Add(1)
		}
	}
	if err := e.dev.Flush(); err != nil { // reinsertions and tombstones before the victim goes
		e.c.ioErrs.Add(1)
		keepFailed = true
	}
	if keepFailed {
		// Retiring the victim now could let an older copy of a key win
		// at the next start: keep it sealed and try again later.
		e.log.Warn("rawblock: reclaim could not keep what the region holds; the region stays", "region", victim.idx)
		return e.abandonReclaim(victim)
	}
	if onEvict != nil && !e.opt.EvictKeysOnly {
		for _, d := range drops {
			loc := entryLoc{region: victim.idx, v: d.v, epoch: vepoch, gen: victim.gen.Load()}
			_, _, val, err := e.readEntry(loc, d.key, e.rarena)
			if err != nil {
				e.readFailed(keyHash(d.key), loc, err)
				continue
			}
			if after := onEvict(d.key, tiers.Item{Buf: val, ExpireAt: d.v.expireAt}); after != nil {
				after()
			}
			val.Release()
		}
	}
	if !e.retire(victim) {
		// Its old trailer may still be valid on the device: reusing the
		// region could let recovery take stale entries for live ones.
		return e.abandonReclaim(victim)
	}
	e.reclaimFailing.Store(false)
	e.mu.Lock()
	e.freeLocked(victim)
	e.mu.Unlock()
	e.c.reclaims.Add(1)
	if onEvict != nil && e.opt.EvictKeysOnly {
		for _, d := range drops {
			if after := onEvict(d.key, tiers.Item{ExpireAt: d.v.expireAt}); after != nil {
				after()
			}
		}
	}
	return true
}

// strays returns the entries the index places in region ri that recs does not list, as
// records read back from their headers (an entry whose header cannot be read is dropped from
// the index and counted). It walks the whole index: only for a region whose summary is lost.
func (e *Engine) strays(ri int, epoch uint64, recs []record) []record {
	listed := make(map[uint32]bool, len(recs))
	for _, r := range recs {
		listed[r.off512] = true
	}
	var out []record
	var items []scanItem
	for si := range e.idx.shards {
		items = e.idx.shards[si].collect(0, items[:0])
		for _, it := range items {
			if int(it.v.region) != ri || listed[it.v.off512] {
				continue
			}
			loc := entryLoc{region: ri, v: it.v, epoch: epoch, gen: e.regions[ri].gen.Load()}
			h, k, _, err := e.readEntry(loc, "", nil)
			if err != nil {
				e.readFailed(it.h, loc, err)
				e.idx.remove(it.h, it.v)
				continue
			}
			out = append(out, record{key: k, off512: it.v.off512, hk512: it.v.hk512, vlen: h.valueLen, seq: h.seq, expireAt: it.v.expireAt})
		}
	}
	return out
}

// abandonReclaim puts a victim that could not be reclaimed safely back among
// the sealed regions, for a later try, and reports false (no region freed).
func (e *Engine) abandonReclaim(victim *region) bool {
	e.reclaimFailing.Store(true)
	e.mu.Lock()
	victim.state = regionSealed
	e.cond.Broadcast()
	e.mu.Unlock()
	return false
}

// retire makes a region's end durable: header and trailer overwritten and flushed (so no
// recovery takes its stale bytes for a live region), generation bumped, range trimmed. It
// reports false, changing nothing else, when the overwrite could not be made durable.
func (e *Engine) retire(r *region) bool {
	buf := e.getBuf()
	p := buf.Bytes()[:e.bs]
	clear(p)
	off := e.regionOff(r.idx)
	err1 := e.write(p, off, ClassMeta)
	err2 := e.write(p, off+e.regSize-e.bs, ClassMeta)
	e.putBuf(buf)
	if err := e.dev.Flush(); err != nil || err1 != nil || err2 != nil {
		e.c.ioErrs.Add(1)
		e.log.Warn("rawblock: cannot invalidate a reclaimed region", "region", r.idx)
		return false
	}
	r.gen.Add(1)
	if err := e.dev.Trim(off, e.regSize); err != nil {
		e.c.ioErrs.Add(1)
	}
	e.c.trims.Add(1)
	return true
}

func (e *Engine) freeLocked(r *region) {
	r.state = regionFree
	r.recs = nil
	r.next, r.sumBody = 0, 0
	r.minSeq, r.maxSeq = 0, 0
	e.nfree++
	e.cond.Broadcast()
}

// keepTombstone writes a tombstone reclaim must keep into the cold region.
func (e *Engine) keepTombstone(key string, seq uint64) error {
	s, err := e.writeTombstone(key, seq, ClassCold, true)
	if s.r != nil {
		e.done(s.r, s.ticket, s.off, s.rec, err == nil)
	}
	if err != nil {
		e.c.errors.Add(1)
	}
	return err
}

// reinsert copies the current entry at loc into the cold region under a new sequence number.
// It gives up (the caller drops the entry) when the key's write lock is busy, since a writer
// holding it may be waiting for this very reclaim.
func (e *Engine) reinsert(h uint64, key string, loc entryLoc) bool {
	mu := e.stripe(h)
	if !mu.TryLock() {
		return false
	}
	defer mu.Unlock()
	if cur, ok := e.lookup(h, false); !ok || !cur.v.sameLoc(loc.v) {
		return false
	}
	hdr, _, val, err := e.readEntry(loc, key, e.rarena)
	if err != nil {
		e.readFailed(h, loc, err)
		return false
	}
	defer val.Release()
	inline, hk, total := layout(len(key), hdr.valueLen, e.bs)
	rec := record{key: key, hk512: uint8(hk / 512), vlen: hdr.valueLen, expireAt: loc.v.expireAt}
	if inline {
		rec.flags = entryInline
	}
	s, err := e.alloc(ClassCold, total, rec, true)
	if err != nil {
		return false
	}
	nh := entryHeader{keyLen: len(key), valueLen: hdr.valueLen, seq: s.seq, expireAt: rec.expireAt, epoch: s.r.epoch}
	err = e.writeEntry(s, ClassCold, key, nh, val.Bytes())
	moved := false
	if err == nil {
		v := loc.v
		v.region, v.off512, v.flags = uint32(s.r.idx), uint32(s.off/512), v.flags&^ixAccess
		sh := e.idx.shard(h)
		sh.mu.Lock()
		if i := sh.find(h); i >= 0 && sh.val(i).sameLoc(loc.v) {
			cur := sh.val(i)
			v.expireAt = cur.expireAt // SetExpire may have changed it meanwhile
			sh.setVal(i, v)
			moved = true
		}
		sh.mu.Unlock()
	}
	e.done(s.r, s.ticket, s.off, s.rec, err == nil)
	if moved {
		e.c.reinserts.Add(1)
		e.c.reinsertBytes.Add(uint64(total))
	}
	return moved
}
