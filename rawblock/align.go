package rawblock

import "unsafe"

// This file is the package's only use of unsafe: reading a buffer's address so that MemDevice
// can enforce the alignment O_DIRECT and io_uring fixed buffers require, catching in tests an
// engine bug that would fail with EINVAL on a real device. The address is never turned back
// into a pointer.

// aligned reports whether p starts at a multiple of n (n a power of two).
func aligned(p []byte, n int) bool {
	if cap(p) == 0 {
		return true
	}
	return uintptr(unsafe.Pointer(unsafe.SliceData(p)))&uintptr(n-1) == 0
}
