package rawblock

import "errors"

// Device is raw block space: the engine's only view of storage. Implementations are safe for
// concurrent use and block until the operation completes; a device backed by io_uring batches
// concurrent calls into one deep queue, so the engine issues independent I/O from several
// goroutines rather than one at a time.
type Device interface {
	// BlockSize is the logical block size: 512 or 4096. Every offset and length is a multiple.
	BlockSize() int
	// MemAlign is the alignment ReadAt and WriteAt need of p's address: a power of two from 1
	// to 4096 (direct I/O's memory alignment, often 512 where blocks are 4096).
	MemAlign() int
	// Size is the usable size in bytes, a multiple of BlockSize.
	Size() int64
	// ReadAt fills p from off. p must be off-heap memory aligned to MemAlign (a slab buffer).
	ReadAt(p []byte, off int64) error
	// WriteAt writes p at off with placement class c (same alignment rules as ReadAt).
	WriteAt(p []byte, off int64, c Class) error
	// Trim deallocates [off, off+n); the range reads back unspecified bytes afterwards.
	Trim(off, n int64) error
	// Flush makes every completed write durable.
	Flush() error
	// Close releases the device.
	Close() error
}

// CPUCopier is implemented by a Device whose reads and writes are copies by the CPU (a DAX
// mapping, memory). The engine then moves a large value with a function of its own, which
// checksums each stripe of the value as it copies it (internal/hashcopy): one pass over the
// bytes instead of a copy and a second read to checksum them, which on memory costs half as
// much again as the copy.
type CPUCopier interface {
	// WriteAtWith is WriteAt with the bytes moved by move(dst, src), dst being the device's
	// memory. It may split p into chunks, each a multiple of 64 KiB but the last (the
	// checksum's pieces must not straddle two), moved in order. move reports whether it wrote
	// dst with non-temporal stores and a store fence (hashcopy.Copy), which spares a device
	// that writes cache lines back for durability that write-back.
	WriteAtWith(p []byte, off int64, c Class, move func(dst, src []byte) (nonTemporal bool)) error
	// ReadAtWith is ReadAt with the bytes moved by move(dst, src), src being the device's
	// memory, in chunks as WriteAtWith's.
	ReadAtWith(p []byte, off int64, move func(dst, src []byte) bool) error
}

// Class is a write's placement class. A device that supports data placement (NVMe FDP) maps
// it to a placement ID, so that data of one lifetime shares erase units; others ignore it.
type Class uint8

const (
	// ClassMeta is for superblocks, region headers and region summaries.
	ClassMeta Class = iota
	// ClassHot is for fresh entries (Put, Delete).
	ClassHot
	// ClassCold is for entries reinserted by reclaim, and tombstones it keeps.
	ClassCold
	numClasses
)

func (c Class) String() string {
	switch c {
	case ClassMeta:
		return "meta"
	case ClassHot:
		return "hot"
	case ClassCold:
		return "cold"
	}
	return "unknown"
}

// Errors a device may return beyond I/O errnos.
var (
	ErrDeviceClosed = errors.New("rawblock: device closed")
	ErrUnaligned    = errors.New("rawblock: unaligned I/O")
	ErrOutOfRange   = errors.New("rawblock: I/O beyond the end of the device")
)
