package slab

import (
	"cmp"
	"slices"
)

// This file lets an I/O device keep io_uring fixed buffers in step with the arena: MappingOf
// tells it which large-buffer mapping a slice lies in (the unit it registers), and OnUnmap tells
// it when a mapping is about to go, so that it can drop the registration before the address
// range is reused by a new mapping whose pages are not the ones the kernel pinned.

// span is one large buffer's mapping, in Arena.spans.
type span struct {
	base uintptr
	mem  []byte
}

// unmapHook is one function registered with OnUnmap; compared by pointer to remove it.
type unmapHook struct{ f func(addr uintptr, n int) }

// OnUnmap registers f to be called with the address and length of each mapping the arena is
// about to unmap (large buffers and small-class pages alike), before munmap and without any arena
// lock held, in the goroutine that releases or allocates. f must not call back into the arena.
// No buffer of the mapping is referenced then, so no I/O can be using it. The returned function
// unregisters f; a call already under way may still finish after it returns.
func (a *Arena) OnUnmap(f func(addr uintptr, n int)) (stop func()) {
	h := &unmapHook{f}
	a.mu.Lock()
	old := a.hooks.Load()
	var hs []*unmapHook
	if old != nil {
		hs = slices.Clone(*old)
	}
	hs = append(hs, h)
	a.hooks.Store(&hs)
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if cur := a.hooks.Load(); cur != nil {
			hs := slices.DeleteFunc(slices.Clone(*cur), func(x *unmapHook) bool { return x == h })
			a.hooks.Store(&hs)
		}
	}
}

// MappingOf returns the whole mapping (its capacity, from its first byte) of the large buffer
// (> 16 KiB) that p lies in, and true; false when p is empty, lies in a small buffer's shared
// page, or is not arena memory. The mapping stays valid while the caller holds a reference to a
// buffer in it.
func (a *Arena) MappingOf(p []byte) ([]byte, bool) {
	if len(p) == 0 {
		return nil, false
	}
	start := Addr(p)
	a.mu.Lock()
	defer a.mu.Unlock()
	i, found := slices.BinarySearchFunc(a.spans, start, func(s span, x uintptr) int { return cmp.Compare(s.base, x) })
	if !found {
		if i == 0 {
			return nil, false
		}
		i-- // the last mapping starting before p
	}
	s := a.spans[i]
	if start-s.base+uintptr(len(p)) > uintptr(len(s.mem)) {
		return nil, false
	}
	return s.mem, true
}

// addSpanLocked records a new large buffer's mapping for MappingOf.
func (a *Arena) addSpanLocked(mem []byte) {
	base := Addr(mem)
	i, _ := slices.BinarySearchFunc(a.spans, base, func(s span, x uintptr) int { return cmp.Compare(s.base, x) })
	a.spans = slices.Insert(a.spans, i, span{base, mem})
}

// removeLargeLocked forgets a large buffer of class c, returning its mapping for unmapping.
func (a *Arena) removeLargeLocked(c *class, b *Buf) []byte {
	mem := c.removeLarge(b)
	base := Addr(mem)
	if i, ok := slices.BinarySearchFunc(a.spans, base, func(s span, x uintptr) int { return cmp.Compare(s.base, x) }); ok {
		a.spans = slices.Delete(a.spans, i, i+1)
	}
	return mem
}

// unmap tells the OnUnmap hooks about mems, then unmaps them. Called without a.mu held.
func (a *Arena) unmap(mems [][]byte) {
	if len(mems) == 0 {
		return
	}
	if hs := a.hooks.Load(); hs != nil {
		for _, m := range mems {
			for _, h := range *hs {
				h.f(Addr(m), len(m))
			}
		}
	}
	unmapAll(mems)
}
