//go:build linux

package rawblock

import (
	"cmp"
	"errors"
	"slices"

	"golang.org/x/sys/unix"

	"kvresp/internal/uring"
	"kvresp/slab"
)

// This file keeps each ring's table of io_uring fixed buffers in step with the slab; buffers
// are matched to mappings by address (slab.Addr).
//
// A slot holds one large slab mapping, registered the first time a read or write uses memory
// inside it (Arena.MappingOf gives its bounds). Its pages then stay pinned, which is the point:
// the kernel does not pin and unpin them on every operation. Before the slab unmaps a mapping
// it calls the device's OnUnmap hook, which has every ring that holds it clear its slot: else a
// new mapping at the same address would be read into or written from the old pages through the
// stale slot. No I/O can be using the mapping then (none of its buffers is referenced).
//
// A slot is pinned by the calls using it (fixedSlot.users) from their first operation to their
// completion, so it is never replaced under a call that still has operations to issue.

// fixedTable is one ring's fixed-buffer table. Only the ring's worker goroutine touches it.
type fixedTable struct {
	on    bool
	spans []fixedSpan // registered mappings by address
	slots []fixedSlot
	free  []uint16
	tick  uint64
}

type fixedSpan struct {
	base, end uintptr
	slot      uint16
}

type fixedSlot struct {
	base  uintptr // 0: empty
	users int     // calls using the slot now
	last  uint64  // fixedTable.tick when last used, for choosing one to replace
}

// updateBuffers is (*uring.Ring).UpdateBuffers; tests replace it to fail like a kernel over
// RLIMIT_MEMLOCK does.
var updateBuffers = (*uring.Ring).UpdateBuffers

// setupFixed registers the ring's empty table; on failure the ring does plain I/O only.
func (w *ringWorker) setupFixed(slots int) {
	if err := w.ring.RegisterBuffersSparse(slots); err != nil {
		w.d.fixedFallback("cannot register a sparse fixed-buffer table (Linux 5.19+)", err)
		return
	}
	w.fx = fixedTable{on: true, slots: make([]fixedSlot, slots), free: make([]uint16, 0, slots)}
	for i := slots - 1; i >= 0; i-- {
		w.fx.free = append(w.fx.free, uint16(i))
	}
}

// fixedFallback logs, once per device, that fixed buffers are off and why.
func (d *FileDevice) fixedFallback(why string, err error) {
	if !d.fixedWarned.Swap(true) {
		msg := "rawblock: fixed buffers unavailable, using unregistered I/O"
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOMEM) {
			why += "; pinned memory counts against RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK"
		}
		d.log.Warn(msg, "path", d.path, "reason", why, "error", err)
	}
}

// fixedFor returns 1 + the slot of the fixed buffer that holds p, registering p's slab mapping
// if needed, and pins the slot for the call; 0 means plain I/O.
func (w *ringWorker) fixedFor(p []byte) int32 {
	fx := &w.fx
	if !fx.on {
		return 0
	}
	fx.tick++
	start := slab.Addr(p)
	i, found := slices.BinarySearchFunc(fx.spans, start, func(s fixedSpan, x uintptr) int { return cmp.Compare(s.base, x) })
	if !found && i > 0 {
		i--
		found = true
	}
	if found && i < len(fx.spans) && start+uintptr(len(p)) <= fx.spans[i].end {
		s := &fx.slots[fx.spans[i].slot]
		s.users++
		s.last = fx.tick
		return int32(fx.spans[i].slot) + 1
	}
	mem, ok := w.d.arena.MappingOf(p)
	if !ok {
		return 0
	}
	slot, ok := w.takeSlot()
	if !ok {
		return 0 // every slot is in use by a call: this one goes plain
	}
	if err := updateBuffers(w.ring, int(slot), [][]byte{mem}); err != nil {
		fx.free = append(fx.free, slot)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOMEM) {
			// Over RLIMIT_MEMLOCK: every further mapping would fail the same way.
			fx.on = false
			w.d.fixedFallback("cannot pin a buffer for the ring", err)
		} else {
			w.d.log.Debug("rawblock: cannot register a fixed buffer; plain I/O for it", "path", w.d.path, "bytes", len(mem), "error", err)
		}
		return 0
	}
	base := slab.Addr(mem)
	j, _ := slices.BinarySearchFunc(fx.spans, base, func(s fixedSpan, x uintptr) int { return cmp.Compare(s.base, x) })
	fx.spans = slices.Insert(fx.spans, j, fixedSpan{base: base, end: base + uintptr(len(mem)), slot: slot})
	fx.slots[slot] = fixedSlot{base: base, users: 1, last: fx.tick}
	w.d.st.fixedRegs.Add(1)
	w.d.fixMu.Lock()
	w.d.fixRings[base] |= 1 << w.id
	w.d.fixMu.Unlock()
	return int32(slot) + 1
}

// takeSlot returns a free slot, or else empties the least recently used idle one.
func (w *ringWorker) takeSlot() (uint16, bool) {
	fx := &w.fx
	if k := len(fx.free); k > 0 {
		s := fx.free[k-1]
		fx.free = fx.free[:k-1]
		return s, true
	}
	victim := -1
	for i := range fx.slots {
		if s := &fx.slots[i]; s.users == 0 && (victim < 0 || s.last < fx.slots[victim].last) {
			victim = i
		}
	}
	if victim < 0 {
		return 0, false
	}
	// The caller's update replaces the registration; the kernel drops the old one.
	w.forget(fx.slots[victim].base)
	return uint16(victim), true
}

// forget removes the mapping at base from the table (not from the kernel) and returns its slot.
func (w *ringWorker) forget(base uintptr) (uint16, bool) {
	fx := &w.fx
	i, ok := slices.BinarySearchFunc(fx.spans, base, func(s fixedSpan, x uintptr) int { return cmp.Compare(s.base, x) })
	if !ok {
		return 0, false
	}
	slot := fx.spans[i].slot
	fx.spans = slices.Delete(fx.spans, i, i+1)
	fx.slots[slot] = fixedSlot{}
	w.d.fixMu.Lock()
	if m := w.d.fixRings[base] &^ (1 << w.id); m != 0 {
		w.d.fixRings[base] = m
	} else {
		delete(w.d.fixRings, base)
	}
	w.d.fixMu.Unlock()
	return slot, true
}

// unfix clears the slot holding the mapping at base, which the slab is about to unmap.
func (w *ringWorker) unfix(base uintptr) {
	if users := w.fx.slotUsers(base); users > 0 {
		// A call is still doing I/O into memory its owner released: a caller's bug. Clearing
		// is still safe (the kernel keeps the old buffer until those operations complete), but
		// the call's later operations will fail.
		w.d.log.Error("BUG: rawblock: a slab mapping is being unmapped during I/O into it", "path", w.d.path, "calls", users)
	}
	slot, ok := w.forget(base)
	if !ok {
		return
	}
	if err := updateBuffers(w.ring, int(slot), [][]byte{nil}); err != nil {
		// The slot keeps the old pages pinned until it is reused; it holds no mapping we know,
		// so nothing is read or written through it meanwhile.
		w.d.log.Error("rawblock: cannot clear a fixed buffer", "path", w.d.path, "slot", slot, "error", err)
	}
	w.fx.free = append(w.fx.free, slot)
}

func (fx *fixedTable) slotUsers(base uintptr) int {
	i, ok := slices.BinarySearchFunc(fx.spans, base, func(s fixedSpan, x uintptr) int { return cmp.Compare(s.base, x) })
	if !ok {
		return 0
	}
	return fx.slots[fx.spans[i].slot].users
}

// releaseFixed unpins the slot a finished call used.
func (w *ringWorker) releaseFixed(c *fileCall) {
	if c.fix > 0 {
		if s := &w.fx.slots[c.fix-1]; s.users > 0 {
			s.users--
		}
		c.fix = 0
	}
}

// onUnmap is the slab's OnUnmap hook: every ring holding the mapping at base clears its slot
// before the hook returns, and so before the munmap.
func (d *FileDevice) onUnmap(base uintptr, _ int) {
	d.fixMu.Lock()
	mask := d.fixRings[base]
	delete(d.fixRings, base)
	d.fixMu.Unlock()
	if mask == 0 {
		return
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		// The rings are going away with their tables; nothing can use a stale slot any more.
		return
	}
	var calls []*fileCall
	for _, w := range d.workers {
		if mask&(1<<w.id) == 0 {
			continue
		}
		c := d.calls.Get().(*fileCall)
		c.op, c.off = fileUnfix, int64(base)
		w.ch <- c
		if w.sleeping.Load() && !w.kicked.Swap(true) {
			w.kick()
		}
		calls = append(calls, c)
	}
	for _, c := range calls {
		<-c.done
		*c = fileCall{done: c.done}
		d.calls.Put(c)
	}
}
