package uring

import "syscall"

// CQE is a copy of one completion queue entry (struct io_uring_cqe). It is a value: it stays
// valid after the ring slot it came from is released with CQAdvance or CQESeen.
type CQE struct {
	UserData uint64 // the SQE's user data
	Res      int32  // the op's result: bytes moved, 0, a driver status, or -errno
	Flags    uint32 // IORING_CQE_F_*
	// Big holds the 16 extra bytes of a CQE32 ring's entry (big_cqe[0..1]), zero in 16-byte
	// rings. For NVMe passthrough, Big[0] is the 64-bit command result (CQE byte 16).
	Big [2]uint64
}

// Err returns the kernel's error for the op as a syscall.Errno (so errors.Is(err,
// syscall.EBADF) works), or nil when Res is not negative. A positive Res of a URING_CMD is a
// device status, not an errno; the caller interprets it.
func (c CQE) Err() error {
	if c.Res < 0 {
		return syscall.Errno(-c.Res)
	}
	return nil
}
