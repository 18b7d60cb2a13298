package uring

import "errors"

var (
	// ErrTimeout is returned by the waits with a timeout when not enough completions arrived in
	// time. The returned error also matches syscall.ETIME.
	ErrTimeout = errors.New("uring: wait timed out")
	// ErrBusy is returned when the kernel refuses to take more submissions until completions
	// are reaped (EBUSY or EAGAIN from io_uring_enter, typically a CQ overflow). Reap the CQ and
	// retry. The returned error also matches the errno.
	ErrBusy = errors.New("uring: completion queue full, reap completions and retry")
	// ErrWrongThread is returned when a SingleIssuer ring is used from a thread other than its
	// owner (the kernel's EEXIST). See the package doc.
	ErrWrongThread = errors.New("uring: ring used from a thread other than its single issuer")
	// ErrClosed is returned by a Ring after Close.
	ErrClosed = errors.New("uring: ring closed")
)
