package rawblock

import (
	"errors"
	"fmt"
	"time"

	"kvresp/slab"
)

// Report is what Check finds on a device.
type Report struct {
	BlockSize, RegionSize int64
	Regions               int
	Created               time.Time
	SuperCopies           [2]error // nil when the copy is valid
	Free, Open, Sealed    int
	Entries, Tombstones   int   // valid entries (summaries or scans), all versions
	ValueBytes            int64 // of valid entries
	Corruptions           []Corruption
}

// Corruption is one damaged record found by Check.
type Corruption struct {
	Region int   // -1 for a superblock copy
	Offset int64 // byte offset on the device
	Err    error
}

func (c Corruption) String() string {
	return fmt.Sprintf("region %d offset %d: %v", c.Region, c.Offset, c.Err)
}

// Check walks a device offline: both superblock copies, every region's header and summary, and
// every entry's checksum (entries listed by a summary, or found by scanning an open region up
// to its torn tail, which is not a corruption). It never writes. It returns an error only when
// the device cannot be read or holds no log.
func Check(dev Device) (Report, error) {
	var rep Report
	// Two I/O buffers and a scan window.
	arena, err := slab.New(slab.Options{Limit: 16 << 20})
	if err != nil {
		return rep, err
	}
	defer arena.Close()
	e := &Engine{dev: dev, arena: arena, bs: int64(dev.BlockSize()), pool: make(chan *slab.Buf, 2)}
	for i := 0; i < 2; i++ {
		b, err := arena.Alloc(ioBufSize)
		if err != nil {
			return rep, err
		}
		e.pool <- b
	}
	defer e.releasePool()
	buf := e.getBuf()
	p := buf.Bytes()[:2*superSlot]
	err = dev.ReadAt(p, 0)
	a, errA := parseSuper(p[:superSlot])
	b, errB := parseSuper(p[superSlot:])
	e.putBuf(buf)
	if err != nil {
		return rep, fmt.Errorf("rawblock: cannot read the superblock: %w", err)
	}
	rep.SuperCopies = [2]error{errA, errB}
	sb := a
	switch {
	case errA != nil && errB != nil:
		if err := versionErr(errA, errB); err != nil {
			return rep, err // a log, of a format this kvresp does not check
		}
		return rep, fmt.Errorf("rawblock: no valid superblock: %w", errors.Join(errA, errB))
	case errA != nil || (errB == nil && b.generation > a.generation):
		sb = b
	}
	for i, err := range rep.SuperCopies {
		if err != nil {
			rep.Corruptions = append(rep.Corruptions, Corruption{Region: -1, Offset: int64(i) * superSlot, Err: err})
		}
	}
	e.setSuper(sb)
	rep.BlockSize, rep.RegionSize, rep.Regions = int64(sb.blockSize), sb.regionSize, int(sb.regionCount)
	rep.Created = time.UnixMilli(sb.created)
	if int64(sb.blockSize) != e.bs {
		return rep, fmt.Errorf("rawblock: log block size %d, device block size %d", sb.blockSize, e.bs)
	}
	for ri := 0; ri < rep.Regions; ri++ {
		rs, err := e.classify(ri)
		if err != nil {
			return rep, fmt.Errorf("rawblock: cannot read region %d: %w", ri, err)
		}
		var recs []record
		switch rs.state {
		case regionFree:
			rep.Free++
			continue
		case regionSealed:
			rep.Sealed++
			if recs, err = e.readSummary(ri, rs.epoch); err != nil {
				rep.Corruptions = append(rep.Corruptions, Corruption{ri, e.regionOff(ri) + e.regSize - e.bs, fmt.Errorf("summary: %w", err)})
				recs, _ = e.scanRegion(ri, rs.epoch, e.arena)
				break
			}
			for _, r := range recs {
				off := int64(r.off512) * 512
				if _, _, err := e.verifyAt(ri, off, rs.epoch); err != nil {
					rep.Corruptions = append(rep.Corruptions, Corruption{ri, e.regionOff(ri) + off, fmt.Errorf("entry %q: %w", r.key, err)})
				}
			}
		case regionOpen:
			rep.Open++
			recs, _ = e.scanRegion(ri, rs.epoch, e.arena)
		}
		for _, r := range recs {
			if r.flags&entryTombstone != 0 {
				rep.Tombstones++
			} else {
				rep.Entries++
				rep.ValueBytes += r.vlen
			}
		}
	}
	return rep, nil
}

// Check verifies the engine's in-memory invariants: every index entry points into a live
// region, within its written part and with a layout matching its lengths; shard counts and
// bytes add up; free-region count and open regions are consistent. It is meant for tests, on
// an engine with no operation in flight; it waits for a background reclaim under way to end
// (a reclaim that starts meanwhile waits for Check).
func (e *Engine) Check() error {
	for {
		e.mu.Lock()
		if e.inReclaim.Load() == 0 {
			break
		}
		e.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	defer e.mu.Unlock()
	var errs []error
	nfree := 0
	for _, r := range e.regions {
		switch r.state {
		case regionFree:
			nfree++
		case regionOpen:
			if !r.sealing && e.open[r.class] != r.idx {
				errs = append(errs, fmt.Errorf("rawblock: region %d is open but not the open %s region", r.idx, r.class))
			}
		}
	}
	if nfree != e.nfree {
		errs = append(errs, fmt.Errorf("rawblock: %d free regions, counted %d", nfree, e.nfree))
	}
	for c, i := range e.open {
		if i >= 0 && (e.regions[i].state != regionOpen || e.regions[i].class != Class(c)) {
			errs = append(errs, fmt.Errorf("rawblock: open %s region %d is %v/%s", Class(c), i, e.regions[i].state, e.regions[i].class))
		}
	}
	for si := range e.idx.shards {
		s := &e.idx.shards[si]
		s.mu.Lock()
		count, bytes := 0, int64(0)
		for i := 0; i < s.n; i++ {
			h := s.slots[i*slotWords]
			if h == 0 {
				continue
			}
			count++
			v := s.val(i)
			bytes += v.vlen
			if h>>(64-shardBits) != uint64(si) || s.find(h) != i {
				errs = append(errs, fmt.Errorf("rawblock: index slot %d of shard %d unreachable", i, si))
			}
			if v.flags&ixTomb != 0 {
				errs = append(errs, errors.New("rawblock: tombstone left in the index"))
			}
			if int(v.region) >= len(e.regions) {
				errs = append(errs, fmt.Errorf("rawblock: index entry in region %d of %d", v.region, len(e.regions)))
				continue
			}
			r := e.regions[v.region]
			end := int64(v.off512)*512 + int64(v.hk512)*512
			if v.flags&ixInline == 0 {
				end += roundUp64(v.vlen, e.bs)
			}
			limit := r.next
			if r.state != regionOpen || r.recs == nil {
				limit = e.regSize
			}
			if r.state == regionFree || r.state == regionReclaiming || int64(v.off512)*512 < e.bs || end > limit {
				errs = append(errs, fmt.Errorf("rawblock: index entry at %d+%d in region %d (%v, %d bytes written)", v.off512*512, end, v.region, r.state, r.next))
			}
		}
		if count != s.count || bytes != s.bytes {
			errs = append(errs, fmt.Errorf("rawblock: shard %d counts %d entries/%d bytes, holds %d/%d", si, s.count, s.bytes, count, bytes))
		}
		if s.count*maxLoadDen > s.n*maxLoadNum+maxLoadDen {
			errs = append(errs, fmt.Errorf("rawblock: shard %d over its load factor", si))
		}
		s.mu.Unlock()
		if len(errs) > 20 {
			break
		}
	}
	return errors.Join(errs...)
}
