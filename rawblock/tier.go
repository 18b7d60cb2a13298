package rawblock

import (
	"errors"
	"fmt"
	"sync"

	"kvresp/tiers"
)

func (e *Engine) stripe(h uint64) *sync.Mutex { return &e.keyMu[h%stripes] }

// lookup finds h in the index and captures what a reader checks after its I/O. touch sets the
// entry's access bit (reclaim reinserts entries read since they were written).
func (e *Engine) lookup(h uint64, touch bool) (entryLoc, bool) {
	s := e.idx.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(h)
	if i < 0 {
		return entryLoc{}, false
	}
	v := s.val(i)
	if touch && v.flags&ixAccess == 0 {
		v.flags |= ixAccess
		s.setVal(i, v)
	}
	r := e.regions[v.region]
	return entryLoc{region: int(v.region), v: v, epoch: r.epochA.Load(), gen: r.gen.Load()}, true
}

func (e *Engine) expired(v ival) bool { return v.expireAt != 0 && v.expireAt <= e.now() }

// Get implements tiers.Tier. A read that fails (I/O error, checksum, a hash collision, a race
// with reclaim) is a miss, never wrong bytes; failures other than collisions and races are
// counted in Errors. An expired entry is a miss and stays indexed until its region is
// reclaimed (it still hides older versions of its key).
func (e *Engine) Get(key string) (tiers.Item, bool, error) {
	it, ok := e.fetch(key, true)
	if !ok {
		e.c.misses.Add(1)
		return tiers.Item{}, false, nil
	}
	e.c.hits.Add(1)
	return it, true, nil
}

// fetch reads key's current value, as Get does but without counting a hit or a miss; touch
// sets the entry's access bit (a client read it).
func (e *Engine) fetch(key string, touch bool) (tiers.Item, bool) {
	h := keyHash(key)
	loc, ok := e.lookup(h, touch)
	if ok && e.expired(loc.v) {
		e.c.expired.Add(1)
		ok = false
	}
	if !ok {
		return tiers.Item{}, false
	}
	_, _, val, err := e.readEntry(loc, key, e.arena)
	if err == nil && e.regions[loc.region].gen.Load() != loc.gen {
		val.Release()
		err = errStale
	}
	if err != nil {
		e.readFailed(h, loc, err)
		return tiers.Item{}, false
	}
	return tiers.Item{Buf: val, ExpireAt: loc.v.expireAt}, true
}

// readFailed counts a failed read and drops an index slot whose entry is damaged.
func (e *Engine) readFailed(h uint64, loc entryLoc, err error) {
	switch {
	case errors.Is(err, errKeyOther), errors.Is(err, errStale):
		return
	case errors.Is(err, ErrChecksum):
		e.c.checksumFails.Add(1)
	case errors.Is(err, ErrCorrupt):
		e.c.corrupt.Add(1)
	default: // I/O errors (counted where they happen) and allocation failures are transient
		e.c.errors.Add(1)
		return
	}
	e.c.errors.Add(1)
	e.log.Warn("rawblock: damaged entry", "region", loc.region, "offset", int64(loc.v.off512)*512, "error", err)
	e.idx.remove(h, loc.v)
}

// Stat implements tiers.Tier. It does no I/O: the index knows size and expiry.
func (e *Engine) Stat(key string) (tiers.Meta, bool, error) {
	loc, ok := e.lookup(keyHash(key), false)
	if !ok {
		return tiers.Meta{}, false, nil
	}
	if e.expired(loc.v) {
		e.c.expired.Add(1)
		return tiers.Meta{}, false, nil
	}
	return tiers.Meta{Size: loc.v.vlen, ExpireAt: loc.v.expireAt}, true, nil
}

// Put implements tiers.Tier. The value is written straight from it.Buf when it is large; the
// engine keeps no reference to it after Put returns. With Options.Sync Put returns once the
// entry is durable; an error leaves the previous value (or nothing) in place.
func (e *Engine) Put(key string, it tiers.Item) error { return e.put(key, it, e.opt.Sync) }

// put writes key's entry; with durable it returns once the entry is durable.
func (e *Engine) put(key string, it tiers.Item, durable bool) error {
	if it.Buf == nil {
		return errors.New("rawblock: put of a nil buffer")
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("%w: key of %d bytes (at most %d)", tiers.ErrTooLarge, len(key), maxKeyLen)
	}
	vlen := int64(it.Buf.Len())
	inline, hk, total := layout(len(key), vlen, e.bs)
	rec := record{key: key, hk512: uint8(hk / 512), vlen: vlen, expireAt: min(it.ExpireAt, maxExpire)}
	if inline {
		rec.flags = entryInline
	}
	if !e.maxEntry(total, rec.sumLen()) {
		return fmt.Errorf("%w: %d bytes in %d-byte regions", tiers.ErrTooLarge, vlen, e.regSize)
	}
	h := keyHash(key)
	e.flushMu.RLock()
	defer e.flushMu.RUnlock()
	mu := e.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	s, err := e.alloc(ClassHot, total, rec, false)
	if err != nil {
		e.c.errors.Add(1)
		return err
	}
	hdr := entryHeader{keyLen: len(key), valueLen: vlen, seq: s.seq, expireAt: rec.expireAt, epoch: s.r.epoch}
	err = e.writeEntry(s, ClassHot, key, hdr, it.Buf.Bytes())
	if err == nil && durable {
		err = e.syncEntry(s)
	}
	if err == nil {
		v := ival{region: uint32(s.r.idx), off512: uint32(s.off / 512), hk512: rec.hk512, vlen: vlen, expireAt: rec.expireAt}
		if inline {
			v.flags = ixInline
		}
		sh := e.idx.shard(h)
		sh.mu.Lock()
		sh.put(h, v)
		sh.mu.Unlock()
	}
	e.done(s.r, s.ticket, s.off, s.rec, err == nil)
	if err != nil {
		e.c.errors.Add(1)
		return err
	}
	e.c.puts.Add(1)
	return nil
}

// syncEntry makes the entry in s durable: every earlier write must be complete (so it is not
// behind a hole a scan would stop at), then the device is flushed. An entry behind a failed
// write of its region is not acknowledged.
func (e *Engine) syncEntry(s slot) error {
	e.mu.Lock()
	e.inflight[s.ticket] = true // written: writers syncing at once share a flush
	e.mu.Unlock()
	if err := e.syncUpTo(s.ticket); err != nil {
		return err
	}
	e.mu.Lock()
	failed := s.r.failed && s.r.failOff < s.off
	e.mu.Unlock()
	if failed {
		return fmt.Errorf("rawblock: an earlier write to region %d failed; the entry is not durable", s.r.idx)
	}
	return nil
}

// writeTombstone appends a tombstone for key with sequence seq (0: a new one).
func (e *Engine) writeTombstone(key string, seq uint64, c Class, internal bool) (slot, error) {
	_, hk, total := layout(len(key), 0, e.bs)
	rec := record{key: key, hk512: uint8(hk / 512), flags: entryTombstone | entryInline, seq: seq}
	s, err := e.alloc(c, total, rec, internal)
	if err != nil {
		return s, err
	}
	hdr := entryHeader{flags: entryTombstone, keyLen: len(key), seq: s.seq, epoch: s.r.epoch}
	err = e.writeEntry(s, c, key, hdr, nil)
	if err == nil && e.opt.Sync && !internal {
		err = e.syncEntry(s)
	}
	return s, err
}

// Delete implements tiers.Tier: a tombstone is written (so the delete survives a restart)
// when the key is indexed. An expired key reports false.
func (e *Engine) Delete(key string) (bool, error) {
	h := keyHash(key)
	e.flushMu.RLock()
	defer e.flushMu.RUnlock()
	mu := e.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	loc, ok := e.lookup(h, false)
	if !ok {
		return false, nil
	}
	s, err := e.writeTombstone(key, 0, ClassHot, false)
	if err == nil {
		e.idx.remove(h, loc.v)
	}
	if s.r != nil {
		e.done(s.r, s.ticket, s.off, s.rec, err == nil)
	}
	if err != nil {
		e.c.errors.Add(1)
		return false, err
	}
	if e.expired(loc.v) {
		e.c.expired.Add(1)
		return false, nil
	}
	e.c.deletes.Add(1)
	return true, nil
}

// SetExpire implements tiers.Tier. The expiry is part of the entry on the device, so the
// entry is rewritten with the new one (the value read back and written again under a new
// sequence number) and made durable: a restart must not bring the key back with its old
// expiry, or without one after it was given a TTL that has passed. Callers serialise
// operations on one key (store holds its key lock), so nothing writes the key in between.
// The read is not a client's: it counts no hit and does not mark the entry read.
func (e *Engine) SetExpire(key string, expireAt int64) (bool, error) {
	if m, ok, _ := e.Stat(key); !ok || m.ExpireAt == expireAt {
		return ok, nil // absent, or unchanged: no I/O
	}
	it, ok := e.fetch(key, false)
	if !ok {
		return false, nil
	}
	defer it.Buf.Release()
	if err := e.put(key, tiers.Item{Buf: it.Buf, ExpireAt: expireAt}, true); err != nil {
		return false, err
	}
	return true, nil
}
