package rawblock

import (
	"fmt"
	"math"
	"time"
)

// A region goes free → open → sealed → reclaiming → free. One open region per class receives
// appends (hot: Put and Delete; cold: reinsertions and the tombstones reclaim keeps). Space and
// sequence numbers are handed out together under Engine.mu, so within a region offsets grow
// with sequence numbers and the entries up to any sequence number form a prefix of the region
// once every write up to it has completed (what Sync waits for). A region whose write failed,
// or that is full, is sealed: once its writes in flight are done, the device is flushed and
// its summary written at its tail.

// slot is space handed out for one entry.
type slot struct {
	r      *region
	off    int64  // within the region
	ticket uint64 // the write's place in the order of writes (what Sync waits for)
	seq    uint64 // the entry's sequence number: the ticket, or an older one a kept tombstone carries
	rec    int    // index in r.recs
}

// nextSeqLocked hands out a sequence number and records it as in flight.
func (e *Engine) nextSeqLocked() uint64 {
	e.seq++
	e.inflight[e.seq] = false
	return e.seq
}

func (r *region) fits(total int64, sumLen int, regSize, bs int64) bool {
	return r.next+total+summaryAreaLen(r.sumBody+int64(sumLen), bs) <= regSize
}

// maxEntry reports whether an entry of total bytes with a summary record of sumLen bytes can
// ever fit in a region.
func (e *Engine) maxEntry(total int64, sumLen int) bool {
	return e.bs+total+summaryAreaLen(int64(sumLen), e.bs) <= e.regSize
}

// alloc reserves total bytes for rec in the open region of class c, opening a region when
// needed. Writers of fresh entries wait (up to WaitTimeout) while free regions are down to
// the reserve, which only reclaim (internal) may use.
func (e *Engine) alloc(c Class, total int64, rec record, internal bool) (slot, error) {
	var deadline time.Time
	var opened []*region
	e.mu.Lock()
	for {
		if e.closed {
			e.mu.Unlock()
			return slot{}, ErrClosed
		}
		if i := e.open[c]; i >= 0 {
			r := e.regions[i]
			if r.fits(total, rec.sumLen(), e.regSize, e.bs) {
				s := e.appendLocked(r, total, rec)
				e.mu.Unlock()
				// A failed header write fails the region (sealed, later Sync puts in it
				// refused), not this entry.
				_ = e.writeRegionHeaders(opened)
				return s, nil
			}
			e.sealLocked(r)
		}
		r := e.takeFreeLocked(internal)
		if r != nil {
			e.openLocked(r, c)
			opened = append(opened, r)
			continue
		}
		e.kickReclaim()
		if internal {
			e.mu.Unlock()
			return slot{}, e.writeErr(ErrNoSpace, e.writeRegionHeaders(opened))
		}
		now := time.Now()
		if deadline.IsZero() {
			wait := e.opt.WaitTimeout
			if e.reclaimFailing.Load() || e.writeFailing.Load() {
				// Writes or reclaims fail on I/O errors: give the reclaim
				// just kicked a moment, not the writer's whole patience.
				wait = min(wait, 100*time.Millisecond)
			}
			deadline = now.Add(wait)
			t := time.AfterFunc(wait, func() {
				e.mu.Lock()
				e.cond.Broadcast()
				e.mu.Unlock()
			})
			defer t.Stop()
		} else if !now.Before(deadline) {
			e.mu.Unlock()
			return slot{}, e.writeErr(ErrNoSpace, e.writeRegionHeaders(opened))
		}
		e.cond.Wait()
	}
}

func (e *Engine) writeErr(err, more error) error {
	if more != nil {
		return fmt.Errorf("%w (%v)", err, more)
	}
	return err
}

// appendLocked hands out space at r's tail. The entry's sequence number is the write's ticket
// unless rec carries one (a tombstone reclaim keeps, which must keep its own).
func (e *Engine) appendLocked(r *region, total int64, rec record) slot {
	s := slot{r: r, off: r.next, ticket: e.nextSeqLocked(), rec: len(r.recs)}
	if rec.seq == 0 {
		rec.seq = s.ticket
	}
	s.seq = rec.seq
	rec.off512 = uint32(s.off / 512)
	r.recs = append(r.recs, rec)
	r.next += total
	r.sumBody += int64(rec.sumLen())
	if r.minSeq == 0 || rec.seq < r.minSeq {
		r.minSeq = rec.seq
	}
	r.maxSeq = max(r.maxSeq, s.ticket)
	r.pending++
	return s
}

// takeFreeLocked returns a free region, keeping the last one for reclaim.
func (e *Engine) takeFreeLocked(internal bool) *region {
	if e.nfree == 0 || (!internal && e.nfree <= 1) {
		return nil
	}
	for _, r := range e.regions {
		if r.state == regionFree {
			e.nfree--
			if e.nfree < e.opt.FreeRegions {
				e.kickReclaim()
			}
			return r
		}
	}
	panic("BUG: rawblock: free region count out of step")
}

func (e *Engine) kickReclaim() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// openLocked makes r the open region of class c. Its header is written by the caller (after
// unlocking) under the ticket of its epoch.
func (e *Engine) openLocked(r *region, c Class) {
	r.state = regionOpen
	r.class = c
	r.epoch = e.nextSeqLocked()
	r.epochA.Store(r.epoch)
	r.next = e.bs
	r.sumBody = 0
	r.recs = nil
	r.minSeq, r.maxSeq = 0, 0
	r.pending = 1
	r.sealing, r.sumStarted, r.failed = false, false, false
	r.failOff = math.MaxInt64
	e.open[c] = r.idx
}

func (e *Engine) writeRegionHeaders(rs []*region) error {
	var first error
	for _, r := range rs {
		buf := e.getBuf()
		p := buf.Bytes()[:e.bs]
		clear(p)
		h := regionHeader{devID: e.devID, epoch: r.epoch, region: uint32(r.idx), class: r.class}
		h.encode(p)
		err := e.write(p, e.regionOff(r.idx), r.class)
		e.putBuf(buf)
		e.done(r, r.epoch, 0, -1, err == nil)
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// done records the completion of the write of ticket in r at off (rec its record, -1 for
// none).
func (e *Engine) done(r *region, ticket uint64, off int64, rec int, ok bool) {
	e.mu.Lock()
	delete(e.inflight, ticket)
	r.pending--
	if !ok {
		if rec >= 0 {
			r.recs[rec].flags |= recFailed
		}
		r.failOff = min(r.failOff, off)
		// Later entries of the region would sit behind a hole a scan stops at: seal it, so
		// the summary lists them.
		r.failed = true
		e.sealLocked(r)
	}
	e.maybeSummaryLocked(r)
	e.cond.Broadcast()
	e.mu.Unlock()
}

// sealLocked stops appends to r; its summary is written when its writes in flight are done.
func (e *Engine) sealLocked(r *region) {
	if r.sealing || r.state != regionOpen {
		return
	}
	r.sealing = true
	if e.open[r.class] == r.idx {
		e.open[r.class] = -1
	}
	r.sumTicket = e.nextSeqLocked()
	e.maybeSummaryLocked(r)
}

func (e *Engine) maybeSummaryLocked(r *region) {
	if r.sealing && r.pending == 0 && !r.sumStarted {
		r.sumStarted = true
		recs := make([]record, 0, len(r.recs))
		for _, rec := range r.recs {
			if rec.flags&recFailed == 0 {
				recs = append(recs, rec)
			}
		}
		go e.writeSummary(r, recs)
	}
}

// writeSummary seals r: it flushes the device (the entries must be durable before a summary
// vouches for them) and writes the summary at the region's tail.
func (e *Engine) writeSummary(r *region, recs []record) {
	err := e.dev.Flush()
	if err == nil {
		var body int64
		for i := range recs {
			body += int64(recs[i].sumLen())
		}
		area := make([]byte, summaryAreaLen(body, e.bs))
		encodeSummary(area, trailer{devID: e.devID, epoch: r.epoch}, recs)
		err = e.writeChunked(area, e.regionOff(r.idx)+e.regSize-int64(len(area)), ClassMeta)
	} else {
		e.c.ioErrs.Add(1)
	}
	if err != nil {
		// The region stays recoverable by a scan of its entries.
		e.log.Warn("rawblock: cannot write a region summary", "region", r.idx, "error", err)
	}
	e.mu.Lock()
	r.state = regionSealed
	r.recs = nil
	delete(e.inflight, r.sumTicket)
	e.cond.Broadcast()
	e.mu.Unlock()
}

// writeChunked writes p (heap memory) at off through the I/O buffers.
func (e *Engine) writeChunked(p []byte, off int64, c Class) error {
	buf := e.getBuf()
	defer e.putBuf(buf)
	for len(p) > 0 {
		n := copy(buf.Bytes(), p)
		if err := e.write(buf.Bytes()[:n], off, c); err != nil {
			return err
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// readChunked reads len(p) bytes at off into heap memory through the I/O buffers.
func (e *Engine) readChunked(p []byte, off int64) error {
	buf := e.getBuf()
	defer e.putBuf(buf)
	for len(p) > 0 {
		n := min(len(p), ioBufSize)
		if err := e.read(buf.Bytes()[:n], off); err != nil {
			return err
		}
		copy(p, buf.Bytes()[:n])
		p, off = p[n:], off+int64(n)
	}
	return nil
}

func (e *Engine) write(p []byte, off int64, c Class) error { return e.writeWith(p, off, c, nil) }

// writeWith is write, with the bytes moved by move when it is not nil (the device is then a
// CPUCopier: see WriteAtWith).
func (e *Engine) writeWith(p []byte, off int64, c Class, move func(dst, src []byte) bool) error {
	e.c.writes.Add(1)
	e.c.writeBytes.Add(uint64(len(p)))
	var err error
	if move != nil {
		err = e.cpu.WriteAtWith(p, off, c, move)
	} else {
		err = e.dev.WriteAt(p, off, c)
	}
	if err != nil {
		e.c.ioErrs.Add(1)
		e.writeFailing.Store(true)
		return fmt.Errorf("rawblock: cannot write %d bytes at %d: %w", len(p), off, err)
	}
	e.writeFailing.Store(false)
	return nil
}

func (e *Engine) read(p []byte, off int64) error { return e.readWith(p, off, nil) }

// readWith is read, with the bytes moved by move when it is not nil (the device is then a
// CPUCopier: see ReadAtWith).
func (e *Engine) readWith(p []byte, off int64, move func(dst, src []byte) bool) error {
	e.c.reads.Add(1)
	e.c.readBytes.Add(uint64(len(p)))
	var err error
	if move != nil {
		err = e.cpu.ReadAtWith(p, off, move)
	} else {
		err = e.dev.ReadAt(p, off)
	}
	if err != nil {
		e.c.ioErrs.Add(1)
		return fmt.Errorf("rawblock: cannot read %d bytes at %d: %w", len(p), off, err)
	}
	return nil
}

// readSummary returns the records of a sealed region from its summary.
func (e *Engine) readSummary(ri int, epoch uint64) ([]record, error) {
	end := e.regionOff(ri) + e.regSize
	buf := e.getBuf()
	last := buf.Bytes()[:e.bs]
	err := e.read(last, end-e.bs)
	var t trailer
	if err == nil {
		t, err = parseTrailer(last)
	}
	e.putBuf(buf)
	if err != nil {
		return nil, err
	}
	if t.devID != e.devID || t.epoch != epoch {
		return nil, fmt.Errorf("%w: summary of region %d belongs to another epoch", ErrCorrupt, ri)
	}
	n := summaryAreaLen(int64(t.bodyLen), e.bs)
	if n > e.regSize-e.bs {
		return nil, fmt.Errorf("%w: summary of region %d larger than the region", ErrCorrupt, ri)
	}
	area := make([]byte, n)
	if err := e.readChunked(area, end-n); err != nil {
		return nil, err
	}
	return parseSummary(area, t, e.regSize-n)
}
