package rawblock

import "unsafe"

// unsafe here reads a buffer's address so that MemDevice can enforce the alignment O_DIRECT and
// io_uring fixed buffers require, catching in tests an engine bug that would fail with EINVAL on
// a real device. The address is never turned back into a pointer. The package's other uses of
// unsafe are in filedev_linux.go (the BLKDISCARD argument) and filedev_fixed_linux.go (buffer
// addresses for the fixed-buffer table), each with its reason.

// aligned reports whether p starts at a multiple of n (n a power of two).
func aligned(p []byte, n int) bool {
	if cap(p) == 0 {
		return true
	}
	return uintptr(unsafe.Pointer(unsafe.SliceData(p)))&uintptr(n-1) == 0
}
