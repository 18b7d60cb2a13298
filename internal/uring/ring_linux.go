//go:build linux

package uring

// This file uses unsafe to point into the rings the kernel shares through mmap: the SQ and CQ
// head/tail/flags words, the SQE array and the CQE array, plus one mmap'd scratch page for the
// wait arguments. None of that memory belongs to the Go heap, so the GC neither scans nor moves
// it. The indices shared with the kernel are read and written with sync/atomic: the SQ tail is
// stored after the SQE contents are written (release), the CQ tail is loaded before CQE contents
// are read (acquire), and the CQ head store tells the kernel a slot may be reused.

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ring is one io_uring instance. It is not safe for concurrent use; see the package doc.
type Ring struct {
	fd       int
	flags    uint32 // IORING_SETUP_* in effect
	features uint32 // IORING_FEAT_*

	// SQ ring.
	sqHead    *uint32 // kernel writes: entries consumed
	sqTail    *uint32 // we write: entries published
	sqFlags   *uint32 // kernel writes: IORING_SQ_*
	sqMask    uint32
	sqEntries uint32
	sqeTail   uint32 // local: entries handed out by GetSQE, published on flush
	sqes      unsafe.Pointer
	sqeSize   uintptr // 64, or 128 with SQE128

	// CQ ring.
	cqHead     *uint32 // we write: entries consumed
	cqTail     *uint32 // kernel writes: entries posted
	cqOverflow *uint32
	cqMask     uint32
	cqEntries  uint32
	cqes       unsafe.Pointer
	cqeSize    uintptr // 16, or 32 with CQE32

	sqRing, cqRing, sqeMem []byte // mmaps; cqRing is nil when shared with sqRing
	// scratch is one mmap'd page: geteventsArg at 0, kernelTimespec at 64, and for the buffer
	// table calls an rsrcRegister or rsrcUpdate2 at 128 and its iovecs from 256. Those hold
	// further pointers, so they must not be on a goroutine stack that could move.
	scratch []byte
}

// Scratch page layout for the buffer table calls.
const (
	scratchRsrc   = 128
	scratchIovecs = 256
)

// cqe16 is struct io_uring_cqe.
type cqe16 struct {
	userData uint64
	res      int32
	flags    uint32
}

// cqe32 is struct io_uring_cqe with the CQE32 tail.
type cqe32 struct {
	userData uint64
	res      int32
	flags    uint32
	big      [2]uint64
}

// New sets up a ring as p describes. On a kernel without io_uring (or with it disabled by
// sysctl) the error matches unix.ENOSYS or unix.EPERM.
func New(p Params) (*Ring, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	entries := p.Entries
	if entries == 0 {
		entries = defaultEntries
	}
	kp := ioUringParams{
		flags:        p.setupFlags(),
		cqEntries:    p.CQEntries,
		sqThreadIdle: p.SQThreadIdleMs,
		sqThreadCPU:  p.SQThreadCPU,
	}
	fd, err := sysSetup(entries, &kp)
	if err != nil {
		return nil, fmt.Errorf("cannot set up io_uring (flags %#x): %w", kp.flags, err)
	}
	r := &Ring{fd: fd, flags: kp.flags, features: kp.features}
	if err := r.mmap(&kp); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// setupFlags returns the IORING_SETUP_* bits p asks for.
func (p Params) setupFlags() uint32 {
	f := p.ExtraFlags
	set := func(on bool, bit uint32) {
		if on {
			f |= bit
		}
	}
	set(p.CQEntries != 0, SetupCQSize)
	set(p.SQPoll, SetupSQPoll)
	set(p.SQAff, SetupSQAff)
	set(p.SingleIssuer, SetupSingleIssuer)
	set(p.DeferTaskrun, SetupDeferTaskrun)
	set(p.CoopTaskrun, SetupCoopTaskrun)
	set(p.SQE128, SetupSQE128)
	set(p.CQE32, SetupCQE32)
	set(p.Clamp, SetupClamp)
	return f
}

func (r *Ring) mmap(kp *ioUringParams) error {
	r.sqeSize = 64
	if r.flags&SetupSQE128 != 0 {
		r.sqeSize = 128
	}
	r.cqeSize = 16
	if r.flags&SetupCQE32 != 0 {
		r.cqeSize = 32
	}
	sqSize := int(kp.sqOff.array) + int(kp.sqEntries)*4
	cqSize := int(kp.cqOff.cqes) + int(kp.cqEntries)*int(r.cqeSize)
	single := kp.features&FeatSingleMmap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	mmap := func(off int64, size int, what string) ([]byte, error) {
		b, err := unix.Mmap(r.fd, off, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return nil, fmt.Errorf("cannot mmap io_uring %s (%d bytes): %w", what, size, err)
		}
		return b, nil
	}
	var err error
	if r.sqRing, err = mmap(offSQRing, sqSize, "SQ ring"); err != nil {
		return err
	}
	cq := r.sqRing
	if !single {
		if r.cqRing, err = mmap(offCQRing, cqSize, "CQ ring"); err != nil {
			return err
		}
		cq = r.cqRing
	}
	if r.sqeMem, err = mmap(offSQEs, int(kp.sqEntries)*int(r.sqeSize), "SQE array"); err != nil {
		return err
	}
	if r.scratch, err = unix.Mmap(-1, 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err != nil {
		return fmt.Errorf("cannot mmap io_uring scratch page: %w", err)
	}

	sq := r.sqRing
	u32 := func(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }
	r.sqHead = u32(sq, kp.sqOff.head)
	r.sqTail = u32(sq, kp.sqOff.tail)
	r.sqFlags = u32(sq, kp.sqOff.flags)
	r.sqMask = *u32(sq, kp.sqOff.ringMask)
	r.sqEntries = *u32(sq, kp.sqOff.ringEntries)
	r.sqes = unsafe.Pointer(&r.sqeMem[0])
	// The SQ index array maps ring slot i to SQE i once and for all, so publishing entries is
	// only a tail store (liburing does the same).
	array := unsafe.Slice(u32(sq, kp.sqOff.array), r.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	r.sqeTail = atomic.LoadUint32(r.sqTail)

	r.cqHead = u32(cq, kp.cqOff.head)
	r.cqTail = u32(cq, kp.cqOff.tail)
	r.cqOverflow = u32(cq, kp.cqOff.overflow)
	r.cqMask = *u32(cq, kp.cqOff.ringMask)
	r.cqEntries = *u32(cq, kp.cqOff.ringEntries)
	r.cqes = unsafe.Pointer(&cq[kp.cqOff.cqes])
	return nil
}

// Close unmaps the rings and closes the ring's file descriptor. Reap every completion first:
// the kernel cancels ops still in flight asynchronously, and such an op may still touch its
// buffer after Close returns. Close is idempotent.
func (r *Ring) Close() error {
	if r.fd < 0 {
		return nil
	}
	var errs []error
	for _, m := range []*[]byte{&r.sqeMem, &r.cqRing, &r.sqRing, &r.scratch} {
		if *m != nil {
			errs = append(errs, unix.Munmap(*m))
			*m = nil
		}
	}
	errs = append(errs, unix.Close(r.fd))
	r.fd = -1
	r.sqes, r.cqes = nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cannot close io_uring: %w", err)
	}
	return nil
}

// Fd returns the ring's file descriptor.
func (r *Ring) Fd() int { return r.fd }

// SetupFlags returns the IORING_SETUP_* flags the ring was created with.
func (r *Ring) SetupFlags() uint32 { return r.flags }

// Features returns the IORING_FEAT_* flags the kernel reported.
func (r *Ring) Features() uint32 { return r.features }

// SQEntries returns the SQ size the kernel chose.
func (r *Ring) SQEntries() uint32 { return r.sqEntries }

// CQEntries returns the CQ size the kernel chose.
func (r *Ring) CQEntries() uint32 { return r.cqEntries }

// CQOverflow returns how many completions the kernel could not post because the CQ was full
// (with FeatNoDrop they were kept and posted later, but reaping lagged behind).
func (r *Ring) CQOverflow() uint32 { return atomic.LoadUint32(r.cqOverflow) }

// SQSpace returns how many SQEs GetSQE can still hand out before a submit.
func (r *Ring) SQSpace() uint32 { return r.sqEntries - (r.sqeTail - atomic.LoadUint32(r.sqHead)) }

// GetSQE returns the next free submission entry, zeroed in full (64 or 128 bytes, so a command
// area left over from an earlier URING_CMD never leaks into the next op), or nil when the SQ is
// full: submit, and with SQPoll wait for the kernel thread to consume, then retry. The entry is
// published to the kernel by the next Submit or wait.
func (r *Ring) GetSQE() *SQE {
	if r.sqes == nil {
		return nil
	}
	head := atomic.LoadUint32(r.sqHead)
	if r.sqeTail-head >= r.sqEntries {
		return nil
	}
	s := (*SQE)(unsafe.Add(r.sqes, uintptr(r.sqeTail&r.sqMask)*r.sqeSize))
	r.sqeTail++
	s.clear(int(r.sqeSize))
	return s
}

// Cmd returns the 80-byte command area of s (from offset 48), where a URING_CMD carries its
// driver command (struct nvme_uring_cmd for NVMe). It panics unless the ring has SQE128: in a
// 64-byte ring those bytes are the next entry.
func (r *Ring) Cmd(s *SQE) *[80]byte {
	if r.sqeSize != 128 {
		panic("BUG: uring: Cmd on a ring without SQE128")
	}
	return s.cmdArea()
}

// flushSQ publishes the entries handed out by GetSQE and returns how many the kernel has not
// consumed yet.
func (r *Ring) flushSQ() uint32 {
	// A sequentially consistent store: it is a release for the SQE contents written before it,
	// and (for SQPoll) it orders before the load of the NEED_WAKEUP flag in the caller.
	atomic.StoreUint32(r.sqTail, r.sqeTail)
	return r.sqeTail - atomic.LoadUint32(r.sqHead)
}

func (r *Ring) sqPoll() bool { return r.flags&SetupSQPoll != 0 }

// Submit hands the prepared SQEs to the kernel and returns how many it took. It does not wait.
func (r *Ring) Submit() (int, error) { return r.submitAndWait(0, -1) }

// SubmitAndWait submits the prepared SQEs and waits until at least n completions are ready in
// the CQ (IORING_ENTER_GETEVENTS). It returns how many SQEs were submitted.
func (r *Ring) SubmitAndWait(n uint32) (int, error) { return r.submitAndWait(n, -1) }

// SubmitAndWaitTimeout is SubmitAndWait giving up after d with ErrTimeout. It needs FeatExtArg
// (Linux 5.11).
func (r *Ring) SubmitAndWaitTimeout(n uint32, d time.Duration) (int, error) {
	return r.submitAndWait(n, max(d, 0))
}

// submitAndWait is the one place that calls io_uring_enter to submit and wait. timeout < 0
// waits without limit. It returns how many SQEs were handed to the kernel.
func (r *Ring) submitAndWait(n uint32, timeout time.Duration) (int, error) {
	if r.fd < 0 {
		return 0, ErrClosed
	}
	if n > r.cqEntries {
		return 0, fmt.Errorf("uring: cannot wait for %d completions with a CQ of %d entries", n, r.cqEntries)
	}
	if timeout >= 0 && n > 0 && r.features&FeatExtArg == 0 {
		return 0, fmt.Errorf("uring: a wait with a timeout needs IORING_FEAT_EXT_ARG (Linux 5.11): %w", errors.ErrUnsupported)
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	// With SQPoll the kernel thread takes what we publish; without, io_uring_enter reports
	// what it took.
	published := int(r.sqeTail - atomic.LoadUint32(r.sqTail))
	submitted := 0
	result := func() int {
		if r.sqPoll() {
			return published
		}
		return submitted
	}
	for {
		toSubmit := r.flushSQ()
		var flags uint32
		if r.sqPoll() {
			toSubmit = 0
			if atomic.LoadUint32(r.sqFlags)&sqNeedWakeup != 0 {
				flags |= enterSQWakeup
			}
		}
		if n > 0 || r.cqNeedsFlush() {
			flags |= enterGetEvents
		}
		if flags == 0 && toSubmit == 0 {
			return result(), nil
		}
		var arg, argSize uintptr
		if timeout >= 0 && n > 0 {
			// The timespec and the argument that points to it live in the mmap'd scratch
			// page: the kernel follows the inner pointer, which the Go compiler cannot see.
			rem := max(time.Until(deadline), 0)
			ts := (*kernelTimespec)(unsafe.Pointer(&r.scratch[64]))
			ts.sec, ts.nsec = int64(rem/time.Second), int64(rem%time.Second)
			ga := (*geteventsArg)(unsafe.Pointer(&r.scratch[0]))
			*ga = geteventsArg{sigmaskSz: nsig8, ts: uint64(uintptr(unsafe.Pointer(ts)))}
			arg, argSize = uintptr(unsafe.Pointer(ga)), unsafe.Sizeof(*ga)
			flags |= enterExtArg
		}
		ret, err := sysEnter(r.fd, toSubmit, n, flags, arg, argSize)
		if err != nil {
			switch {
			case err == unix.EINTR:
				continue // a signal (Go preempts with SIGURG): submit what is left and wait again
			case err == unix.ETIME:
				if r.CQReady() >= n {
					return result(), nil
				}
				return result(), fmt.Errorf("%w (%w)", ErrTimeout, err)
			case err == unix.EAGAIN || err == unix.EBUSY:
				if n > 0 && r.CQReady() > 0 {
					return result(), nil // completions wait to be reaped: what the caller wants
				}
				return result(), fmt.Errorf("%w (%w)", ErrBusy, err)
			case err == unix.EEXIST && r.flags&SetupSingleIssuer != 0:
				return result(), fmt.Errorf("%w (%w)", ErrWrongThread, err)
			}
			return result(), fmt.Errorf("io_uring_enter: %w", err)
		}
		submitted += ret
		if n == 0 {
			if r.sqPoll() || uint32(ret) >= toSubmit || ret == 0 {
				return result(), nil
			}
			continue // the kernel stopped short (for example out of memory): submit the rest
		}
		if r.CQReady() >= n {
			return result(), nil
		}
		// Woken early: a signal arrived, or something was submitted, which hides the wait's
		// own result. Wait again for what is left of the timeout.
		if timeout >= 0 && !time.Now().Before(deadline) {
			return result(), fmt.Errorf("%w (%w)", ErrTimeout, unix.ETIME)
		}
	}
}

// cqNeedsFlush reports whether completions wait in the kernel and only reach the CQ ring when
// we enter with GETEVENTS: after a CQ overflow, or when task work is pending.
func (r *Ring) cqNeedsFlush() bool {
	return atomic.LoadUint32(r.sqFlags)&(sqCQOverflow|sqTaskrun) != 0
}

// CQReady returns how many completions are ready in the CQ ring.
func (r *Ring) CQReady() uint32 {
	return atomic.LoadUint32(r.cqTail) - atomic.LoadUint32(r.cqHead)
}

// cqeAt copies the completion at ring position i.
func (r *Ring) cqeAt(i uint32) CQE {
	p := unsafe.Add(r.cqes, uintptr(i&r.cqMask)*r.cqeSize)
	if r.cqeSize == 32 {
		c := (*cqe32)(p)
		return CQE{UserData: c.userData, Res: c.res, Flags: c.flags, Big: c.big}
	}
	c := (*cqe16)(p)
	return CQE{UserData: c.userData, Res: c.res, Flags: c.flags}
}

// peekCQE returns the completion at the CQ head, if any, without entering the kernel.
func (r *Ring) peekCQE() (CQE, bool) {
	head := atomic.LoadUint32(r.cqHead)
	if atomic.LoadUint32(r.cqTail) == head {
		return CQE{}, false
	}
	return r.cqeAt(head), true
}

// PeekCQE returns the completion at the CQ head without consuming it (CQESeen does), or false
// when none is ready. It enters the kernel only when completions are held there: after a CQ
// overflow, or for a DeferTaskrun ring with an empty CQ. An error of that call is not reported
// here; the next wait reports it.
func (r *Ring) PeekCQE() (CQE, bool) {
	if r.cqes == nil {
		return CQE{}, false
	}
	if c, ok := r.peekCQE(); ok {
		return c, true
	}
	if r.flags&SetupDeferTaskrun != 0 || r.cqNeedsFlush() {
		// Errors ignored on purpose: this is a best-effort flush, see the doc comment.
		_, _ = sysEnter(r.fd, 0, 0, enterGetEvents, 0, 0)
		return r.peekCQE()
	}
	return CQE{}, false
}

// PeekBatchCQE copies up to len(dst) ready completions, oldest first, without consuming them,
// and returns how many it copied. Consume them with CQAdvance.
func (r *Ring) PeekBatchCQE(dst []CQE) int {
	if r.cqes == nil {
		return 0
	}
	head := atomic.LoadUint32(r.cqHead)
	n := min(uint32(len(dst)), atomic.LoadUint32(r.cqTail)-head)
	for i := range n {
		dst[i] = r.cqeAt(head + i)
	}
	return int(n)
}

// CQAdvance releases the n oldest completions' slots to the kernel.
func (r *Ring) CQAdvance(n uint32) {
	if n > 0 {
		atomic.StoreUint32(r.cqHead, atomic.LoadUint32(r.cqHead)+n)
	}
}

// CQESeen releases the completion PeekCQE or WaitCQE returned.
func (r *Ring) CQESeen() { r.CQAdvance(1) }

// WaitCQE submits what is prepared and returns the completion at the CQ head, waiting for one
// if none is ready. Like PeekCQE it does not consume it.
func (r *Ring) WaitCQE() (CQE, error) { return r.waitCQE(-1) }

// WaitCQETimeout is WaitCQE giving up after d with ErrTimeout.
func (r *Ring) WaitCQETimeout(d time.Duration) (CQE, error) { return r.waitCQE(max(d, 0)) }

func (r *Ring) waitCQE(timeout time.Duration) (CQE, error) {
	if r.fd < 0 {
		return CQE{}, ErrClosed
	}
	if r.sqeTail == atomic.LoadUint32(r.sqTail) {
		if c, ok := r.peekCQE(); ok {
			return c, nil
		}
	}
	_, err := r.submitAndWait(1, timeout)
	if c, ok := r.peekCQE(); ok {
		return c, nil // even after an error such as ErrBusy: a ready completion is the answer
	}
	if err == nil {
		// submitAndWait returns nil only with a completion ready.
		panic("BUG: uring: wait returned with no completion ready")
	}
	return CQE{}, err
}

// register calls io_uring_register; what names the operation in the error.
func (r *Ring) register(op uint32, arg unsafe.Pointer, nr uint32, what string) error {
	if r.fd < 0 {
		return ErrClosed
	}
	if err := sysRegister(r.fd, op, arg, nr); err != nil {
		return fmt.Errorf("cannot %s: %w", what, err)
	}
	return nil
}

// RegisterBuffers registers bufs as fixed buffers 0..len(bufs)-1 for READ_FIXED, WRITE_FIXED
// and URING_CMD with URingCmdFixed. The kernel pins their pages (charged to RLIMIT_MEMLOCK
// without CAP_IPC_LOCK) until UnregisterBuffers or Close; the memory must stay mapped that long.
func (r *Ring) RegisterBuffers(bufs [][]byte) error {
	if len(bufs) == 0 {
		return errors.New("uring: RegisterBuffers needs at least one buffer")
	}
	iovs := make([]unix.Iovec, len(bufs))
	for i, b := range bufs {
		if len(b) == 0 {
			return fmt.Errorf("uring: registered buffer %d is empty", i)
		}
		iovs[i].Base = unsafe.SliceData(b)
		iovs[i].SetLen(len(b))
	}
	return r.register(registerBuffers, unsafe.Pointer(&iovs[0]), uint32(len(iovs)), fmt.Sprintf("register %d io_uring buffers", len(bufs)))
}

// UnregisterBuffers drops all registered buffers.
func (r *Ring) UnregisterBuffers() error {
	return r.register(unregisterBuffers, nil, 0, "unregister io_uring buffers")
}

// maxFixedBuffers is IORING_MAX_REG_BUFFERS (io_uring/rsrc.h), the largest buffer table.
const maxFixedBuffers = 1 << 14

// RegisterBuffersSparse registers an empty table of n fixed buffers (IORING_REGISTER_BUFFERS2
// with IORING_RSRC_REGISTER_SPARSE, Linux 5.19), whose slots UpdateBuffers fills and clears
// later. Nothing is pinned until a slot is filled. The ring must have no buffers registered
// (else EBUSY); UnregisterBuffers drops the table.
func (r *Ring) RegisterBuffersSparse(n int) error {
	if n < 1 || n > maxFixedBuffers {
		return fmt.Errorf("uring: a sparse buffer table of %d slots; want 1 to %d", n, maxFixedBuffers)
	}
	if r.fd < 0 {
		return ErrClosed
	}
	rr := (*rsrcRegister)(unsafe.Pointer(&r.scratch[scratchRsrc]))
	*rr = rsrcRegister{nr: uint32(n), flags: rsrcRegisterSparse}
	return r.register(registerBuffers2, unsafe.Pointer(rr), uint32(unsafe.Sizeof(*rr)), fmt.Sprintf("register a sparse table of %d io_uring buffers", n))
}

// UpdateBuffers replaces fixed buffers off..off+len(bufs)-1 of a table registered by
// RegisterBuffers or RegisterBuffersSparse (IORING_REGISTER_BUFFERS_UPDATE): a non-empty buffer
// is pinned (charged to RLIMIT_MEMLOCK without CAP_IPC_LOCK: EPERM or ENOMEM when over it) and
// must stay mapped until it is replaced, cleared or unregistered; a nil or empty one clears its
// slot, after which a fixed op naming it fails. An op already in flight on a replaced slot keeps
// the old buffer until it completes. The ring must not be used concurrently (see the package
// doc). On error, slots before the failing one may have been updated already.
func (r *Ring) UpdateBuffers(off int, bufs [][]byte) error {
	if off < 0 || off+len(bufs) > maxFixedBuffers {
		return fmt.Errorf("uring: buffer slots %d..%d out of range", off, off+len(bufs)-1)
	}
	if r.fd < 0 {
		return ErrClosed
	}
	per := (len(r.scratch) - scratchIovecs) / int(unsafe.Sizeof(unix.Iovec{}))
	iovs := unsafe.Slice((*unix.Iovec)(unsafe.Pointer(&r.scratch[scratchIovecs])), per)
	up := (*rsrcUpdate2)(unsafe.Pointer(&r.scratch[scratchRsrc]))
	for len(bufs) > 0 {
		k := min(len(bufs), per)
		for i, b := range bufs[:k] {
			iovs[i] = unix.Iovec{}
			if len(b) > 0 {
				iovs[i].Base = unsafe.SliceData(b)
				iovs[i].SetLen(len(b))
			}
		}
		*up = rsrcUpdate2{offset: uint32(off), data: uint64(uintptr(unsafe.Pointer(&iovs[0]))), nr: uint32(k)}
		n, err := sysRegisterN(r.fd, registerBuffersUpdate, unsafe.Pointer(up), uint32(unsafe.Sizeof(*up)))
		clear(iovs[:k]) // the page keeps no pointers once the kernel has read them
		if err != nil {
			return fmt.Errorf("cannot update io_uring buffer %d: %w", off, err)
		}
		if n <= 0 || n > k {
			return fmt.Errorf("cannot update io_uring buffer %d: the kernel updated %d of %d", off, n, k)
		}
		// Fewer than asked: go on from the first slot not updated, which reports its error.
		off += n
		bufs = bufs[n:]
	}
	return nil
}

// RegisterFiles registers fds as fixed files 0..len(fds)-1; an SQE with IOSQEFixedFile then
// names a file by its index. The ring holds its own references: closing an fd afterwards does
// not affect the registered file. A -1 leaves a slot empty.
func (r *Ring) RegisterFiles(fds []int) error {
	if len(fds) == 0 {
		return errors.New("uring: RegisterFiles needs at least one file")
	}
	arr := make([]int32, len(fds))
	for i, fd := range fds {
		if fd < -1 || fd > math.MaxInt32 {
			return fmt.Errorf("uring: file %d: %d is not a file descriptor", i, fd)
		}
		arr[i] = int32(fd)
	}
	return r.register(registerFiles, unsafe.Pointer(&arr[0]), uint32(len(arr)), fmt.Sprintf("register %d io_uring files", len(fds)))
}

// UnregisterFiles drops all registered files.
func (r *Ring) UnregisterFiles() error {
	return r.register(unregisterFiles, nil, 0, "unregister io_uring files")
}

// Probe asks the kernel which opcodes it supports (IORING_REGISTER_PROBE, Linux 5.6).
func (r *Ring) Probe() (*Probe, error) {
	// struct io_uring_probe: last_op u8, ops_len u8, resv u16, resv2 u32[3], then ops_len
	// entries of struct io_uring_probe_op {op u8, resv u8, flags u16, resv2 u32}. The kernel
	// insists that the buffer be zeroed.
	buf := make([]byte, 16+probeOps*8)
	if err := r.register(registerProbe, unsafe.Pointer(&buf[0]), probeOps, "probe io_uring ops"); err != nil {
		return nil, err
	}
	p := &Probe{lastOp: Op(buf[0])}
	for _, op := range unsafe.Slice((*probeOp)(unsafe.Pointer(&buf[16])), buf[1]) {
		if op.flags&probeOpSupported != 0 {
			p.set(Op(op.op))
		}
	}
	return p, nil
}

// probeOp is struct io_uring_probe_op.
type probeOp struct {
	op    uint8
	resv  uint8
	flags uint16
	resv2 uint32
}

// cmdArea returns the 80 bytes from offset 48 of an entry of a SQE128 ring. The caller checks
// that the ring really has 128-byte entries.
func (s *SQE) cmdArea() *[80]byte { return (*[80]byte)(unsafe.Add(unsafe.Pointer(s), 48)) }

// clear zeroes the entry, size bytes (64 or 128) of it.
func (s *SQE) clear(size int) {
	*s = SQE{}
	if size == 128 {
		*(*[64]byte)(unsafe.Add(unsafe.Pointer(s), 64)) = [64]byte{}
	}
}

func (p *Probe) set(op Op) { p.supported[op/64] |= 1 << (op % 64) }
