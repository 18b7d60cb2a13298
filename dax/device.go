// Package dax is kvresp's DAX device: a rawblock.Device over a memory mapping of persistent
// memory (DESIGN.md §1), so that the rawblock log engine runs on it unchanged as the DAX tier.
// Three kinds of path are accepted (Open, Linux only):
//
//   - a file on a filesystem mounted -o dax (fsdax): mapped MAP_SHARED_VALIDATE|MAP_SYNC, so the
//     filesystem's metadata for every page is durable before the page can be written, and data
//     is made durable by writing back the CPU cache lines that hold it (CLWB, else CLFLUSHOPT,
//     else CLFLUSH, chosen by CPUID) and a store fence;
//   - a device-DAX character device /dev/daxX.Y (devdax): its size and alignment from sysfs, the
//     whole device mapped at once, same flushing;
//   - any other file (no DAX: the kernel refuses MAP_SYNC): mapped MAP_SHARED, made durable by
//     msync of the ranges written since the last Flush; Open says so once in the log.
//
// Reads and writes copy between the caller's buffer (a slab buffer) and the mapping. A fault
// while touching the mapping (a poisoned persistent-memory line, a file truncated underneath)
// becomes an error of that call, not a crash of the process.
package dax

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"

	"kvresp/internal/hashcopy"
	"kvresp/rawblock"
	"kvresp/slab"
)

// BlockSize is the device's block size: a page, which is also the unit fsdax allocates in.
const BlockSize = 4096

// flushChunk is how much WriteAt copies before writing back the cache lines of what it copied
// through the caches (a copy by hashcopy with non-temporal stores needs no write-back). For
// that fallback, 1 MiB is where Go's memmove on amd64 switches to non-temporal stores, which
// do not read the destination into the cache first: 1 MiB chunks wrote at about twice the
// speed of 64 KiB ones copied through the cache, although the write-back pass then costs more
// (BenchmarkDaxFlush). It also bounds the time spent in one non-preemptible assembly call
// (16384 lines).
const flushChunk = 1 << 20

// Mode is how a Device reached its memory.
type Mode uint8

// Modes.
const (
	// ModeFile is a plain file mapping: durable through msync.
	ModeFile Mode = iota
	// ModeFSDAX is a file on a DAX filesystem mapped with MAP_SYNC: durable by cache-line flush.
	ModeFSDAX
	// ModeDevDAX is a device-DAX character device: durable by cache-line flush.
	ModeDevDAX
)

func (m Mode) String() string {
	switch m {
	case ModeFile:
		return "file"
	case ModeFSDAX:
		return "fsdax"
	case ModeDevDAX:
		return "devdax"
	}
	return "unknown"
}

// Errors beyond rawblock's device errors.
var (
	// ErrFault is returned by a read or write that faulted on the mapping: a media error
	// (poisoned persistent memory) or a file made shorter underneath the mapping.
	ErrFault = errors.New("dax: memory fault in the mapping")
	// ErrReadOnly is returned by writes, trims and flushes of a device opened read-only.
	ErrReadOnly = fmt.Errorf("dax: device opened read-only: %w", syscall.EBADF)
)

// Options configure Open. Zero values mean defaults; Path is required.
type Options struct {
	// Path is a file or a device-DAX character device /dev/daxX.Y (dax-path).
	Path string
	// Size is the device size in bytes (dax-size), a multiple of 4096. For a file: a missing
	// one is created with this size and fully allocated (fallocate; a write through a mapping
	// into a hole of a full filesystem would be a SIGBUS, not an error), a smaller one is grown
	// the same way, a larger one is refused (shrinking would destroy data). For a device-DAX:
	// at most the device's size and a multiple of its alignment; its first Size bytes are used.
	// 0 means the existing file's or device's size.
	Size int64
	// ReadOnly maps the path for reading only (kvresp check): writes, trims and flushes fail
	// with ErrReadOnly.
	ReadOnly bool
	// Logger receives one line per notable event; nil = slog.Default().
	Logger *slog.Logger

	// forceLines makes a plain file mapping flush cache lines instead of msyncing, for the
	// benchmarks that measure the cost of the flushes on this machine's tmpfs. It gives no
	// durability where MAP_SYNC was refused.
	forceLines bool
}

// Validate reports every problem with the options at once.
func (o Options) Validate() error {
	var errs []error
	if o.Path == "" {
		errs = append(errs, errors.New("dax: a path is required (dax-path)"))
	}
	if o.Size < 0 || o.Size%BlockSize != 0 {
		errs = append(errs, fmt.Errorf("dax: size %d must be a non-negative multiple of %d (dax-size)", o.Size, BlockSize))
	}
	if o.ReadOnly && o.Size != 0 {
		errs = append(errs, errors.New("dax: a size cannot be given with read-only (nothing is created or grown)"))
	}
	return errors.Join(errs...)
}

// persister is how a Device makes bytes durable: the CPU's cache-line write-back and fence,
// and msync (cpuPersister), or a test's recorder of what would have survived a power cut.
type persister interface {
	// writeBack starts writing back every cache line overlapping b.
	writeBack(b []byte) error
	// streamed tells of b, written with non-temporal stores (hashcopy), which bypass the
	// caches: the next fence makes it durable with no write-back.
	streamed(b []byte)
	// fence returns once the write-backs (and non-temporal stores) this thread started are
	// durable.
	fence()
	// msync writes back the dirty pages of b (a plain file mapping).
	msync(b []byte) error
	// name says which instruction or call writeBack uses, for Stats.
	name() string
}

// Device is a rawblock.Device over a mapping. It is safe for concurrent use.
type Device struct {
	path     string
	mode     Mode
	mapSync  bool
	lines    bool // durable by cache-line write-back (fsdax, devdax); else by msync
	readOnly bool
	size     int64
	align    int64
	log      *slog.Logger
	p        persister
	release  func() error // unmaps and closes

	// mu is held shared by every call that touches mem and exclusively by Close, which unmaps it.
	mu     sync.RWMutex
	mem    []byte
	closed bool

	dirtyMu sync.Mutex
	dirty   dirtySet // msync mode: what was written since the last Flush

	st counters
}

type counters struct {
	reads, writes, flushes, msyncs, streamed, trimsSkipped, faults, errors atomic.Uint64
	readBytes, writeBytes, msyncBytes, trimBytes                           atomic.Int64
	classBytes                                                             [3]atomic.Int64
}

// Stats are a Device's counters, for INFO and metrics.
type Stats struct {
	Path    string
	Mode    Mode
	MapSync bool   // the mapping has MAP_SYNC (fsdax; devdax when the kernel takes the flag)
	Flusher string // clwb, clflushopt or clflush (fsdax, devdax), msync (a plain file)
	Size    int64
	Align   int64 // the device-DAX alignment; the page size otherwise

	Reads, Writes         uint64
	ReadBytes, WriteBytes int64
	// WriteBytesByClass counts written bytes by placement class (meta, hot, cold).
	WriteBytesByClass [3]int64
	// Flushes counts Flush calls; LinesFlushed the cache lines written back (by WriteAt in the
	// cache-line modes) and LinesStreamed those written with non-temporal stores instead,
	// which need no write-back; Msyncs and MsyncBytes the msync calls of Flush (a plain file).
	Flushes, LinesFlushed, LinesStreamed, Msyncs uint64
	MsyncBytes                                   int64
	// TrimsSkipped counts Trim calls, which never deallocate (see Trim); TrimBytes their bytes.
	TrimsSkipped uint64
	TrimBytes    int64
	// Faults counts reads and writes that faulted on the mapping; Errors every failed call.
	Faults, Errors uint64
}

var (
	_ rawblock.Device    = (*Device)(nil)
	_ rawblock.CPUCopier = (*Device)(nil)
)

// deviceParams is what newDevice needs; Open fills it from the path, tests from a mapping.
type deviceParams struct {
	path     string
	mode     Mode
	mapSync  bool
	lines    bool
	readOnly bool
	align    int64
	mem      []byte
	p        persister
	release  func() error
	log      *slog.Logger
}

func newDevice(dp deviceParams) *Device {
	size := int64(len(dp.mem)) &^ (BlockSize - 1)
	return &Device{
		path: dp.path, mode: dp.mode, mapSync: dp.mapSync, lines: dp.lines, readOnly: dp.readOnly,
		size: size, align: dp.align, log: dp.log, p: dp.p, release: dp.release, mem: dp.mem[:size],
	}
}

// BlockSize implements rawblock.Device.
func (d *Device) BlockSize() int { return BlockSize }

// MemAlign implements rawblock.Device: the CPU copies, so any buffer would do; a cache line
// keeps the copies' non-temporal stores on whole lines.
func (d *Device) MemAlign() int { return 64 }

// Size implements rawblock.Device.
func (d *Device) Size() int64 { return d.size }

// Path returns the path the device was opened from.
func (d *Device) Path() string { return d.path }

// Mode returns how the device reaches its memory.
func (d *Device) Mode() Mode { return d.mode }

// check validates an I/O of n bytes at off. The buffer itself needs no alignment: nothing DMAs
// into it.
func (d *Device) check(n int, off int64) error {
	switch {
	case off < 0 || off%BlockSize != 0 || n%BlockSize != 0:
		return fmt.Errorf("%w: %d bytes at %d (block size %d)", rawblock.ErrUnaligned, n, off, BlockSize)
	case off+int64(n) > d.size:
		return fmt.Errorf("%w: %d bytes at %d, size %d", rawblock.ErrOutOfRange, n, off, d.size)
	}
	return nil
}

// ReadAt implements rawblock.Device: it copies from the mapping into p.
//
// The copy goes through the caches: what the engine reads this way (headers, small entries, a
// scan's buffers) it reads again at once.
func (d *Device) ReadAt(p []byte, off int64) error {
	return d.ReadAtWith(p, off, func(dst, src []byte) bool { copy(dst, src); return false })
}

// ReadAtWith implements rawblock.CPUCopier: ReadAt, with the bytes moved by move (in one
// chunk).
func (d *Device) ReadAtWith(p []byte, off int64, move func(dst, src []byte) bool) (err error) {
	if err := d.check(len(p), off); err != nil {
		d.st.errors.Add(1)
		return fmt.Errorf("dax: read at %d: %w", off, err)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return rawblock.ErrDeviceClosed
	}
	defer d.catchFault(&err, "read", len(p), off)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	move(p, d.mem[off:off+int64(len(p))])
	d.st.reads.Add(1)
	d.st.readBytes.Add(int64(len(p)))
	return nil
}

// WriteAt implements rawblock.Device: it copies p into the mapping and, in the cache-line
// modes, makes it durable before returning.
//
// Why here and not in Flush: the engine's contract is only that a write is durable after a
// Flush that follows its completion, so the write-back could wait for Flush. But Flush would
// then keep a list of the ranges written and walk them all in one pass on the flushing thread,
// while every syncing writer waits for it in the engine's group commit; here each writer writes
// back its own lines on its own CPU, a chunk at a time right after copying it (flushChunk), in
// parallel with the other writers. And a store fence orders only the write-backs (and
// non-temporal stores) of the CPU that issues it, so a Flush on another thread could not fence
// them anyway. So WriteAt copies with non-temporal stores where it can (hashcopy.Copy), writes
// back the lines of each chunk it could not, and fences once at the end (the goroutine may
// change threads between chunks, but only through the scheduler's locked instructions, which
// order write-backs as a fence does): a write is durable when WriteAt returns, and Flush is one
// more fence.
//
// For a plain file the written range is only noted; Flush msyncs the ranges noted since the
// previous Flush.
func (d *Device) WriteAt(p []byte, off int64, c rawblock.Class) error {
	return d.WriteAtWith(p, off, c, hashcopy.Copy)
}

// WriteAtWith implements rawblock.CPUCopier: WriteAt, with the bytes moved by move. In the
// cache-line modes move is called a flushChunk at a time, and the lines of a chunk it wrote
// with ordinary stores are written back right after it (non-temporal stores need only the
// final fence).
func (d *Device) WriteAtWith(p []byte, off int64, c rawblock.Class, move func(dst, src []byte) bool) (err error) {
	err = d.check(len(p), off)
	if err == nil && int(c) >= len(d.st.classBytes) {
		err = fmt.Errorf("dax: unknown placement class %d", c)
	}
	if err == nil && d.readOnly {
		err = ErrReadOnly
	}
	if err != nil {
		d.st.errors.Add(1)
		return fmt.Errorf("dax: write at %d: %w", off, err)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return rawblock.ErrDeviceClosed
	}
	defer d.catchFault(&err, "write", len(p), off)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var streamed uint64 // lines stored non-temporally; the others are written back
	if d.lines {
		for done := 0; done < len(p); {
			n := min(flushChunk, len(p)-done)
			dst := d.mem[off+int64(done) : off+int64(done+n)]
			if move(dst, p[done:done+n]) {
				d.p.streamed(dst)
				streamed += uint64(len(dst) / cacheLine)
			} else {
				if err := d.p.writeBack(dst); err != nil {
					d.st.errors.Add(1)
					return fmt.Errorf("dax: write of %d bytes at %d: cannot write cache lines back: %w", len(p), off, err)
				}
			}
			done += n
		}
		d.p.fence()
	} else {
		move(d.mem[off:off+int64(len(p))], p)
		d.dirtyMu.Lock()
		d.dirty.add(off, off+int64(len(p)))
		d.dirtyMu.Unlock()
	}
	d.st.writes.Add(1)
	d.st.writeBytes.Add(int64(len(p)))
	d.st.streamed.Add(streamed) // after writeBytes: Stats derives LinesFlushed from both
	d.st.classBytes[c].Add(int64(len(p)))
	return nil
}

// cacheLine is the unit of write-back counted in Stats.LinesFlushed (x86's line size).
const cacheLine = 64

// catchFault turns a memory fault in the mapping during the deferring call into an error. It
// is deferred just before the call makes this goroutine's faults panics (SetPanicOnFault, whose
// restore is deferred after it, so runs first); any other panic goes on.
func (d *Device) catchFault(err *error, op string, n int, off int64) {
	r := recover()
	if r == nil {
		return
	}
	f, ok := r.(interface{ Addr() uintptr })
	base := slab.Addr(d.mem)
	if !ok || f.Addr() < base || f.Addr() >= base+uintptr(len(d.mem)) {
		panic(r)
	}
	d.st.faults.Add(1)
	d.st.errors.Add(1)
	*err = fmt.Errorf("dax: %s of %d bytes at %d: %w at device offset %d (a media error, or the file was truncated)", op, n, off, ErrFault, f.Addr()-base)
}

// Trim implements rawblock.Device. It deallocates nothing: the range keeps its bytes (which
// the engine treats as stale), and the call is counted. Punching a hole into a mapped file
// would make the next write into the region fault in a new allocation, which fails with
// SIGBUS rather than an error when the filesystem is full, and breaks the 2 MiB extents that
// let fsdax map huge pages; the log overwrites whole regions anyway.
func (d *Device) Trim(off, n int64) error {
	if off < 0 || n < 0 || off%BlockSize != 0 || n%BlockSize != 0 || off+n > d.size {
		d.st.errors.Add(1)
		return fmt.Errorf("dax: trim of %d bytes at %d: %w (block size %d, size %d)", n, off, rawblock.ErrUnaligned, BlockSize, d.size)
	}
	if d.readOnly {
		d.st.errors.Add(1)
		return fmt.Errorf("dax: trim at %d: %w", off, ErrReadOnly)
	}
	d.st.trimsSkipped.Add(1)
	d.st.trimBytes.Add(n)
	return nil
}

// Flush implements rawblock.Device: in the cache-line modes a store fence (writes are durable
// when WriteAt returns, see there); for a plain file, msync of every range written since the
// previous Flush. Ranges whose msync failed stay noted for the next Flush.
func (d *Device) Flush() error {
	if d.readOnly {
		d.st.errors.Add(1)
		return fmt.Errorf("dax: flush: %w", ErrReadOnly)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return rawblock.ErrDeviceClosed
	}
	d.st.flushes.Add(1)
	if d.lines {
		d.p.fence()
		return nil
	}
	// Ranges written after this point belong to the next Flush: their writes had not completed
	// when this one began, so the contract does not cover them.
	d.dirtyMu.Lock()
	ranges := d.dirty.take()
	d.dirtyMu.Unlock()
	for i, r := range ranges {
		err := d.p.msync(d.mem[r[0]:r[1]])
		if err != nil {
			d.dirtyMu.Lock()
			for _, r := range ranges[i:] {
				d.dirty.add(r[0], r[1])
			}
			d.dirtyMu.Unlock()
			d.st.errors.Add(1)
			return fmt.Errorf("dax: flush: msync of %d bytes at %d: %w", r[1]-r[0], r[0], err)
		}
		d.st.msyncs.Add(1)
		d.st.msyncBytes.Add(r[1] - r[0])
	}
	return nil
}

// Close implements rawblock.Device: it waits for calls in flight, then unmaps and closes. A
// plain file is not msynced: the engine flushes before it closes its device, and an unmapped
// dirty page still reaches the file through the page cache. Close is idempotent.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.release == nil {
		return nil
	}
	if err := d.release(); err != nil {
		return fmt.Errorf("dax: cannot close %s: %w", d.path, err)
	}
	return nil
}

// Stats returns the device's counters.
func (d *Device) Stats() Stats {
	streamed := d.st.streamed.Load() // before writeBytes, which WriteAt adds first
	s := Stats{
		Path: d.path, Mode: d.mode, MapSync: d.mapSync, Flusher: "msync", Size: d.size, Align: d.align,
		Reads: d.st.reads.Load(), Writes: d.st.writes.Load(), ReadBytes: d.st.readBytes.Load(), WriteBytes: d.st.writeBytes.Load(),
		Flushes: d.st.flushes.Load(), LinesStreamed: streamed, Msyncs: d.st.msyncs.Load(), MsyncBytes: d.st.msyncBytes.Load(),
		TrimsSkipped: d.st.trimsSkipped.Load(), TrimBytes: d.st.trimBytes.Load(), Faults: d.st.faults.Load(), Errors: d.st.errors.Load(),
	}
	if d.lines {
		// Every line a write stored was streamed or written back (writes are whole blocks).
		s.Flusher, s.LinesFlushed = d.p.name(), uint64(s.WriteBytes/cacheLine)-s.LinesStreamed
	}
	for i := range s.WriteBytesByClass {
		s.WriteBytesByClass[i] = d.st.classBytes[i].Load()
	}
	return s
}
