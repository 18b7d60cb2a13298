// Package slab is kvresp's buffer manager: it owns every large buffer in the server (DRAM-tier
// items, I/O buffers for NVMe and DAX, socket buffers) and keeps all of them, plus memory that
// other packages Reserve, under one limit (maxmemory). Buffer memory lives off the Go heap in
// anonymous mmap'd mappings, so the GC never scans or moves it and the kernel may DMA into it.
// Buffers above 16 KiB are each their own mapping, in exact size classes (the size rounded up to
// 4 KiB), and start at its first byte, 4 KiB aligned; a large value from AllocValue starts
// ValueOffset bytes in instead, and its class has one page more. Smaller ones are carved out of
// 1 MiB pages per class. Buffers are reference counted; at zero they are cached on their class's free list for reuse. When an
// allocation does not fit under the limit the arena first reuses a cached buffer of the same
// class, then unmaps cached buffers of other classes (rebalancing), then asks the Reclaimer (the
// DRAM tier) to evict, and finally waits for pinned buffers to be released.
package slab

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

var (
	ErrTooLarge = errors.New("slab: value larger than the memory limit")
	// ErrNoMemory is returned only after rebalancing and the Reclaimer failed to make room and
	// Options.WaitTimeout passed without enough pinned memory being released.
	ErrNoMemory = errors.New("slab: out of memory")
	ErrClosed   = errors.New("slab: arena closed")
)

const (
	// defaultWaitTimeout bounds how long an allocation waits for readers to unpin buffers; long
	// enough to ride out a slow client draining an 80 MiB value, short enough to fail a request
	// rather than hang it.
	defaultWaitTimeout = 5 * time.Second
	// minLimit is one small-class page: below it no tiny value could ever be stored.
	minLimit = smallPageBytes
)

// Options configures an Arena. Zero values mean defaults, except Limit, which is required.
type Options struct {
	// Limit in bytes covers all buffers (in use and cached free) plus Reserve()d bytes.
	Limit int64
	// WaitTimeout is how long Alloc and Reserve wait for pinned memory to be released when the
	// Reclaimer cannot free enough; 0 means 5s.
	WaitTimeout time.Duration
	// ValueOffset is where in its first page a large value from AllocValue starts: 0 (page
	// aligned, like Alloc), or a multiple of 64 below 4096 (DefaultValueOffset). See AllocValue.
	ValueOffset int
}

// DefaultValueOffset is the value offset kvresp serves with: the middle of a page, as far as a
// page allows from where a reply's first bytes leave a value (see AllocValue), and a multiple
// of 512, so that direct I/O to and from the value still works on devices that ask for 512-byte
// aligned memory (most NVMe drives and file systems; a device's MemAlign says).
const DefaultValueOffset = 2048

// Validate reports every problem with o at once.
func (o Options) Validate() error {
	var errs []error
	if o.Limit < minLimit {
		errs = append(errs, fmt.Errorf("slab: memory limit is %d bytes; set it to at least %d (1 MiB), e.g. maxmemory 4gb", o.Limit, int64(minLimit)))
	}
	if o.ValueOffset < 0 || o.ValueOffset >= largeAlign || o.ValueOffset%64 != 0 {
		errs = append(errs, fmt.Errorf("slab: value offset is %d; set it to a multiple of 64 from 0 to %d", o.ValueOffset, largeAlign-64))
	}
	if o.WaitTimeout < 0 {
		errs = append(errs, fmt.Errorf("slab: wait timeout is %v; set it to 0 (default %v) or a positive duration", o.WaitTimeout, defaultWaitTimeout))
	}
	return errors.Join(errs...)
}

// Reclaimer is asked to free at least need bytes (the DRAM tier evicts items: it calls Release
// on their Bufs). size is the size of the allocation that triggered it, a class hint: evicting
// items of that same class first lets the freed buffer be reused exactly. It returns the number
// of bytes it released (0 = nothing left to evict). It is called without any arena lock held and
// may call Buf.Release; it may run in several goroutines at once (each short allocation asks on
// its own), and must not call Alloc or Reserve on the same arena.
type Reclaimer func(need int64, size int) int64

// Arena is the buffer manager. All methods are safe for concurrent use.
type Arena struct {
	waitTimeout time.Duration
	// value is the value offset (Options.ValueOffset) in its low bits, with valueUsed set once
	// AllocValue has placed a large value: one word, so that SetValueOffset cannot slip in
	// between AllocValue reading the offset and using it.
	value atomic.Int32

	mu sync.Mutex
	// Accounting, in bytes: used == inUse + cached + reserved + pending <= limit, except after
	// SetLimit lowered the limit below what is pinned.
	limit, used, inUse, cached, reserved int64
	pending                              int64 // accounted for mappings being created outside mu
	allocs, frees, reclaims, waits       uint64
	unmaps                               uint64

	small [numSmall]class
	large map[int]*class // by size

	reclaim Reclaimer
	spans   []span // large buffers' mappings by address, for MappingOf
	hooks   atomic.Pointer[[]*unmapHook]
	closed  bool
	gen     uint64        // bumped whenever memory is released or freed: lets waiters detect missed wakeups
	waiters int           // goroutines blocked on wake
	wake    chan struct{} // closed and replaced to wake waiters
}

// New returns an empty arena; it maps nothing until the first Alloc.
func New(o Options) (*Arena, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	a := &Arena{
		waitTimeout: o.WaitTimeout,
		limit:       o.Limit,
		large:       make(map[int]*class),
		wake:        make(chan struct{}),
	}
	if a.waitTimeout == 0 {
		a.waitTimeout = defaultWaitTimeout
	}
	a.value.Store(int32(o.ValueOffset))
	for i := range a.small {
		a.small[i].initSmall(smallSizes[i])
	}
	return a, nil
}

// SetReclaimer installs the function asked to evict when memory runs short.
func (a *Arena) SetReclaimer(r Reclaimer) {
	a.mu.Lock()
	a.reclaim = r
	a.mu.Unlock()
}

// Limit returns the current memory limit in bytes.
func (a *Arena) Limit() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.limit
}

// Alloc returns a buffer of n bytes with one reference. Its contents are unspecified (a reused
// buffer keeps old data). n == 0 is allowed. It returns ErrTooLarge if the buffer could never
// fit under the limit, ErrNoMemory if room could not be made in time, ErrClosed after Close.
func (a *Arena) Alloc(n int) (*Buf, error) {
	if n < 0 {
		return nil, fmt.Errorf("slab: cannot allocate %d bytes: negative size", n)
	}
	if n <= maxSmall { // fast path: a free slot of a small class
		c := &a.small[smallIndex(n)]
		a.mu.Lock()
		if !a.closed {
			if b := a.takeLocked(c); b != nil {
				a.mu.Unlock()
				b.n, b.off = n, 0
				return b, nil
			}
		}
		a.mu.Unlock()
	}
	return a.alloc(n, 0)
}

// AllocValue is Alloc for a value that will be sent to clients: a large one (over 16 KiB)
// starts ValueOffset bytes into its mapping, and its capacity from there still covers n
// rounded up to 4 KiB, which the storage engines' direct I/O may write or read whole: its class
// is one page larger than Alloc's for n (a 4 MiB value holds 4 MiB + 4 KiB of the limit).
//
// Why: the kernel copies a reply into the socket with REP MOVSB, which on the AMD EPYC kvresp
// is developed on runs at about half speed when the destination is 1 to 16 bytes ahead of the
// source modulo 4 KiB (4K aliasing), and that is exactly where a page-aligned value lands
// behind its RESP header ("$4194304\r\n") in the socket's page fragments. With 4 MiB GETs on
// loopback, page-aligned values made kvresp 1.3 to 1.6 times as slow as redis-server, values
// at offset 2048 0.76 to 0.83 times (`kvresp bench upstream` reports the warm ratio).
func (a *Arena) AllocValue(n int) (*Buf, error) {
	if n <= maxSmall {
		return a.Alloc(n)
	}
	v := a.value.Load()
	for v&valueUsed == 0 && !a.value.CompareAndSwap(v, v|valueUsed) {
		v = a.value.Load()
	}
	return a.alloc(n, int(v&^valueUsed))
}

// valueUsed is Arena.value's bit for "a large value was allocated": the offset is fixed.
const valueUsed = 1 << 16

// ValueOffset returns where AllocValue puts a large value in its first page (Options).
func (a *Arena) ValueOffset() int { return int(a.value.Load() &^ valueUsed) }

// SetValueOffset changes the value offset (Options.ValueOffset) before AllocValue placed any
// large value: for a server that learns only after making the arena that a device wants
// values page-aligned (rawblock.Device.MemAlign).
func (a *Arena) SetValueOffset(n int) error {
	if err := (Options{Limit: minLimit, ValueOffset: n}).Validate(); err != nil {
		return err
	}
	for {
		v := a.value.Load()
		if v&valueUsed != 0 {
			if int(v&^valueUsed) == n {
				return nil
			}
			return fmt.Errorf("slab: cannot move values to offset %d: values were placed at %d already", n, v&^valueUsed)
		}
		if a.value.CompareAndSwap(v, int32(n)) {
			return nil
		}
	}
}

// alloc returns a buffer of n bytes starting off bytes into its mapping (0 for small buffers).
func (a *Arena) alloc(n, off int) (*Buf, error) {
	var (
		size int   // buffer capacity
		need int64 // bytes a new mapping costs
		sc   *class
	)
	if n <= maxSmall {
		sc = &a.small[smallIndex(n)]
		size, need = sc.size, int64(sc.pageBytes)
	} else {
		size = roundUp(n, largeAlign)
		if off > 0 {
			size += largeAlign // the value's last block still fits after the offset
		}
		need = int64(size)
	}
	var (
		c     *class
		b     *Buf
		fresh bool // room was made for a new mapping of c
	)
	err := a.admit(need, size, func() bool {
		c = sc
		if c == nil {
			c = a.largeClassLocked(size)
		}
		b = a.takeLocked(c)
		return b != nil
	}, func() {
		a.pending += need
		c.pending++
		fresh = true
	})
	switch {
	case err != nil:
		if c != nil && c != sc {
			a.mu.Lock()
			a.dropEmptyLocked(c)
			a.mu.Unlock()
		}
		return nil, err
	case fresh:
		if b, err = a.mapNew(c, n); err != nil {
			return nil, err
		}
	}
	b.n, b.off = n, off
	return b, nil
}

// admit is the admission loop shared by Alloc and Reserve, for need bytes on behalf of an
// allocation of the given size (0 for Reserve). With a.mu held it first lets take (if not nil)
// satisfy the request from cache; failing that it unmaps cached memory of other classes until
// need fits, then adds need to used and calls grant to account it; failing that it asks the
// Reclaimer or waits for a release (await), and tries again.
func (a *Arena) admit(need int64, size int, take func() bool, grant func()) error {
	var w waiter
	defer w.stop()
	for {
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			return ErrClosed
		}
		if need > a.limit {
			a.mu.Unlock()
			return fmt.Errorf("%w: %d bytes > limit %d", ErrTooLarge, need, a.limit)
		}
		if take != nil && take() {
			a.mu.Unlock()
			return nil
		}
		unmap, ok := a.makeRoomLocked(need)
		if ok {
			a.used += need
			grant()
		}
		gen := a.gen
		a.mu.Unlock()
		a.unmap(unmap)
		if ok {
			return nil
		}
		if err := a.await(&w, need, size, gen); err != nil {
			return err
		}
	}
}

// mapNew creates a new mapping for class c (a buffer or a small page) whose bytes were already
// accounted as pending, and returns a buffer of n bytes from it.
func (a *Arena) mapNew(c *class, n int) (*Buf, error) {
	length := c.size
	if c.isSmall {
		length = c.pageBytes
	}
	mem, err := mmap(length, !c.isSmall)
	a.mu.Lock()
	a.pending -= int64(length)
	c.pending--
	if err != nil || a.closed {
		a.used -= int64(length)
		a.dropEmptyLocked(c)
		a.notifyLocked()
		a.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("%w: cannot map %d bytes: %v", ErrNoMemory, length, err)
		}
		a.unmap([][]byte{mem})
		return nil, ErrClosed
	}
	var b *Buf
	if c.isSmall {
		c.addPage(mem)
		a.cached += int64(length)
		b = a.takeLocked(c)
	} else {
		b = &Buf{a: a, c: c, data: mem}
		b.refs.Store(1)
		c.addLarge(b)
		a.addSpanLocked(mem)
		c.inuse++
		a.inUse += int64(length)
		a.allocs++
	}
	a.mu.Unlock()
	b.n = n
	return b, nil
}

// takeLocked returns a cached buffer of class c with one reference, or nil.
func (a *Arena) takeLocked(c *class) *Buf {
	var b *Buf
	if c.isSmall {
		b = c.takeSmall(a)
	} else if k := len(c.free); k > 0 {
		b = c.free[k-1]
		c.free[k-1] = nil
		c.free = c.free[:k-1]
		b.free = false
	}
	if b == nil {
		return nil
	}
	c.inuse++
	a.cached -= int64(c.size)
	a.inUse += int64(c.size)
	a.allocs++
	b.refs.Store(1)
	return b
}

// put takes back a buffer whose last reference was released.
func (a *Arena) put(b *Buf) {
	var unmap []byte
	a.mu.Lock()
	c := b.c
	size := int64(c.size)
	a.frees++
	a.inUse -= size
	c.inuse--
	over := a.closed || a.used > a.limit
	if c.isSmall {
		p := b.page
		c.putSmall(b)
		a.cached += size
		if over && p.nfree == c.slots {
			unmap = c.removePage(p)
			a.cached -= int64(len(unmap))
			a.used -= int64(len(unmap))
			a.unmaps++
		}
	} else if over {
		unmap = a.removeLargeLocked(c, b)
		a.used -= size
		a.unmaps++
		a.dropEmptyLocked(c)
	} else {
		b.free = true
		c.free = append(c.free, b)
		a.cached += size
	}
	a.notifyLocked()
	a.mu.Unlock()
	if unmap != nil {
		a.unmap([][]byte{unmap})
	}
}

// notifyLocked records that memory was released and wakes waiters.
func (a *Arena) notifyLocked() {
	a.gen++
	if a.waiters > 0 {
		close(a.wake)
		a.wake = make(chan struct{})
	}
}

// makeRoomLocked unmaps cached free memory (of any class: the caller found none of its own)
// until need more bytes fit under the limit or nothing cached is left. It returns the mappings
// to unmap once mu is released, and whether need now fits.
func (a *Arena) makeRoomLocked(need int64) ([][]byte, bool) {
	if a.used+need <= a.limit {
		return nil, true
	}
	unmap := a.dropCachedLocked(a.used + need - a.limit)
	return unmap, a.used+need <= a.limit
}

// dropCachedLocked removes at least want bytes of cached free mappings from the accounting, if
// there are that many, and returns them for unmapping. Large buffers go first: a fully free small
// page is cheap to keep and likely to be needed again by tiny values.
func (a *Arena) dropCachedLocked(want int64) [][]byte {
	var unmap [][]byte
	var dropped int64
	for _, c := range a.large {
		if len(c.free) == 0 {
			continue // an empty class may be the caller's, about to get a new buffer
		}
		for len(c.free) > 0 && dropped < want {
			k := len(c.free) - 1
			b := c.free[k]
			c.free[k] = nil
			c.free = c.free[:k]
			unmap = append(unmap, a.removeLargeLocked(c, b))
			dropped += int64(c.size)
			a.cached -= int64(c.size)
			a.used -= int64(c.size)
			a.unmaps++
		}
		a.dropEmptyLocked(c)
		if dropped >= want {
			return unmap
		}
	}
	for i := range a.small {
		c := &a.small[i]
		for j := 0; j < len(c.avail) && dropped < want; {
			p := c.avail[j]
			if p.nfree != c.slots {
				j++
				continue
			}
			mem := c.removePage(p) // swaps another page into avail[j]
			unmap = append(unmap, mem)
			dropped += int64(len(mem))
			a.cached -= int64(len(mem))
			a.used -= int64(len(mem))
			a.unmaps++
		}
		if dropped >= want {
			break
		}
	}
	return unmap
}

// largeClassLocked returns the class of large buffers of capacity size, creating it.
func (a *Arena) largeClassLocked(size int) *class {
	c := a.large[size]
	if c == nil {
		c = &class{size: size}
		a.large[size] = c
	}
	return c
}

// dropEmptyLocked forgets a large class that holds no buffers, so odd-sized socket buffers do not
// leave classes behind forever.
func (a *Arena) dropEmptyLocked(c *class) {
	if !c.isSmall && len(c.all) == 0 && c.pending == 0 && a.large[c.size] == c {
		delete(a.large, c.size)
	}
}

// waiter is the state of one allocation that could not fit.
type waiter struct {
	deadline time.Time // set when the Reclaimer first had nothing to give
	timer    *time.Timer
}

func (w *waiter) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// await is called when need bytes (for a buffer of the given size) did not fit and gen was the
// arena's generation at that moment. It asks the Reclaimer to evict, or else waits for a release;
// it returns nil when the caller should try again, and ErrNoMemory once the wait timed out.
func (a *Arena) await(w *waiter, need int64, size int, gen uint64) error {
	a.mu.Lock()
	r := a.reclaim
	short := a.used + need - a.limit
	if need > a.limit-a.reserved {
		// Reserved bytes (connection buffers, index charges) are not
		// freed by evicting for this allocation: while they stand, it
		// cannot fit however much is evicted, so evict nothing and wait
		// for them to be released instead of emptying the cache for
		// nothing.
		r = nil
	}
	if r != nil && short > 0 {
		a.reclaims++
	}
	a.mu.Unlock()
	if short <= 0 {
		return nil
	}
	if r != nil && r(short, size) > 0 {
		return nil
	}
	now := time.Now()
	if w.deadline.IsZero() {
		w.deadline = now.Add(a.waitTimeout)
	} else if !now.Before(w.deadline) {
		// Checked here too, not only when the timer fires: under steady churn every attempt may
		// see a new generation and never block.
		return fmt.Errorf("%w: %d bytes did not fit under the limit within %v", ErrNoMemory, need, a.waitTimeout)
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	if a.gen != gen {
		a.mu.Unlock()
		return nil // something was released since the caller looked: try again first
	}
	if w.timer == nil {
		w.timer = time.NewTimer(time.Until(w.deadline))
		a.waits++
	}
	a.waiters++
	ch := a.wake
	a.mu.Unlock()
	select {
	case <-ch:
	case <-w.timer.C: // the caller tries once more, then the deadline check above fails it
	}
	a.mu.Lock()
	a.waiters--
	a.mu.Unlock()
	return nil
}

// Reserve accounts n bytes of non-buffer memory (the index, output headers) against the limit,
// making room like Alloc does.
func (a *Arena) Reserve(n int64) error {
	if n < 0 {
		return fmt.Errorf("slab: cannot reserve %d bytes: negative size", n)
	}
	return a.admit(n, 0, nil, func() { a.reserved += n })
}

// Unreserve returns n bytes taken by Reserve.
func (a *Arena) Unreserve(n int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n < 0 || n > a.reserved {
		panic(fmt.Sprintf("BUG: slab: unreserve of %d bytes with %d reserved", n, a.reserved))
	}
	a.reserved -= n
	a.used -= n
	a.notifyLocked()
}

// SetLimit changes the memory limit (CONFIG SET maxmemory). Lowering it unmaps cached free
// buffers and then asks the Reclaimer to evict until usage is under the new limit; memory still
// pinned is unmapped, not cached, when released. It does not wait.
func (a *Arena) SetLimit(n int64) error {
	if n < minLimit {
		return fmt.Errorf("slab: memory limit %d bytes is below the minimum of %d (1 MiB)", n, int64(minLimit))
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	a.limit = n
	unmap, _ := a.makeRoomLocked(0)
	a.notifyLocked() // a raised limit may let waiters in
	a.mu.Unlock()
	a.unmap(unmap)
	for {
		a.mu.Lock()
		r := a.reclaim
		short := a.used - a.limit
		if r != nil && short > 0 {
			a.reclaims++
		}
		a.mu.Unlock()
		if r == nil || short <= 0 || r(short, 0) <= 0 {
			break
		}
		// Evicted buffers were cached on the way out if usage had not yet crossed the limit.
		a.mu.Lock()
		unmap, _ := a.makeRoomLocked(0)
		a.mu.Unlock()
		a.unmap(unmap)
	}
	return nil
}

// Close unmaps all cached memory; later Alloc and Reserve return ErrClosed. Buffers still
// referenced are unmapped when their last reference is released.
func (a *Arena) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	unmap := a.dropCachedLocked(a.cached + 1)
	a.notifyLocked()
	a.mu.Unlock()
	a.unmap(unmap)
	return nil
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }
