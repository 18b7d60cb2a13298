// Package uring is kvresp's own io_uring binding over golang.org/x/sys/unix: ring setup from a
// Params struct (SQ/CQ sizes, SQPOLL, SINGLE_ISSUER, DEFER_TASKRUN, COOP_TASKRUN, SQE128, CQE32),
// the mmap'd submission and completion rings, prep helpers for the operations the storage tiers
// use (NOP, READ, WRITE, READ_FIXED, WRITE_FIXED, READV, WRITEV, FSYNC, FALLOCATE, URING_CMD with
// its 80-byte command area), submit and wait with an optional timeout, completion iteration with
// the CQE32 extra words, registered buffers (a whole table at once, or a sparse table whose slots
// are filled and cleared one by one) and files, and the opcode probe. Errors the kernel
// reports in a completion are -errno values; CQE.Err turns them into syscall.Errno.
//
// Rules for Go callers. Breaking one corrupts memory or fails an op; nothing panics to warn you:
//
//   - Memory the kernel reads or writes after a call returns — I/O buffers, iovec arrays of READV
//     and WRITEV, registered buffers — must not move and must not be freed until the completion
//     for the op (or UnregisterBuffers) has been seen. Goroutine stacks move when they grow, and
//     the Go heap promises nothing either, so allocate such memory off the Go heap (unix.Mmap;
//     kvresp's slab does) or pin it with runtime.Pinner and keep it reachable. Anything the
//     kernel reads only during a call (probe results, the iovec list of RegisterBuffers, the wait
//     timeout) is this package's business and is handled here.
//   - A Ring is not safe for concurrent use: one goroutine at a time may call its methods, and
//     the SQE returned by GetSQE belongs to that goroutine until the next Submit.
//   - A ring set up with SingleIssuer (and so DeferTaskrun, which requires it) belongs to the
//     OS thread that created it: the kernel answers -EEXIST (ErrWrongThread wraps it) when
//     another thread submits or waits. Call runtime.LockOSThread before New and keep the
//     goroutine locked for the ring's life. Plain rings tolerate submit and wait from different
//     threads (a goroutine may migrate between calls), but still need one caller at a time.
//   - With DeferTaskrun, completions reach the CQ ring only while the owner thread enters the
//     kernel to wait (WaitCQE, SubmitAndWait; PeekCQE enters for it when the ring is empty).
//
// unsafe lives in three files, each saying why at its top: sqe.go (buffer addresses in an SQE),
// ring_linux.go (pointers into the mmap'd rings, the command area) and sys_linux.go (pointer
// arguments of the three io_uring system calls); the tests use it to check struct layouts. Everything else is ordinary Go. On systems other than Linux,
// New returns errors.ErrUnsupported.
package uring
