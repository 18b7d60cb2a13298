package slab

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// mmap returns n bytes of zeroed, page-aligned anonymous memory outside the Go heap. populate
// pre-faults it (MAP_POPULATE), so the first socket read or DMA into a large buffer takes no page
// faults; small pages are left to fault in as slots are used.
func mmap(n int, populate bool) ([]byte, error) {
	flags := unix.MAP_PRIVATE | unix.MAP_ANONYMOUS
	if populate {
		flags |= unix.MAP_POPULATE
	}
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, flags)
}

// unmapAll returns mappings made by mmap to the kernel. It must be called without Arena.mu held:
// unmapping 80 MiB takes milliseconds.
func unmapAll(mems [][]byte) {
	for _, m := range mems {
		if err := unix.Munmap(m); err != nil {
			panic(fmt.Sprintf("BUG: slab: munmap of %d bytes: %v", len(m), err))
		}
	}
}
