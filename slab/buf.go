package slab

import (
	"fmt"
	"sync/atomic"
)

// Buf is a reference-counted buffer whose memory belongs to an Arena. The Buf struct is reused
// once its last reference is released: holding a *Buf without a reference is a use after free.
type Buf struct {
	refs atomic.Int32
	n    int
	off  int    // where Bytes starts in data: 0, or the arena's value offset (AllocValue)
	data []byte // the whole capacity
	a    *Arena
	c    *class

	// Guarded by Arena.mu.
	page *page // small buffers: the page and slot they occupy
	slot int
	idx  int  // large buffers: position in class.all
	free bool // large buffers: on the class's free list
}

// Bytes returns the n bytes asked for (or set by SetLen). The slice is valid until the caller's
// reference is released; it is off the Go heap, so it must not be retained past that.
func (b *Buf) Bytes() []byte { return b.data[b.off : b.off+b.n] }

// Len returns the length of Bytes.
func (b *Buf) Len() int { return b.n }

// Cap returns the buffer's capacity from the start of Bytes: its class size, less the value
// offset of a buffer from AllocValue.
func (b *Buf) Cap() int { return cap(b.data) - b.off }

// ClassSize is the size of the buffer's class: the memory it holds under the limit, and the
// size Reclaimer's hint names (Cap, less a value offset, is what the caller may use).
func (b *Buf) ClassSize() int { return b.c.size }

// SetLen sets the length of Bytes, for readers that fill less (or more) than asked.
func (b *Buf) SetLen(n int) {
	if n < 0 || n > b.Cap() {
		panic(fmt.Sprintf("slab: SetLen(%d) out of range [0, %d]", n, b.Cap()))
	}
	b.n = n
}

// Retain adds a reference, for a reader pinning the buffer. The caller must already hold one.
func (b *Buf) Retain() {
	for {
		r := b.refs.Load()
		if r <= 0 {
			panic("BUG: slab: retain of released buffer")
		}
		if b.refs.CompareAndSwap(r, r+1) {
			return
		}
	}
}

// Release drops a reference; the last one returns the buffer to its arena.
func (b *Buf) Release() {
	switch r := b.refs.Add(-1); {
	case r == 0:
		b.a.put(b)
	case r < 0:
		b.refs.Add(1)
		panic("BUG: slab: release of released buffer")
	}
}

// Refs returns the current reference count.
func (b *Buf) Refs() int32 { return b.refs.Load() }
