//go:build linux

package uring

// This file uses unsafe to pass pointers to the three io_uring system calls. Each pointer is
// converted to uintptr inside the unix.Syscall6 argument list, which keeps the object alive and
// in place for the call; the kernel reads or writes it only during the call.
//
// unix.Syscall6, not RawSyscall6: io_uring_enter blocks while waiting, and the Go scheduler must
// know this thread is in a system call so that other goroutines keep running.

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// sqringOffsets is struct io_sqring_offsets.
type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

// cqringOffsets is struct io_cqring_offsets.
type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// ioUringParams is struct io_uring_params (120 bytes).
type ioUringParams struct {
	sqEntries    uint32
	cqEntries    uint32
	flags        uint32
	sqThreadCPU  uint32
	sqThreadIdle uint32
	features     uint32
	wqFd         uint32
	resv         [3]uint32
	sqOff        sqringOffsets
	cqOff        cqringOffsets
}

// geteventsArg is struct io_uring_getevents_arg, passed to io_uring_enter with
// IORING_ENTER_EXT_ARG. ts points to a kernelTimespec.
type geteventsArg struct {
	sigmask     uint64
	sigmaskSz   uint32
	minWaitUsec uint32 // was pad before Linux 6.12; 0 keeps the old meaning
	ts          uint64
}

// kernelTimespec is struct __kernel_timespec.
type kernelTimespec struct {
	sec  int64
	nsec int64
}

// io_uring ABI values used only by the Linux implementation.
const (
	offSQRing = 0x0        // IORING_OFF_SQ_RING
	offCQRing = 0x8000000  // IORING_OFF_CQ_RING
	offSQEs   = 0x10000000 // IORING_OFF_SQES

	enterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS
	enterSQWakeup  = 1 << 1 // IORING_ENTER_SQ_WAKEUP
	enterExtArg    = 1 << 3 // IORING_ENTER_EXT_ARG

	sqNeedWakeup = 1 << 0 // IORING_SQ_NEED_WAKEUP
	sqCQOverflow = 1 << 1 // IORING_SQ_CQ_OVERFLOW
	sqTaskrun    = 1 << 2 // IORING_SQ_TASKRUN

	registerBuffers   = 0 // IORING_REGISTER_BUFFERS
	unregisterBuffers = 1
	registerFiles     = 2
	unregisterFiles   = 3
	registerProbe     = 8

	registerBuffers2      = 15     // IORING_REGISTER_BUFFERS2 (Linux 5.13): takes an rsrcRegister
	registerBuffersUpdate = 16     // IORING_REGISTER_BUFFERS_UPDATE (Linux 5.13): takes an rsrcUpdate2
	rsrcRegisterSparse    = 1 << 0 // IORING_RSRC_REGISTER_SPARSE (Linux 5.19): an empty table of nr slots
)

// rsrcRegister is struct io_uring_rsrc_register (32 bytes); the size is passed as nr_args.
type rsrcRegister struct {
	nr    uint32
	flags uint32
	resv2 uint64
	data  uint64 // address of the iovec array; 0 with rsrcRegisterSparse
	tags  uint64 // address of a u64 tag per slot; 0 for none
}

// rsrcUpdate2 is struct io_uring_rsrc_update2 (32 bytes); the size is passed as nr_args.
type rsrcUpdate2 struct {
	offset uint32 // first slot
	resv   uint32
	data   uint64 // address of nr iovecs
	tags   uint64
	nr     uint32
	resv2  uint32
}

// nsig8 is _NSIG/8, the sigmask size liburing passes; the kernel ignores it without a sigmask.
const nsig8 = 8

func sysSetup(entries uint32, p *ioUringParams) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// sysEnter calls io_uring_enter. arg is either 0 or the address of a geteventsArg in memory that
// does not move (the ring's mmap'd scratch page), because that struct holds a further pointer.
func sysEnter(fd int, toSubmit, minComplete, flags uint32, arg, argSize uintptr) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), uintptr(toSubmit), uintptr(minComplete), uintptr(flags), arg, argSize)
	if errno != 0 {
		return int(n), errno
	}
	return int(n), nil
}

func sysRegister(fd int, op uint32, arg unsafe.Pointer, nr uint32) error {
	_, err := sysRegisterN(fd, op, arg, nr)
	return err
}

// sysRegisterN is sysRegister for the operations whose result is a count (BUFFERS_UPDATE answers
// with the number of slots it updated, which may be fewer than asked).
func sysRegisterN(fd int, op uint32, arg unsafe.Pointer, nr uint32) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(fd), uintptr(op), uintptr(arg), uintptr(nr), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
