package rawblock

import "kvresp/slab"

// aligned lets MemDevice enforce the alignment O_DIRECT and io_uring fixed buffers require,
// catching in tests an engine bug that would fail with EINVAL on a real device.

// aligned reports whether p starts at a multiple of n (n a power of two).
func aligned(p []byte, n int) bool {
	if cap(p) == 0 {
		return true
	}
	return slab.Addr(p)&uintptr(n-1) == 0
}
