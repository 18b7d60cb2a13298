//go:build !linux

package slab

// mmap falls back to the Go heap where kvresp does not run in production, so the package builds
// and its tests run everywhere. The memory is over-allocated to honour the 4 KiB alignment.
func mmap(n int, populate bool) ([]byte, error) {
	raw := make([]byte, n+largeAlign)
	off := 0
	if r := int(Addr(raw) % largeAlign); r != 0 {
		off = largeAlign - r
	}
	return raw[off : off+n : off+n], nil
}

// unmapAll leaves the memory to the garbage collector.
func unmapAll(mems [][]byte) {}
