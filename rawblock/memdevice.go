package rawblock

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"

	"kvresp/slab"
)

// MemDevice is a Device in memory, for tests and benchmarks. It checks the alignment rules a
// real O_DIRECT device enforces, records the placement class of every block written, and can
// simulate a power cut: with crash tracking on, writes since the last Flush are kept aside and
// CrashImage returns the device as it could be after a power cut, some of those block writes
// lost (torn at block granularity, in any order).
type MemDevice struct {
	bs       int
	memAlign int

	mu      sync.Mutex
	data    []byte
	durable []byte // what survives a power cut for sure; nil without crash tracking
	pending []memWrite
	classes []Class // per block, the class of its last write
	closed  bool
	stats   MemStats
}

// MemStats counts a MemDevice's operations.
type MemStats struct {
	Reads, Writes, Trims, Flushes uint64
	ReadBytes, TrimBytes          int64
	WriteBytes                    [numClasses]int64 // by placement class
}

type memWrite struct {
	off  int64
	data []byte
}

var (
	_ Device    = (*MemDevice)(nil)
	_ CPUCopier = (*MemDevice)(nil)
)

// NewMemDevice returns a zeroed device of size bytes (rounded down to the block size). With
// crash true it keeps unflushed writes aside for CrashImage (and costs a second copy).
func NewMemDevice(size int64, blockSize int, crash bool) *MemDevice {
	return NewMemDeviceFrom(make([]byte, size-size%int64(blockSize)), blockSize, crash)
}

// NewMemDeviceFrom returns a device whose contents are image (owned by the device from now on),
// all of it durable.
func NewMemDeviceFrom(image []byte, blockSize int, crash bool) *MemDevice {
	if blockSize != 512 && blockSize != 4096 {
		panic(fmt.Sprintf("rawblock: MemDevice block size %d, want 512 or 4096", blockSize))
	}
	d := &MemDevice{bs: blockSize, memAlign: 512, data: image, classes: make([]Class, len(image)/blockSize)}
	if crash {
		d.durable = append([]byte(nil), image...)
	}
	return d
}

// BlockSize implements Device.
func (d *MemDevice) BlockSize() int { return d.bs }

// MemAlign implements Device: 512, what direct I/O asks of memory on most drives and file
// systems, unless SetMemAlign changed it.
func (d *MemDevice) MemAlign() int { return d.memAlign }

// SetMemAlign sets the memory alignment the device asks for and enforces: a power of two from
// 4 to the block size. Call it before any I/O.
func (d *MemDevice) SetMemAlign(n int) {
	if n < 4 || n > d.bs || n&(n-1) != 0 {
		panic(fmt.Sprintf("rawblock: MemDevice memory alignment %d, want a power of two from 4 to %d", n, d.bs))
	}
	d.memAlign = n
}

// Size implements Device.
func (d *MemDevice) Size() int64 { return int64(len(d.data)) }

func (d *MemDevice) check(p []byte, off int64) error {
	switch {
	case d.closed:
		return ErrDeviceClosed
	case off < 0 || off%int64(d.bs) != 0 || len(p)%d.bs != 0 || !aligned(p, d.memAlign):
		return fmt.Errorf("%w: %d bytes at %d from memory at %#x (block size %d, memory alignment %d)", ErrUnaligned, len(p), off, slab.Addr(p), d.bs, d.memAlign)
	case off+int64(len(p)) > int64(len(d.data)):
		return fmt.Errorf("%w: %d bytes at %d, size %d", ErrOutOfRange, len(p), off, len(d.data))
	}
	return nil
}

// ReadAt implements Device.
func (d *MemDevice) ReadAt(p []byte, off int64) error {
	return d.ReadAtWith(p, off, plainMove)
}

// plainMove is the move of ReadAt and WriteAt.
func plainMove(dst, src []byte) bool { copy(dst, src); return false }

// memChunk is how much MemDevice moves at a time in ReadAtWith and WriteAtWith: it splits a
// value as a DAX device does, so that the engine's tests cover moves in several chunks.
const memChunk = 1 << 20

// moveChunks moves src into dst a memChunk at a time.
func moveChunks(dst, src []byte, move func(dst, src []byte) bool) {
	for at := 0; at < len(src); at += memChunk {
		end := min(at+memChunk, len(src))
		move(dst[at:end], src[at:end])
	}
}

// ReadAtWith implements CPUCopier: the device is memory, so the engine's tests take the path
// the DAX tier does (a FaultDevice wrapped around it hides this, and takes the other).
func (d *MemDevice) ReadAtWith(p []byte, off int64, move func(dst, src []byte) bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(p, off); err != nil {
		return err
	}
	moveChunks(p, d.data[off:off+int64(len(p))], move)
	d.stats.Reads++
	d.stats.ReadBytes += int64(len(p))
	return nil
}

// WriteAt implements Device.
func (d *MemDevice) WriteAt(p []byte, off int64, c Class) error {
	return d.WriteAtWith(p, off, c, plainMove)
}

// WriteAtWith implements CPUCopier (see ReadAtWith).
func (d *MemDevice) WriteAtWith(p []byte, off int64, c Class, move func(dst, src []byte) bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(p, off); err != nil {
		return err
	}
	if c >= numClasses {
		return fmt.Errorf("rawblock: write with unknown placement class %d", c)
	}
	dst := d.data[off : off+int64(len(p))]
	moveChunks(dst, p, move)
	if d.durable != nil {
		d.pending = append(d.pending, memWrite{off, bytes.Clone(dst)})
	}
	for b := off / int64(d.bs); b < (off+int64(len(p)))/int64(d.bs); b++ {
		d.classes[b] = c
	}
	d.stats.Writes++
	d.stats.WriteBytes[c] += int64(len(p))
	return nil
}

// Trim implements Device. The range keeps its old bytes (the worst case a real device may
// return after deallocation: stale data that must not be mistaken for live entries).
func (d *MemDevice) Trim(off, n int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrDeviceClosed
	}
	if off < 0 || n < 0 || off%int64(d.bs) != 0 || n%int64(d.bs) != 0 || off+n > int64(len(d.data)) {
		return fmt.Errorf("%w: trim of %d bytes at %d", ErrUnaligned, n, off)
	}
	d.stats.Trims++
	d.stats.TrimBytes += n
	return nil
}

// Flush implements Device.
func (d *MemDevice) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrDeviceClosed
	}
	for _, w := range d.pending {
		copy(d.durable[w.off:], w.data)
	}
	d.pending = d.pending[:0]
	d.stats.Flushes++
	return nil
}

// Close implements Device. The contents stay readable through Image and CrashImage.
func (d *MemDevice) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	return nil
}

// Image returns a copy of the current contents (a clean shutdown).
func (d *MemDevice) Image() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.data...)
}

// CrashImage returns the contents as they could be after a power cut now: every flushed write,
// plus each block of each unflushed write with probability 1/2 (seeded), applied in write order.
// It panics without crash tracking.
func (d *MemDevice) CrashImage(seed uint64) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.durable == nil {
		panic("rawblock: CrashImage on a MemDevice without crash tracking")
	}
	img := append([]byte(nil), d.durable...)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for _, w := range d.pending {
		for b := 0; b < len(w.data); b += d.bs {
			if rng.IntN(2) == 0 {
				copy(img[w.off+int64(b):], w.data[b:b+d.bs])
			}
		}
	}
	return img
}

// Corrupt flips the bits of the byte at off, in the current and the durable contents (media
// damage, not a write).
func (d *MemDevice) Corrupt(off int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.data[off] ^= 0xff
	if d.durable != nil {
		d.durable[off] ^= 0xff
	}
}

// ClassAt returns the placement class of the last write to the block holding off.
func (d *MemDevice) ClassAt(off int64) Class {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.classes[off/int64(d.bs)]
}

// Stats returns the device's counters.
func (d *MemDevice) Stats() MemStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}
