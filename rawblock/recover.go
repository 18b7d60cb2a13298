package rawblock

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"kvresp/slab"
)

// Recovery reads each region's first and last block to classify it (sealed: valid trailer;
// open: valid header only; free: neither), takes a sealed region's entries from its summary
// (or, if the summary is damaged, from a scan) and an open region's from a scan that stops at
// the first entry whose header or checksum fails (the torn tail). Workers handle regions in
// parallel and merge into the index under its shard locks, the newest sequence winning and a
// tombstone (or an entry already expired) hiding older entries until a final sweep per shard
// removes them. Regions found open are then sealed: whatever lies past their torn tail (writes
// that were never acknowledged as durable) is never scanned again.

// regionScan is what recovery learns of one region.
type regionScan struct {
	state  regionState
	class  Class
	epoch  uint64
	recs   []record
	next   int64
	damage error
}

func (e *Engine) classify(ri int) (regionScan, error) {
	buf := e.getBuf()
	defer e.putBuf(buf)
	p := buf.Bytes()
	off := e.regionOff(ri)
	if err := e.read(p[:e.bs], off); err != nil {
		return regionScan{}, err
	}
	if err := e.read(p[e.bs:2*e.bs], off+e.regSize-e.bs); err != nil {
		return regionScan{}, err
	}
	h, herr := parseRegionHeader(p[:e.bs])
	hok := herr == nil && h.devID == e.devID && h.region == uint32(ri)
	t, terr := parseTrailer(p[e.bs : 2*e.bs])
	tok := terr == nil && t.devID == e.devID && (!hok || t.epoch >= h.epoch)
	rs := regionScan{class: ClassHot}
	if hok {
		rs.class = h.class
	}
	switch {
	case tok:
		rs.state, rs.epoch = regionSealed, t.epoch
	case hok:
		rs.state, rs.epoch = regionOpen, h.epoch
	default:
		return rs, nil
	}
	return rs, nil
}

// loadRegion classifies region ri and reads its records.
func (e *Engine) loadRegion(ri int) (regionScan, error) {
	rs, err := e.classify(ri)
	if err != nil || rs.state == regionFree {
		return rs, err
	}
	if rs.state == regionSealed {
		rs.recs, rs.damage = e.readSummary(ri, rs.epoch)
		if rs.damage == nil {
			return rs, nil
		}
		e.c.corrupt.Add(1)
		e.log.Warn("rawblock: damaged region summary, scanning the region instead", "region", ri, "error", rs.damage)
	}
	rs.recs, rs.next = e.scanRegion(ri, rs.epoch, e.arena)
	return rs, nil
}

// scanRegion walks a region's entries from its start, verifying each, and stops at the first
// that fails. It returns the records and the offset where it stopped. Its read-ahead window
// comes from a: reclaim passes its own arena (see Engine.rarena).
func (e *Engine) scanRegion(ri int, epoch uint64, a *slab.Arena) ([]record, int64) {
	var recs []record
	off := e.bs
	// Read the region ahead in large pieces: entry by entry, small
	// entries would be read one block at a time at queue depth 1.
	w := &window{e: e, arena: a, limit: e.regionOff(ri) + e.regSize}
	defer w.release()
	for off+e.bs <= e.regSize {
		rec, total, err := e.verifyAtWith(ri, off, epoch, w.read)
		if err != nil {
			break
		}
		recs = append(recs, rec)
		off += total
	}
	return recs, off
}

// windowSize is how much of a region a scan reads at once.
const windowSize = 4 << 20

// window serves a sequential scan's small reads from one large read.
type window struct {
	e          *Engine
	arena      *slab.Arena // where buf comes from; nil: no window, read as asked
	buf        *slab.Buf   // nil until the first read, or when none could be had
	start, n   int64       // device range held in buf
	limit      int64       // end of the region: never read past it
	unbuffered bool
}

func (w *window) read(p []byte, off int64) error {
	end := off + int64(len(p))
	if w.buf != nil && off >= w.start && end <= w.start+w.n {
		copy(p, w.buf.Bytes()[off-w.start:])
		return nil
	}
	if w.buf == nil && !w.unbuffered && w.arena != nil {
		b, err := w.arena.Alloc(windowSize)
		if err != nil {
			w.unbuffered = true
		} else {
			w.buf = b
		}
	}
	n := min(int64(windowSize), w.limit-off)
	if w.buf == nil || n < int64(len(p)) {
		return w.e.read(p, off)
	}
	if err := w.e.read(w.buf.Bytes()[:n], off); err != nil {
		w.n = 0
		return err
	}
	w.start, w.n = off, n
	copy(p, w.buf.Bytes()[:len(p)])
	return nil
}

func (w *window) release() {
	if w.buf != nil {
		w.buf.Release()
	}
}

// verifyAt reads and checks the whole entry at off in region ri, streaming large values
// through an I/O buffer.
func (e *Engine) verifyAt(ri int, off int64, epoch uint64) (record, int64, error) {
	return e.verifyAtWith(ri, off, epoch, e.read)
}

// verifyAtWith is verifyAt reading through read.
func (e *Engine) verifyAtWith(ri int, off int64, epoch uint64, read func(p []byte, off int64) error) (record, int64, error) {
	buf := e.getBuf()
	defer e.putBuf(buf)
	p := buf.Bytes()
	base := e.regionOff(ri)
	if err := read(p[:e.bs], base+off); err != nil {
		return record{}, 0, err
	}
	h, err := parseEntryHeader(p)
	if err != nil {
		return record{}, 0, err
	}
	if h.epoch != epoch {
		return record{}, 0, errStale
	}
	inline, hk, total := layout(h.keyLen, h.valueLen, e.bs)
	if inline != (h.flags&entryInline != 0) || off+total > e.regSize {
		return record{}, 0, fmt.Errorf("%w: entry layout at %d in region %d", ErrCorrupt, off, ri)
	}
	// An entry that fits in an I/O buffer is read whole; a larger one header and key first,
	// then its value one buffer, which is one piece of the checksum (hashPiece), at a time.
	first := hk
	if total <= ioBufSize {
		first = total
	}
	if first > e.bs {
		if err := read(p[:first], base+off); err != nil {
			return record{}, 0, err
		}
	}
	key := string(p[headerLen : headerLen+h.keyLen])
	d := newDigest(p, key)
	switch {
	case inline:
		d.add(p[headerLen+h.keyLen : int64(headerLen+h.keyLen)+h.valueLen])
	case total <= ioBufSize:
		d.add(p[hk : hk+h.valueLen])
	default:
		left := h.valueLen
		for pos := base + off + hk; left > 0; {
			n := min(roundUp64(left, e.bs), ioBufSize)
			if err := read(p[:n], pos); err != nil {
				return record{}, 0, err
			}
			d.add(p[:min(n, left)])
			left -= min(n, left)
			pos += n
		}
	}
	if d.sum != h.dataHash {
		return record{}, 0, fmt.Errorf("%w: entry at %d in region %d", ErrChecksum, off, ri)
	}
	rec := record{key: key, off512: uint32(off / 512), hk512: uint8(hk / 512), flags: h.flags, vlen: h.valueLen, seq: h.seq, expireAt: h.expireAt}
	return rec, total, nil
}

func (e *Engine) recover() error {
	n := int(e.sb.regionCount)
	e.regions = make([]*region, n)
	for i := range e.regions {
		e.regions[i] = &region{idx: i, failOff: math.MaxInt64}
	}
	for i := range e.idx.shards {
		e.idx.shards[i].seqs = make([]uint64, e.idx.shards[i].n)
	}
	scans := make([]regionScan, n)
	var maxSeq atomic.Uint64
	bump := func(s uint64) {
		for {
			m := maxSeq.Load()
			if s <= m || maxSeq.CompareAndSwap(m, s) {
				return
			}
		}
	}
	now := e.now()
	var next atomic.Int64
	var firstErr error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < e.opt.RecoveryWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ri := int(next.Add(1) - 1)
				if ri >= n {
					return
				}
				rs, err := e.loadRegion(ri)
				if err != nil {
					errMu.Lock()
					firstErr = fmt.Errorf("rawblock: cannot read region %d: %w", ri, err)
					errMu.Unlock()
					return
				}
				scans[ri] = rs
				bump(rs.epoch)
				for _, rec := range rs.recs {
					bump(rec.seq)
					v := ival{region: uint32(ri), off512: rec.off512, hk512: rec.hk512, vlen: rec.vlen, expireAt: min(rec.expireAt, maxExpire)}
					if rec.flags&entryInline != 0 {
						v.flags |= ixInline
					}
					if rec.flags&entryTombstone != 0 || (rec.expireAt != 0 && rec.expireAt <= now) {
						v.flags |= ixTomb
					}
					h := keyHash(rec.key)
					s := e.idx.shard(h)
					s.mu.Lock()
					s.putSeq(h, v, rec.seq)
					s.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	// Sweep: drop tombstones and expired entries, and recovery's sequence numbers.
	for i := range e.idx.shards {
		s := &e.idx.shards[i]
		s.mu.Lock()
		for j := 0; j < s.n; {
			if s.slots[j*slotWords] != 0 && s.val(j).flags&ixTomb != 0 {
				s.remove(j)
				continue
			}
			j++
		}
		s.seqs = nil
		s.mu.Unlock()
	}
	items, _ := e.idx.len()
	e.c.recovered.Store(uint64(items))

	e.mu.Lock()
	e.seq = maxSeq.Load()
	var toSeal []*region
	for i, rs := range scans {
		r := e.regions[i]
		r.state, r.class, r.epoch = rs.state, rs.class, rs.epoch
		r.epochA.Store(rs.epoch)
		if rs.state == regionFree {
			e.nfree++
			continue
		}
		for _, rec := range rs.recs {
			if r.minSeq == 0 || rec.seq < r.minSeq {
				r.minSeq = rec.seq
			}
			r.maxSeq = max(r.maxSeq, rec.seq)
			r.sumBody += int64(rec.sumLen())
		}
		r.maxSeq = max(r.maxSeq, r.epoch)
		if rs.state == regionOpen {
			r.recs, r.next = rs.recs, rs.next
			toSeal = append(toSeal, r)
		}
	}
	for _, r := range toSeal {
		e.sealLocked(r)
	}
	e.mu.Unlock()
	if len(toSeal) > 0 {
		e.log.Info("rawblock: sealing regions left open", "regions", len(toSeal))
	}
	return nil
}
