package rawblock

import (
	"errors"
	"fmt"
	"log/slog"

	"kvresp/slab"
)

// FileDevice limits and defaults.
const (
	defaultFileRings      = 2
	defaultFileQueueDepth = 32
	// defaultFileChunk splits a large ReadAt/WriteAt into 1 MiB operations submitted together,
	// so one 32 MiB value read keeps 32 operations in flight instead of one huge one.
	defaultFileChunk = 1 << 20
	maxFileRings     = 64
	// maxFileQueueDepth keeps the ring (queue depth + 1 entries for the wakeup read, rounded up
	// to a power of two) well under the kernel's 32768 entries.
	maxFileQueueDepth = 4096
	maxFileChunk      = 64 << 20
	// defaultFixedSlots is the size of each ring's sparse fixed-buffer table: one slot per large
	// slab mapping in use for I/O, so 1024 covers 1024 values in flight or recently used per ring
	// and costs nothing until filled.
	defaultFixedSlots = 1024
	maxFixedSlots     = 1 << 14 // IORING_MAX_REG_BUFFERS
	// fileChunkAlign is the unit of ChunkSize: the largest block size a FileDevice accepts from
	// the options before it knows the device (it is checked again against the real block size).
	fileChunkAlign = 4096
)

// FileOptions configure a FileDevice. Zero values mean defaults; Path is required.
type FileOptions struct {
	// Path is a regular file or a block device (rawblock-path).
	Path string
	// Size is the device size in bytes (rawblock-size), a multiple of 4096. For a regular file:
	// a missing file is created sparse with this size (ftruncate, nothing preallocated), a
	// smaller one is grown the same way, and a larger one is refused (shrinking would destroy
	// data). For a block device it may be at most the device's size and the device's first Size
	// bytes are used. 0 means the existing file's or device's size.
	Size int64
	// ReadOnly opens the path for reading only: writes, trims and flushes fail with EBADF.
	ReadOnly bool
	// Rings is the number of io_uring instances, each with one I/O worker goroutine
	// (rawblock-rings). 0 means 2.
	Rings int
	// QueueDepth is the most operations one ring keeps in flight (rawblock-queue-depth). 0 means 32.
	QueueDepth int
	// ChunkSize is the largest single operation: bigger reads and writes are split into chunks
	// of this size submitted together. A multiple of 4096; 0 means 1 MiB.
	ChunkSize int
	// Arena, when set, is the slab the I/O buffers come from: reads and writes into one of its
	// large buffers (> 16 KiB) then go through io_uring fixed buffers (READ_FIXED/WRITE_FIXED),
	// each buffer's mapping registered on first use, so the kernel does not pin and unpin its
	// pages on every operation. nil: plain READ/WRITE only. Other memory always takes plain I/O.
	Arena *slab.Arena
	// NoFixedBuffers turns fixed buffers off even with an Arena.
	NoFixedBuffers bool
	// FixedSlots is the number of fixed-buffer slots per ring; when all hold mappings in use the
	// least recently used idle one is replaced, and with none idle the operation is plain.
	// 0 means 1024.
	FixedSlots int
	// Trim says what Trim does (rawblock-trim): TrimAuto (the zero value) deallocates on a block
	// device or an NVMe namespace device (the SSD learns the blocks are free, which is what keeps its write amplification
	// down) and skips it on a regular file, where punching holes makes every later write of the
	// region allocate again (measured: sequential writes at about 0.6x fio with holes punched,
	// 0.99x without); TrimOn always deallocates; TrimOff never does. Skipped trims are counted.
	Trim TrimMode
	// PIDs is the fdp-pids setting for an NVMe namespace device with FDP enabled:
	// "meta:P,hot:P,cold:P", each one of the namespace's placement IDs. "" means the first three
	// of its RUH status list.
	PIDs string
	// Logger receives one line per notable event; nil = slog.Default().
	Logger *slog.Logger
}

// TrimMode is FileOptions.Trim.
type TrimMode uint8

// Trim modes.
const (
	TrimAuto TrimMode = iota
	TrimOn
	TrimOff
)

// Validate reports every problem with o at once.
func (o FileOptions) Validate() error {
	var errs []error
	if o.Path == "" {
		errs = append(errs, errors.New("rawblock: a device path is required (rawblock-path)"))
	}
	if o.Size < 0 || o.Size%fileChunkAlign != 0 {
		errs = append(errs, fmt.Errorf("rawblock: device size %d must be 0 (use the file's size) or a positive multiple of 4096 (rawblock-size)", o.Size))
	}
	if o.Rings < 0 || o.Rings > maxFileRings {
		errs = append(errs, fmt.Errorf("rawblock: %d rings; set 0 (default %d) up to %d (rawblock-rings)", o.Rings, defaultFileRings, maxFileRings))
	}
	if o.QueueDepth < 0 || o.QueueDepth > maxFileQueueDepth {
		errs = append(errs, fmt.Errorf("rawblock: queue depth %d; set 0 (default %d) up to %d (rawblock-queue-depth)", o.QueueDepth, defaultFileQueueDepth, maxFileQueueDepth))
	}
	if o.ChunkSize < 0 || o.ChunkSize%fileChunkAlign != 0 || o.ChunkSize > maxFileChunk {
		errs = append(errs, fmt.Errorf("rawblock: chunk size %d must be 0 (default %d) or a multiple of 4096 up to %d", o.ChunkSize, defaultFileChunk, maxFileChunk))
	}
	if o.FixedSlots < 0 || o.FixedSlots > maxFixedSlots {
		errs = append(errs, fmt.Errorf("rawblock: %d fixed-buffer slots; set 0 (default %d) up to %d", o.FixedSlots, defaultFixedSlots, maxFixedSlots))
	}
	return errors.Join(errs...)
}

func (o *FileOptions) setDefaults() {
	if o.Rings == 0 {
		o.Rings = defaultFileRings
	}
	if o.QueueDepth == 0 {
		o.QueueDepth = defaultFileQueueDepth
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = defaultFileChunk
	}
	if o.FixedSlots == 0 {
		o.FixedSlots = defaultFixedSlots
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// FileStats are a FileDevice's counters, for INFO and metrics. Reads and Writes count calls
// (one call may be split into several operations); Ops and Submits count io_uring operations
// and io_uring_enter calls, so Ops/Submits is the mean batch.
type FileStats struct {
	Reads, Writes, Trims, Flushes uint64
	ReadBytes, WriteBytes         int64
	TrimBytes                     int64
	// TrimsSkipped counts trims of a block device that refuses discard: they did nothing.
	TrimsSkipped uint64
	// WriteBytesByClass splits WriteBytes by placement class (index: Class).
	WriteBytesByClass [numClasses]int64
	// Errors counts failed calls of every kind, argument errors included.
	Errors uint64
	// Retries counts short transfers resubmitted for their remainder.
	Retries uint64
	Ops     uint64
	Submits uint64
	// FixedOps and PlainOps split the read and write operations: through a registered (fixed)
	// buffer or not. FixedRegistrations counts buffer mappings registered with a ring.
	FixedOps, PlainOps, FixedRegistrations uint64
	// QueueDepth is the number of operations in flight now, over all rings; MaxQueueDepth is the
	// most seen at once.
	QueueDepth, MaxQueueDepth int64
}

var _ Device = (*FileDevice)(nil)
