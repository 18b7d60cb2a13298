package slab

import "unsafe"

// This is the package's only use of unsafe: reading a buffer's address, to check the alignment
// that O_DIRECT and io_uring fixed buffers require, and to align the heap fallback of mmap.
// The address is never turned back into a pointer.

// Addr returns the address of the first byte of b's backing array: what the
// devices compare against mappings and check for alignment. It is never
// turned back into a pointer.
func Addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
