//go:build linux

package rawblock

// This file uses unsafe once, in discard: BLKDISCARD takes a pointer to a {start, length} pair
// of u64s and x/sys/unix has no helper for it. The pair is read by the kernel only during the
// ioctl, so a Go variable kept alive by the call is enough.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"kvresp/internal/uring"
	"kvresp/slab"
)

// FileDevice is a Device over a regular file or a block device opened with O_DIRECT, doing its
// I/O through io_uring. Calls block and may come from many goroutines at once: each call goes to
// one of Rings I/O workers (round robin) through a channel; a worker owns one plain ring, gathers
// every pending call, splits large ones into ChunkSize operations, keeps up to QueueDepth of them
// in flight with one io_uring_enter per batch, and wakes each caller once all of its operations
// completed. A short transfer is resubmitted for the rest; a failed one fails the call with the
// kernel's errno wrapped (errors.Is(err, syscall.EIO) works).
//
// Buffers are the callers' (off-heap slab buffers aligned to MemAlign): the kernel DMAs
// straight into them, no copy, and they stay valid because the caller blocks until its last
// completion. With FileOptions.Arena, an operation on memory inside one of the slab's large
// buffers goes through READ_FIXED/WRITE_FIXED: each ring keeps a sparse table of fixed buffers,
// filled with a buffer's whole mapping on first use and cleared when the slab unmaps it
// (filedev_fixed_linux.go), which saves the kernel pinning and unpinning the pages of every
// operation. Other memory, or any memory once the kernel refuses to pin more (RLIMIT_MEMLOCK
// without CAP_IPC_LOCK: said once in the log), takes plain READ/WRITE, which moves the same bytes.
//
// The placement class of a write is only counted: a file or block device has no placement.
type FileDevice struct {
	path     string
	fd       int
	bs       int
	memAlign int // what direct I/O asks of memory (statx STATX_DIOALIGN), at most bs
	size     int64
	blockDev bool
	trim     TrimMode
	nvme     *nvmeDev // a namespace character device: NVMe passthrough (filedev_nvme_linux.go)
	// streams is the block-layer write stream of each class (0: none).
	streams [numClasses]uint8
	chunk   int
	log     *slog.Logger

	// mu is held shared while a call is handed to a worker and exclusively by Close, so that
	// once Close holds it no call can reach a worker any more.
	mu      sync.RWMutex
	closed  bool
	workers []*ringWorker
	next    atomic.Uint32
	wg      sync.WaitGroup

	noDiscard atomic.Bool // the block device refused BLKDISCARD: trims are counted, not done
	calls     sync.Pool

	// Fixed buffers: arena is nil when they are off. fixRings maps the base of each registered
	// mapping to the rings (bit = ringWorker.id) holding it, so that the unmap hook asks only those.
	arena       *slab.Arena
	fixMu       sync.Mutex
	fixRings    map[uintptr]uint64
	fixedWarned atomic.Bool
	stopHook    func()

	st fileCounters
}

type fileCounters struct {
	reads, writes, trims, flushes, trimsSkipped, errors, retries atomic.Uint64
	ops, submits                                                 atomic.Uint64
	fixedOps, plainOps, fixedRegs                                atomic.Uint64
	readBytes, writeBytes, trimBytes                             atomic.Int64
	classBytes                                                   [numClasses]atomic.Int64
	depth, maxDepth                                              atomic.Int64
}

// fileOp is what a call asks a worker to do.
type fileOp uint8

const (
	fileRead fileOp = iota
	fileWrite
	fileSync  // fdatasync
	filePunch // fallocate(PUNCH_HOLE|KEEP_SIZE)
	fileUnfix // clear the fixed buffer holding the mapping at off; done at once, no operation
)

// fileCall is one Device call on its way through a worker. The fields below op/buf/off/n are
// the worker's while the call is in its hands; the caller reads err after done.
type fileCall struct {
	op     fileOp
	buf    []byte
	off, n int64 // n: the length of a punch
	class  Class // of a write

	issued   int   // bytes of buf handed out as operations
	fix      int32 // 1 + the fixed-buffer slot its operations use; 0: plain I/O
	inflight int   // operations not completed yet
	err      error
	done     chan struct{}
}

func (c *fileCall) rw() bool { return c.op == fileRead || c.op == fileWrite }

// finished reports whether no further operation of c will be issued.
func (c *fileCall) finished() bool { return c.err != nil || !c.rw() || c.issued == len(c.buf) }

// opSlot is one operation in flight; its index in ringWorker.slots is the SQE's user data.
type opSlot struct {
	c   *fileCall
	pos int // offset of the operation in c.buf
	n   int
}

// wakeTag is the user data of the worker's pending read of its eventfd.
const wakeTag = ^uint64(0)

// eventfdOne is the 8-byte native-endian counter increment written to wake a worker.
var eventfdOne = binary.NativeEndian.AppendUint64(nil, 1)

// ringWorker owns one ring. Only its goroutine touches the ring and the fields above ch.
type ringWorker struct {
	d     *FileDevice
	id    int // position in FileDevice.workers
	fx    fixedTable
	ring  *uring.Ring
	qd    int
	slots []opSlot
	free  []uint32
	retry []uint32 // slots whose short transfer must be resubmitted
	queue []*fileCall
	head  int // queue[head:] wait; only queue[head] may be partly issued
	busy  int // slots in use
	cqes  []uring.CQE
	armed bool // the eventfd read is in the ring

	ch   chan *fileCall
	quit chan struct{}
	// A worker waiting in the kernel with room for more work is woken by a write to efd, which
	// completes the read of it the worker keeps in the ring. sleeping says the worker may be
	// waiting; kicked that a wake-up is on its way.
	efd      int
	efdBuf   []byte // the eventfd read's 8 bytes, in an mmap'd page the kernel may write to
	dsm      []byte // NVMe passthrough: each slot's deallocate range (16 bytes), mmap'd
	sleeping atomic.Bool
	kicked   atomic.Bool
}

// OpenFile opens (and for a regular file, creates or grows) the device o describes and starts
// its ring workers.
func OpenFile(o FileOptions) (*FileDevice, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.setDefaults()
	d := &FileDevice{path: o.Path, fd: -1, chunk: o.ChunkSize, log: o.Logger, trim: o.Trim, fixRings: make(map[uintptr]uint64)}
	if !o.NoFixedBuffers {
		d.arena = o.Arena
	}
	d.calls.New = func() any { return &fileCall{done: make(chan struct{}, 1)} }
	created, err := d.open(o)
	if err == nil {
		err = d.startWorkers(o)
	}
	if err != nil {
		d.stopWorkers()
		if d.fd >= 0 {
			_ = unix.Close(d.fd)
		}
		if created {
			_ = unix.Unlink(o.Path)
		}
		return nil, err
	}
	fixed := 0
	if d.arena != nil {
		for _, w := range d.workers {
			if w.fx.on {
				fixed = o.FixedSlots
			}
		}
		if fixed > 0 {
			d.stopHook = d.arena.OnUnmap(d.onUnmap)
		}
	}
	d.log.Info("rawblock: opened device", "path", d.path, "block_device", d.blockDev, "size", d.size,
		"block_size", d.bs, "rings", o.Rings, "queue_depth", o.QueueDepth, "chunk", d.chunk, "fixed_buffer_slots", fixed, "created", created)
	return d, nil
}

// open opens the path, sizes the device and reads its block size. It reports whether it
// created the file, so that a failure later can remove it again.
func (d *FileDevice) open(o FileOptions) (created bool, err error) {
	flags := unix.O_DIRECT | unix.O_CLOEXEC | unix.O_RDWR
	if o.ReadOnly {
		flags = unix.O_DIRECT | unix.O_CLOEXEC | unix.O_RDONLY
	}
	// Checked before opening too, because O_DIRECT on anything else fails with a vaguer EINVAL
	// or EISDIR.
	var st unix.Stat_t
	if unix.Stat(o.Path, &st) == nil {
		switch {
		case isNVMeChar(st.Mode):
			flags &^= unix.O_DIRECT // passthrough bypasses the page cache by itself
		case !isFileOrBlock(st.Mode):
			return false, fmt.Errorf("rawblock: %s is neither a regular file, a block device nor an NVMe namespace device", o.Path)
		}
	}
	d.fd, err = unix.Open(o.Path, flags, 0)
	if errors.Is(err, unix.ENOENT) && !o.ReadOnly && o.Size > 0 {
		d.fd, err = unix.Open(o.Path, flags|unix.O_CREAT|unix.O_EXCL, 0o600)
		created = err == nil
	}
	switch {
	case errors.Is(err, unix.ENOENT) && o.Size == 0:
		return false, fmt.Errorf("rawblock: %s does not exist; set a size (rawblock-size) to create it: %w", o.Path, err)
	case errors.Is(err, unix.EINVAL):
		return false, fmt.Errorf("rawblock: cannot open %s with O_DIRECT (does its filesystem support direct I/O?): %w", o.Path, err)
	case err != nil:
		return false, fmt.Errorf("rawblock: cannot open %s: %w", o.Path, err)
	}
	if err := unix.Fstat(d.fd, &st); err != nil {
		return created, fmt.Errorf("rawblock: cannot stat %s: %w", o.Path, err)
	}
	var size int64
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		d.blockDev = true
		size, err = d.blockGeometry(o)
		if streams, n := blockWriteStreams(o.Path); streams[ClassHot] != 0 {
			d.streams = streams
			d.log.Info("rawblock: writing placement classes as block-layer write streams", "path", o.Path, "max_write_streams", n)
		}
	case unix.S_IFREG:
		size, err = d.fileGeometry(o, st.Size, created)
	case unix.S_IFCHR:
		size, err = d.openNVMe(o)
	default:
		err = fmt.Errorf("rawblock: %s is neither a regular file, a block device nor an NVMe namespace device", o.Path)
	}
	if err != nil {
		return created, err
	}
	switch {
	case d.memAlign <= 0:
		d.memAlign = d.bs
	case d.memAlign > 4096:
		return created, fmt.Errorf("rawblock: direct I/O on %s needs %d-byte aligned memory; kvresp's buffers are 4096-byte aligned", o.Path, d.memAlign)
	}
	d.size = size - size%int64(d.bs)
	if d.chunk%d.bs != 0 {
		return created, fmt.Errorf("rawblock: chunk size %d is not a multiple of the block size %d of %s", d.chunk, d.bs, o.Path)
	}
	if d.size == 0 {
		return created, fmt.Errorf("rawblock: %s holds no whole %d-byte block", o.Path, d.bs)
	}
	return created, nil
}

// dioAlign returns the offset and memory alignment direct I/O on fd needs (statx
// STATX_DIOALIGN: files since Linux 6.1, block devices since 6.11); ok is false when the kernel
// does not say.
func dioAlign(fd int) (off, mem int, ok bool) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &stx); err != nil || stx.Mask&unix.STATX_DIOALIGN == 0 {
		return 0, 0, false
	}
	return int(stx.Dio_offset_align), int(stx.Dio_mem_align), true
}

func isFileOrBlock(mode uint32) bool {
	return mode&unix.S_IFMT == unix.S_IFREG || mode&unix.S_IFMT == unix.S_IFBLK
}

func (d *FileDevice) blockGeometry(o FileOptions) (int64, error) {
	size, err := unix.IoctlGetUint64(d.fd, unix.BLKGETSIZE64)
	if err != nil {
		return 0, fmt.Errorf("rawblock: cannot read the size of %s (BLKGETSIZE64): %w", o.Path, err)
	}
	bs, err := unix.IoctlGetInt(d.fd, unix.BLKSSZGET)
	if err != nil {
		return 0, fmt.Errorf("rawblock: cannot read the block size of %s (BLKSSZGET): %w", o.Path, err)
	}
	if bs < 512 || bs&(bs-1) != 0 {
		return 0, fmt.Errorf("rawblock: %s reports a logical block size of %d", o.Path, bs)
	}
	d.bs = bs
	if _, mem, ok := dioAlign(d.fd); ok {
		d.memAlign = mem
	}
	if o.Size > int64(size) {
		return 0, fmt.Errorf("rawblock: size %d is larger than the %d bytes of block device %s; lower rawblock-size or set it to 0", o.Size, size, o.Path)
	}
	if o.Size > 0 {
		return o.Size, nil
	}
	return int64(size), nil
}

// fileGeometry sizes a regular file (growing it sparse when asked) and picks its block size:
// 4096, or the filesystem's direct-I/O offset alignment when that is larger (statx
// STATX_DIOALIGN, Linux 6.1).
func (d *FileDevice) fileGeometry(o FileOptions, cur int64, created bool) (int64, error) {
	d.bs = 4096
	if off, mem, ok := dioAlign(d.fd); ok {
		switch {
		case off == 0:
			return 0, fmt.Errorf("rawblock: the filesystem of %s does not support direct I/O on it", o.Path)
		case off > d.bs:
			d.bs = off
		}
		d.memAlign = mem
	}
	switch {
	case o.Size == 0:
		if cur == 0 {
			return 0, fmt.Errorf("rawblock: %s is empty; set a size (rawblock-size)", o.Path)
		}
		return cur, nil
	case cur > o.Size:
		return 0, fmt.Errorf("rawblock: %s is %d bytes, larger than the size asked (%d); set rawblock-size to %d, or to 0 to use the file's size (kvresp does not shrink it)", o.Path, cur, o.Size, cur)
	case cur < o.Size:
		if o.ReadOnly {
			return 0, fmt.Errorf("rawblock: %s is %d bytes, smaller than the size asked (%d), and it is opened read-only", o.Path, cur, o.Size)
		}
		// ftruncate, not fallocate: the file stays sparse and blocks are allocated on first write.
		if err := unix.Ftruncate(d.fd, o.Size); err != nil {
			return 0, fmt.Errorf("rawblock: cannot size %s to %d bytes: %w", o.Path, o.Size, err)
		}
		if !created {
			d.log.Info("rawblock: grew device file", "path", o.Path, "from", cur, "to", o.Size)
		}
	}
	return o.Size, nil
}

func (d *FileDevice) startWorkers(o FileOptions) error {
	for id := range o.Rings {
		w := &ringWorker{
			d: d, id: id, qd: o.QueueDepth, efd: -1,
			slots: make([]opSlot, o.QueueDepth),
			free:  make([]uint32, 0, o.QueueDepth),
			cqes:  make([]uring.CQE, 64),
			ch:    make(chan *fileCall, 4*o.QueueDepth),
			quit:  make(chan struct{}),
		}
		for i := o.QueueDepth - 1; i >= 0; i-- {
			w.free = append(w.free, uint32(i))
		}
		// One entry more than the queue depth, for the eventfd read. NVMe passthrough needs
		// 128-byte SQEs and 32-byte CQEs.
		r, err := uring.New(uring.Params{Entries: uint32(o.QueueDepth + 1), SQE128: d.nvme != nil, CQE32: d.nvme != nil})
		if err != nil {
			return fmt.Errorf("rawblock: cannot set up io_uring for %s: %w", o.Path, err)
		}
		w.ring = r
		if d.nvme != nil {
			if err := w.setupNVMe(); err != nil {
				_ = r.Close()
				return err
			}
		}
		if d.arena != nil {
			w.setupFixed(o.FixedSlots)
		}
		if w.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC); err != nil {
			_ = r.Close()
			return fmt.Errorf("rawblock: cannot create eventfd: %w", err)
		}
		if w.efdBuf, err = unix.Mmap(-1, 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err != nil {
			_ = unix.Close(w.efd)
			_ = r.Close()
			return fmt.Errorf("rawblock: cannot map the wake-up buffer: %w", err)
		}
		d.workers = append(d.workers, w)
		d.wg.Add(1)
		go w.run()
	}
	return nil
}

// stopWorkers lets every worker finish what it was handed and waits for it to release its ring.
func (d *FileDevice) stopWorkers() {
	for _, w := range d.workers {
		close(w.quit)
	}
	d.wg.Wait()
	d.workers = nil
}

// BlockSize implements Device.
func (d *FileDevice) BlockSize() int { return d.bs }

// MemAlign implements Device.
func (d *FileDevice) MemAlign() int { return d.memAlign }

// Size implements Device.
func (d *FileDevice) Size() int64 { return d.size }

// Path returns the path the device was opened from.
func (d *FileDevice) Path() string { return d.path }

// IsBlockDevice reports whether the path is a block device (else a regular file).
func (d *FileDevice) IsBlockDevice() bool { return d.blockDev }

func (d *FileDevice) check(p []byte, off int64) error {
	switch {
	case off < 0 || off%int64(d.bs) != 0 || len(p)%d.bs != 0 || !aligned(p, d.memAlign):
		return fmt.Errorf("%w: %d bytes at %d from memory at %#x (block size %d, memory alignment %d)", ErrUnaligned, len(p), off, slab.Addr(p), d.bs, d.memAlign)
	case off+int64(len(p)) > d.size:
		return fmt.Errorf("%w: %d bytes at %d, size %d", ErrOutOfRange, len(p), off, d.size)
	}
	return nil
}

// ReadAt implements Device.
func (d *FileDevice) ReadAt(p []byte, off int64) error {
	if err := d.check(p, off); err != nil {
		d.st.errors.Add(1)
		return fmt.Errorf("rawblock: read at %d: %w", off, err)
	}
	if err := d.do(fileRead, p, off, 0, 0); err != nil {
		d.st.errors.Add(1)
		return fmt.Errorf("rawblock: read of %d bytes at %d: %w", len(p), off, err)
	}
	d.st.reads.Add(1)
	d.st.readBytes.Add(int64(len(p)))
	return nil
}

// WriteAt implements Device. c is counted, not acted on.
func (d *FileDevice) WriteAt(p []byte, off int64, c Class) error {
	err := d.check(p, off)
	if err == nil && c >= numClasses {
		err = fmt.Errorf("rawblock: unknown placement class %d", c)
	}
	if err != nil {
		d.st.errors.Add(1)
		return fmt.Errorf("rawblock: write at %d: %w", off, err)
	}
	if err := d.do(fileWrite, p, off, 0, c); err != nil {
		d.st.errors.Add(1)
		return fmt.Errorf("rawblock: write of %d bytes at %d: %w", len(p), off, err)
	}
	d.st.writes.Add(1)
	d.st.writeBytes.Add(int64(len(p)))
	d.st.classBytes[c].Add(int64(len(p)))
	return nil
}

// Trim implements Device: a hole punched in a file (it reads back zeroes), a discard on a block
// device. A block device that refuses discard is said so once in the log; its trims are counted
// as skipped and succeed, since trim is only a hint.
func (d *FileDevice) Trim(off, n int64) error {
	if off < 0 || n < 0 || off%int64(d.bs) != 0 || n%int64(d.bs) != 0 || off+n > d.size {
		d.st.errors.Add(1)
		return fmt.Errorf("rawblock: trim of %d bytes at %d: %w (block size %d, size %d)", n, off, ErrUnaligned, d.bs, d.size)
	}
	if n == 0 {
		return nil
	}
	if d.trim == TrimOff || (d.trim == TrimAuto && !d.blockDev && d.nvme == nil) {
		d.st.trimsSkipped.Add(1)
		return nil
	}
	var err error
	switch {
	case d.nvme != nil:
		err = d.trimNVMe(off, n)
	case d.blockDev:
		err = d.discard(off, n)
	default:
		err = d.do(filePunch, nil, off, n, 0)
	}
	if err != nil {
		d.st.errors.Add(1)
		return fmt.Errorf("rawblock: trim of %d bytes at %d: %w", n, off, err)
	}
	d.st.trims.Add(1)
	d.st.trimBytes.Add(n)
	return nil
}

// discard issues BLKDISCARD, synchronously: it is rare (one per reclaimed region) and io_uring
// has no discard op for block devices before URING_CMD.
func (d *FileDevice) discard(off, n int64) error {
	if d.noDiscard.Load() {
		d.st.trimsSkipped.Add(1)
		return nil
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrDeviceClosed
	}
	rng := [2]uint64{uint64(off), uint64(n)}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), unix.BLKDISCARD, uintptr(unsafe.Pointer(&rng)))
	switch errno {
	case 0:
		return nil
	case unix.EOPNOTSUPP, unix.ENOTTY:
		if !d.noDiscard.Swap(true) {
			d.log.Warn("rawblock: the block device refuses discard; trims of reclaimed regions will do nothing", "path", d.path, "error", errno)
		}
		d.st.trimsSkipped.Add(1)
		return nil
	}
	return errno
}

// Flush implements Device with fdatasync.
func (d *FileDevice) Flush() error {
	if err := d.do(fileSync, nil, 0, 0, 0); err != nil {
		d.st.errors.Add(1)
		return fmt.Errorf("rawblock: flush: %w", err)
	}
	d.st.flushes.Add(1)
	return nil
}

// Close implements Device: it waits for calls already handed to the workers, stops them and
// closes the file. Calls after Close fail with ErrDeviceClosed. Close is idempotent.
func (d *FileDevice) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	if d.stopHook != nil {
		d.stopHook()
	}
	d.stopWorkers()
	if err := unix.Close(d.fd); err != nil {
		return fmt.Errorf("rawblock: cannot close %s: %w", d.path, err)
	}
	return nil
}

// Stats returns the device's counters.
func (d *FileDevice) Stats() FileStats {
	s := FileStats{
		Reads: d.st.reads.Load(), Writes: d.st.writes.Load(), Trims: d.st.trims.Load(), Flushes: d.st.flushes.Load(),
		ReadBytes: d.st.readBytes.Load(), WriteBytes: d.st.writeBytes.Load(), TrimBytes: d.st.trimBytes.Load(),
		TrimsSkipped: d.st.trimsSkipped.Load(), Errors: d.st.errors.Load(), Retries: d.st.retries.Load(),
		Ops: d.st.ops.Load(), Submits: d.st.submits.Load(),
		FixedOps: d.st.fixedOps.Load(), PlainOps: d.st.plainOps.Load(), FixedRegistrations: d.st.fixedRegs.Load(),
		QueueDepth: d.st.depth.Load(), MaxQueueDepth: d.st.maxDepth.Load(),
	}
	for c := range s.WriteBytesByClass {
		s.WriteBytesByClass[c] = d.st.classBytes[c].Load()
	}
	return s
}

// do hands a call to a worker and waits for it. cl is the placement class of a write.
func (d *FileDevice) do(op fileOp, p []byte, off, n int64, cl Class) error {
	if len(p) == 0 && (op == fileRead || op == fileWrite) {
		return nil
	}
	c := d.calls.Get().(*fileCall)
	c.op, c.buf, c.off, c.n, c.class = op, p, off, n, cl
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		d.calls.Put(c)
		return ErrDeviceClosed
	}
	w := d.workers[int(d.next.Add(1))%len(d.workers)]
	w.ch <- c
	if w.sleeping.Load() && !w.kicked.Swap(true) {
		w.kick()
	}
	d.mu.RUnlock()
	<-c.done
	err := c.err
	*c = fileCall{done: c.done}
	d.calls.Put(c)
	return err
}

// kick wakes the worker out of its wait in the kernel by completing its eventfd read.
func (w *ringWorker) kick() {
	// An eventfd write fails only when the counter would overflow, which cannot happen while
	// the worker keeps reading it.
	_, _ = unix.Write(w.efd, eventfdOne)
}

func (w *ringWorker) run() {
	defer w.d.wg.Done()
	defer w.close()
	for {
		if w.busy == 0 && w.head == len(w.queue) {
			select {
			case c := <-w.ch:
				w.enqueue(c)
			case <-w.quit:
				// Close ran: nothing can be sent any more, but calls sent before may still wait.
				select {
				case c := <-w.ch:
					w.enqueue(c)
				default:
					return
				}
			}
		}
		w.gather()
		w.fill()
		if w.busy == 0 {
			continue
		}
		wait := true
		if w.busy < w.qd {
			// Room for more: be woken by a new call, not only by a completion.
			w.arm()
			w.sleeping.Store(true)
			select {
			case c := <-w.ch:
				w.enqueue(c)
				wait = false
			default:
			}
		}
		var err error
		if wait {
			_, err = w.ring.SubmitAndWait(1)
		} else {
			_, err = w.ring.Submit()
		}
		w.sleeping.Store(false)
		w.d.st.submits.Add(1)
		if err != nil && !errors.Is(err, uring.ErrBusy) {
			// Not expected from a healthy ring: say so and try again rather than spin.
			w.d.log.Error("rawblock: io_uring_enter failed", "path", w.d.path, "error", err)
			time.Sleep(time.Millisecond)
		}
		if w.reap() && len(w.ch) == 0 {
			// Callers just woken usually send their next call at once: let them run before
			// deciding to sleep, so that it joins this batch instead of costing a wake-up.
			runtime.Gosched()
		}
	}
}

// close shuts the worker's ring down once nothing of the device's is in flight.
func (w *ringWorker) close() {
	if w.armed {
		// Complete the eventfd read, so that the kernel is done with efdBuf before it is unmapped.
		w.kick()
		for w.armed {
			if _, err := w.ring.SubmitAndWait(1); err != nil && !errors.Is(err, uring.ErrBusy) {
				w.d.log.Error("rawblock: cannot reap the wake-up read", "path", w.d.path, "error", err)
				break
			}
			w.reap()
		}
	}
	if err := w.ring.Close(); err != nil {
		w.d.log.Warn("rawblock: cannot close ring", "error", err)
	}
	if w.dsm != nil {
		_ = unix.Munmap(w.dsm)
	}
	if !w.armed {
		_ = unix.Munmap(w.efdBuf)
	}
	_ = unix.Close(w.efd)
}

func (w *ringWorker) enqueue(c *fileCall) {
	if c.op == fileUnfix {
		w.unfix(uintptr(c.off))
		c.done <- struct{}{}
		return
	}
	w.queue = append(w.queue, c)
}

func (w *ringWorker) popHead() {
	w.queue[w.head] = nil
	w.head++
	if w.head == len(w.queue) {
		w.queue, w.head = w.queue[:0], 0
	}
}

// gather takes every call already waiting in the channel.
func (w *ringWorker) gather() {
	for {
		select {
		case c := <-w.ch:
			w.enqueue(c)
		default:
			return
		}
	}
}

// arm puts the eventfd read into the ring unless it is there.
func (w *ringWorker) arm() {
	if w.armed {
		return
	}
	s := w.ring.GetSQE()
	if s == nil {
		panic("BUG: rawblock: no SQE for the wake-up read")
	}
	s.PrepRead(int32(w.efd), w.efdBuf[:8], 0)
	s.SetUserData(wakeTag)
	w.armed = true
}

// opLen is the longest operation on buf. A passthrough command is mapped whole into one bio of
// at most ChunkSize/4096 pages (the default 1 MiB is BIO_MAX_VECS, 256; the kernel fails one
// page more with ENOMEM): on a buffer that does not start on a page boundary, a value placed
// mid-page (slab.AllocValue), a chunk would touch one page more, so operations are a page
// shorter, which keeps every one of them at the same offset into its first page. Direct I/O
// needs nothing of the kind: the kernel splits its bios itself.
func (d *FileDevice) opLen(buf []byte) int {
	if d.nvme != nil && slab.Addr(buf)%4096 != 0 && d.chunk > 4096 {
		return d.chunk - 4096
	}
	return d.chunk
}

// fill prepares SQEs: first the remainders of short transfers, then new operations from the
// queue, oldest call first, until QueueDepth operations are in flight.
func (w *ringWorker) fill() {
	for len(w.retry) > 0 {
		i := w.retry[len(w.retry)-1]
		w.retry = w.retry[:len(w.retry)-1]
		w.prep(i)
	}
	for w.busy < w.qd && w.head < len(w.queue) {
		c := w.queue[w.head]
		if c.err != nil {
			// An operation of it failed: issue no more; its last completion wakes the caller.
			w.popHead()
			continue
		}
		s := opSlot{c: c}
		if c.rw() {
			if c.issued == 0 {
				c.fix = w.fixedFor(c.buf)
			}
			s.pos = c.issued
			s.n = min(w.d.opLen(c.buf), len(c.buf)-c.issued)
			c.issued += s.n
		}
		if c.finished() {
			w.popHead()
		}
		i := w.free[len(w.free)-1]
		w.free = w.free[:len(w.free)-1]
		w.slots[i] = s
		w.busy++
		c.inflight++
		w.prep(i)
	}
}

// prep writes slot i's operation into an SQE.
func (w *ringWorker) prep(i uint32) {
	s := &w.slots[i]
	c := s.c
	sqe := w.ring.GetSQE()
	if sqe == nil {
		panic("BUG: rawblock: no SQE free with the queue depth not reached")
	}
	fd := int32(w.d.fd)
	switch {
	case w.d.nvme != nil:
		w.prepNVMe(sqe, i)
	case c.op == fileRead && c.fix > 0:
		sqe.PrepReadFixed(fd, c.buf[s.pos:s.pos+s.n], uint64(c.off)+uint64(s.pos), uint16(c.fix-1))
	case c.op == fileWrite && c.fix > 0:
		sqe.PrepWriteFixed(fd, c.buf[s.pos:s.pos+s.n], uint64(c.off)+uint64(s.pos), uint16(c.fix-1))
	case c.op == fileRead:
		sqe.PrepRead(fd, c.buf[s.pos:s.pos+s.n], uint64(c.off)+uint64(s.pos))
	case c.op == fileWrite:
		sqe.PrepWrite(fd, c.buf[s.pos:s.pos+s.n], uint64(c.off)+uint64(s.pos))
	case c.op == fileSync:
		sqe.PrepFsync(fd, uring.FsyncDatasync)
	case c.op == filePunch:
		sqe.PrepFallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, uint64(c.off), uint64(c.n))
	}
	if c.op == fileWrite && w.d.streams[c.class] != 0 {
		sqe.SetWriteStream(w.d.streams[c.class])
	}
	sqe.SetUserData(uint64(i))
	w.d.st.ops.Add(1)
	switch {
	case c.rw() && c.fix > 0:
		w.d.st.fixedOps.Add(1)
	case c.rw():
		w.d.st.plainOps.Add(1)
	}
	depth := w.d.st.depth.Add(1)
	for {
		m := w.d.st.maxDepth.Load()
		if depth <= m || w.d.st.maxDepth.CompareAndSwap(m, depth) {
			return
		}
	}
}

// reap handles every completion in the CQ and reports whether a caller was woken.
func (w *ringWorker) reap() (woke bool) {
	for {
		n := w.ring.PeekBatchCQE(w.cqes)
		if n == 0 {
			return woke
		}
		for _, cqe := range w.cqes[:n] {
			woke = w.complete(cqe) || woke
		}
		w.ring.CQAdvance(uint32(n))
	}
}

// complete handles one completion and reports whether it woke the caller.
func (w *ringWorker) complete(cqe uring.CQE) bool {
	if cqe.UserData == wakeTag {
		w.armed = false
		w.kicked.Store(false)
		return false
	}
	w.d.st.depth.Add(-1)
	i := uint32(cqe.UserData)
	s := &w.slots[i]
	c := s.c
	var err error
	res := int(cqe.Res)
	if w.d.nvme != nil {
		res, err = nvmeResult(cqe.Res, s.n)
	}
	switch {
	case err != nil:
	case res < 0:
		err = cqe.Err()
	case !c.rw() || res == s.n:
	case res == 0 && c.op == fileRead:
		err = io.ErrUnexpectedEOF // the file ends before the device does: it was truncated
	case res == 0:
		err = io.ErrShortWrite
	case res > s.n:
		panic(fmt.Sprintf("BUG: rawblock: %d bytes transferred for an operation of %d", res, s.n))
	case c.err == nil:
		// A short transfer: resubmit the rest (O_DIRECT keeps it aligned, or the kernel says
		// EINVAL, which then fails the call).
		s.pos += res
		s.n -= res
		w.retry = append(w.retry, i)
		w.d.st.retries.Add(1)
		return false
	}
	if err != nil && c.err == nil {
		c.err = err
	}
	*s = opSlot{}
	w.free = append(w.free, i)
	w.busy--
	c.inflight--
	if c.inflight > 0 || !c.finished() {
		return false
	}
	if w.head < len(w.queue) && w.queue[w.head] == c {
		// Failed before all of it was issued: it is still at the head of the queue.
		w.popHead()
	}
	w.releaseFixed(c)
	c.done <- struct{}{}
	return true
}
