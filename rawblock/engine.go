// Package rawblock is kvresp's log engine over raw block space (DESIGN.md §4): fixed-size
// regions written append-only through a small Device interface, entries of header + key +
// value with a checksum, a summary sealing each region, FIFO reclaim of whole regions with
// reinsertion of recently read entries into a cold region, and a compact pointer-free index in
// DRAM rebuilt at Open from the summaries and a scan of the regions left open. An Engine is a
// tiers.Tier and a tiers.Keyspace. Reads verify the stored key and checksum and miss rather
// than return wrong bytes; writes are durable once Sync returns (per Put with Options.Sync).
package rawblock

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"kvresp/slab"
	"kvresp/tiers"
)

const (
	defaultRegionSize  = 256 << 20
	defaultFreeRegions = 3
	defaultReinsertPct = 25
	defaultIOBuffers   = 32
	// ioBufSize is the size of the engine's own I/O buffers: headers, small entries and summary
	// chunks. Entries up to this size are read and written with one I/O.
	ioBufSize = 64 << 10
	// stripes is the number of per-key write locks: a Put, Delete or reinsertion of one key
	// holds its stripe across the write, so writes of one key get sequence numbers in the
	// order they reach the device.
	stripes = 4096
)

var (
	// ErrClosed is returned by operations on a closed engine.
	ErrClosed = errors.New("rawblock: engine closed")
	// ErrNoSpace is returned by a write that found no free region in time.
	ErrNoSpace = errors.New("rawblock: no free region (reclaim could not keep up)")
)

// Options configure an Engine. Zero values mean defaults; Device and Arena are required.
type Options struct {
	Device Device
	// Arena provides the buffers Get returns and the engine's I/O buffers. Reclaim never
	// allocates from it: see Engine.rarena.
	Arena *slab.Arena
	// RegionSize is used when formatting (default 256 MiB; a multiple of the block size,
	// 64 KiB to 2 GiB). An existing log keeps the region size it was formatted with.
	RegionSize int64
	// Format erases a device holding something else (a foreign, older- or newer-format
	// superblock, or two corrupt superblock copies) instead of refusing it. An all-zero device
	// is always formatted.
	Format bool
	// Sync makes Put and Delete return only once durable (rawblock-write-mode always).
	Sync bool
	// FlushInterval is how often completed writes are made durable without Sync: 0 means 1s,
	// negative never (only Close and Sync calls flush).
	FlushInterval time.Duration
	// FreeRegions is how many free regions reclaim keeps ahead of writers (default 3, min 2).
	FreeRegions int
	// ReinsertPercent bounds reinsertion per reclaimed region, in percent of the region size:
	// 0 means 25, negative disables reinsertion.
	ReinsertPercent int
	// OnEvict is told of every entry reclaim drops (SetEvict may set it later).
	OnEvict tiers.EvictFunc
	// EvictKeysOnly calls OnEvict with a nil Buf (key and expiry only) instead of reading each
	// dropped value: for when this is the last tier and store only needs the key.
	EvictKeysOnly bool
	// WaitTimeout bounds how long a write waits for reclaim to free a region: 0 means 5s.
	WaitTimeout time.Duration
	// IOBuffers is the number of 64 KiB I/O buffers, the bound on concurrent small I/O: 0 = 32.
	IOBuffers int
	// RecoveryWorkers is how many regions Open reads at once: 0 means 4.
	RecoveryWorkers int
	// Now returns the current Unix time in milliseconds; nil = wall clock.
	Now func() int64
	// Logger receives one line per notable event; nil = slog.Default().
	Logger *slog.Logger
	// Name is the tier's name in INFO, metrics and store's logs: "" means "rawblock". The
	// DAX tier is this engine over another device, named "dax".
	Name string
}

// Validate reports every problem with the options at once.
func (o Options) Validate() error {
	var errs []error
	if o.Device == nil {
		errs = append(errs, errors.New("rawblock: a device is required"))
	} else if bs := int64(o.Device.BlockSize()); bs != 512 && bs != 4096 {
		errs = append(errs, fmt.Errorf("rawblock: device block size %d is not supported; use a device with 512- or 4096-byte blocks", bs))
	} else if o.RegionSize != 0 && (o.RegionSize%bs != 0 || o.RegionSize < 64<<10 || o.RegionSize > maxRegionSize) {
		errs = append(errs, fmt.Errorf("rawblock: region size %d must be a multiple of the block size %d between 64 KiB and 2 GiB (rawblock-region-size)", o.RegionSize, bs))
	}
	if o.Arena == nil {
		errs = append(errs, errors.New("rawblock: an arena is required"))
	} else if o.Device != nil {
		if m, off := o.Device.MemAlign(), o.Arena.ValueOffset(); m < 1 || off%m != 0 {
			errs = append(errs, fmt.Errorf("rawblock: the device needs %d-byte aligned memory, but the arena puts values %d bytes into a page; give the arena a value offset that is a multiple of %d, or 0", m, off, m))
		}
	}
	if o.FreeRegions < 0 || o.FreeRegions == 1 {
		errs = append(errs, fmt.Errorf("rawblock: free regions %d must be 0 (default %d) or at least 2", o.FreeRegions, defaultFreeRegions))
	}
	if o.ReinsertPercent > 100 {
		errs = append(errs, fmt.Errorf("rawblock: reinsert percent %d must be at most 100", o.ReinsertPercent))
	}
	if o.WaitTimeout < 0 || o.IOBuffers < 0 || o.RecoveryWorkers < 0 {
		errs = append(errs, errors.New("rawblock: wait timeout, I/O buffers and recovery workers must not be negative"))
	}
	return errors.Join(errs...)
}

type regionState uint8

const (
	regionFree regionState = iota
	regionOpen
	regionSealed
	regionReclaiming
)

// region is one fixed-size slice of the device. Fields are guarded by Engine.mu except the
// atomics, which readers load under an index shard lock.
type region struct {
	idx     int
	state   regionState
	class   Class
	epoch   uint64
	next    int64    // append offset within the region
	sumBody int64    // summary body bytes of recs
	recs    []record // open regions: what the summary will list (recFailed marks failed writes)
	minSeq  uint64   // smallest and largest sequence of the entries written in this use
	maxSeq  uint64

	pending    int  // writes in flight
	sealing    bool // no more appends; the summary is written once pending is 0
	sumStarted bool
	sumTicket  uint64
	failed     bool
	failOff    int64 // lowest offset of a failed write

	// gen is bumped just before the region is trimmed: a read that loaded it before its I/O
	// and finds it changed after may have read a reused region, and misses.
	gen atomic.Uint64
	// epochA mirrors epoch for readers.
	epochA atomic.Uint64
}

// recFailed marks, in memory only, a record whose write failed: the summary leaves it out.
const recFailed = 0x80

// Engine is the log engine. It implements tiers.Tier and tiers.Keyspace.
type Engine struct {
	// inReclaim counts reclaims under way; Check waits for none.
	inReclaim atomic.Int32
	// reclaimFailing is set while reclaims fail on I/O errors, so that
	// writers get ErrNoSpace at once instead of waiting for free regions.
	reclaimFailing atomic.Bool
	// writeFailing is set while the device fails writes (the last failed).
	writeFailing atomic.Bool
	// reclaimMu is held by each round of the background reclaim loop and by WaitReclaim.
	reclaimMu sync.Mutex

	dev   Device
	arena *slab.Arena
	// rarena holds what reclaim reads: the values it hands to OnEvict and the entries it
	// reinserts. It is the engine's own, limited to one region (reclaimArenaLimit) and with
	// no Reclaimer, so an allocation there waits for the release of an earlier one and never
	// evicts. Reading from arena instead would let reclaim make the tier above evict into the
	// demotion queue whose writers wait for this very reclaim to free a region: a cycle
	// broken only by the queue's timeout, dropping what it held.
	rarena *slab.Arena
	// cpu is the device when it copies by CPU (CPUCopier), else nil: see io.go.
	cpu     CPUCopier
	opt     Options
	log     *slog.Logger
	now     func() int64
	bs      int64
	sb      superblock
	devID   uint64
	regSize int64
	idx     *index
	pool    chan *slab.Buf
	keyMu   [stripes]sync.Mutex

	// flushMu is held shared by every write and reclaim, and exclusively by Flush (drop all).
	flushMu sync.RWMutex

	mu      sync.Mutex
	cond    *sync.Cond
	regions []*region
	open    [numClasses]int // open region per class, -1 if none
	seq     uint64          // last sequence number handed out (entries, epochs, tickets)
	// inflight holds the tickets of writes not done yet: false while the write is in flight,
	// true once it completed and its writer waits for it to be durable (syncEntry).
	inflight map[uint64]bool
	// Group commit (syncUpTo): one device flush at a time; every write with a ticket up to
	// durable completed before a flush that succeeded began.
	flushing bool
	durable  uint64
	nfree    int
	closed   bool
	closing  bool // Close has begun (closed is set once the reclaim loop stopped)
	onEvict  tiers.EvictFunc

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup

	c counters
}

type counters struct {
	hits, misses, puts, deletes, evictions, expired, errors atomic.Uint64
	reads, writes, readBytes, writeBytes                    atomic.Uint64
	reinserts, reinsertBytes, trims, checksumFails, ioErrs  atomic.Uint64
	corrupt, tombsKept, evictTombs, reclaims, recovered     atomic.Uint64
}

var (
	_ tiers.Tier     = (*Engine)(nil)
	_ tiers.Keyspace = (*Engine)(nil)
)

// Open opens the log on o.Device, formatting an all-zero device (or any device with
// o.Format), and rebuilds the index. The engine owns the device from now on: Close closes it.
func Open(o Options) (*Engine, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.RegionSize == 0 {
		o.RegionSize = defaultRegionSize
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = time.Second
	}
	if o.FreeRegions == 0 {
		o.FreeRegions = defaultFreeRegions
	}
	if o.ReinsertPercent == 0 {
		o.ReinsertPercent = defaultReinsertPct
	}
	if o.WaitTimeout == 0 {
		o.WaitTimeout = 5 * time.Second
	}
	if o.IOBuffers == 0 {
		o.IOBuffers = defaultIOBuffers
	}
	if o.RecoveryWorkers == 0 {
		o.RecoveryWorkers = 4
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().UnixMilli() }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := &Engine{
		dev: o.Device, arena: o.Arena, opt: o, log: o.Logger, now: o.Now,
		bs:       int64(o.Device.BlockSize()),
		idx:      newIndex(),
		pool:     make(chan *slab.Buf, o.IOBuffers),
		inflight: make(map[uint64]bool),
		onEvict:  o.OnEvict,
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	e.cpu, _ = o.Device.(CPUCopier)
	e.cond = sync.NewCond(&e.mu)
	e.open = [numClasses]int{-1, -1, -1}
	for i := 0; i < o.IOBuffers; i++ {
		b, err := o.Arena.Alloc(ioBufSize)
		if err != nil {
			e.releasePool()
			return nil, fmt.Errorf("rawblock: cannot allocate I/O buffers: %w", err)
		}
		e.pool <- b
	}
	if err := e.openSuper(); err != nil {
		e.releasePool()
		return nil, err
	}
	ra, err := slab.New(slab.Options{Limit: reclaimArenaLimit(e.regSize), WaitTimeout: o.WaitTimeout})
	if err != nil {
		e.releasePool()
		return nil, fmt.Errorf("rawblock: cannot make reclaim's arena: %w", err)
	}
	e.rarena = ra
	if err := e.recover(); err != nil {
		e.releasePool()
		_ = ra.Close()
		return nil, err
	}
	e.wg.Add(1)
	go e.reclaimLoop()
	if o.FlushInterval > 0 {
		e.wg.Add(1)
		go e.flushLoop(o.FlushInterval)
	}
	return e, nil
}

// reclaimArenaLimit is the size of reclaim's own arena for regions of regSize bytes: one
// region, so that the largest entry a region can hold fits (reclaim itself holds one buffer
// at a time), plus the 1 MiB page slab carves values of 16 KiB and less from. Values reclaim
// handed down but that are not written below yet (store's demotion queue and its writers hold
// a reference until then) so hold at most a region's worth before reclaim waits for them.
func reclaimArenaLimit(regSize int64) int64 { return regSize + 1<<20 }

func (e *Engine) releasePool() {
	for {
		select {
		case b := <-e.pool:
			b.Release()
		default:
			return
		}
	}
}

// openSuper reads the superblock copies, or formats the device. Rule: a valid copy wins over
// an invalid one; of two valid copies the higher generation wins (copy A on a tie). A bad copy
// next to a good one is rewritten from it.
func (e *Engine) openSuper() error {
	buf := e.getBuf()
	defer e.putBuf(buf)
	p := buf.Bytes()[:2*superSlot]
	if err := e.dev.ReadAt(p, 0); err != nil {
		return fmt.Errorf("rawblock: cannot read the superblock: %w", err)
	}
	a, errA := parseSuper(p[:superSlot])
	b, errB := parseSuper(p[superSlot:])
	switch {
	case errA == nil || errB == nil:
		sb, good, bad := a, 0, superSlot
		if errA != nil || (errB == nil && b.generation > a.generation) {
			sb, good, bad = b, superSlot, 0
		}
		if sb.blockSize != uint32(e.bs) {
			return fmt.Errorf("rawblock: the log was formatted with %d-byte blocks, the device has %d-byte blocks", sb.blockSize, e.bs)
		}
		if sb.dataStart+sb.regionSize*int64(sb.regionCount) > e.dev.Size() {
			return fmt.Errorf("rawblock: the log needs %d bytes, the device has %d (was it shrunk?)", sb.dataStart+sb.regionSize*int64(sb.regionCount), e.dev.Size())
		}
		e.setSuper(sb)
		if errA != nil || errB != nil || a != b {
			e.log.Warn("rawblock: superblock copy damaged, rewriting it from the good one", "bad_offset", bad, "error", errors.Join(errA, errB))
			copy(p[bad:bad+superSlot], p[good:good+superSlot])
			if err := e.dev.WriteAt(p[bad:bad+superSlot], int64(bad), ClassMeta); err != nil {
				e.c.ioErrs.Add(1)
				e.log.Warn("rawblock: cannot repair the superblock copy", "error", err)
			}
		}
		return nil
	case allZero(p) || e.opt.Format:
		if !allZero(p) {
			e.log.Warn("rawblock: formatting a device that held other data, as asked", "error", errors.Join(errA, errB))
		}
		return e.format(p)
	case versionErr(errA, errB) != nil:
		return versionErr(errA, errB)
	case errors.Is(errA, ErrForeign) && errors.Is(errB, ErrForeign):
		return ErrForeign
	}
	return fmt.Errorf("rawblock: both superblock copies are damaged (set Options.Format to erase the device): %w", errors.Join(errA, errB))
}

func (e *Engine) setSuper(sb superblock) {
	e.sb = sb
	e.devID = sb.devID()
	e.regSize = sb.regionSize
}

func (e *Engine) format(p []byte) error {
	rs := e.opt.RegionSize
	if rs%e.bs != 0 {
		return fmt.Errorf("rawblock: region size %d is not a multiple of the block size %d", rs, e.bs)
	}
	n := (e.dev.Size() - dataStart) / rs
	if n < int64(e.opt.FreeRegions)+3 {
		return fmt.Errorf("rawblock: a %d-byte device holds %d regions of %d bytes; at least %d are needed (use a smaller rawblock-region-size or a larger device)", e.dev.Size(), max(n, 0), rs, e.opt.FreeRegions+3)
	}
	n = min(n, maxRegions)
	sb := superblock{version: formatVersion, blockSize: uint32(e.bs), regionSize: rs, regionCount: uint32(n),
		created: e.now(), generation: 1, dataStart: dataStart}
	if _, err := rand.Read(sb.uuid[:]); err != nil {
		return fmt.Errorf("rawblock: cannot make a device UUID: %w", err)
	}
	clear(p)
	sb.encode(p[:superSlot])
	sb.encode(p[superSlot:])
	// Both copies and every region are invalidated before the format is durable, so nothing
	// of an earlier log (with another UUID) can be taken for a live region afterwards anyway.
	if err := e.dev.WriteAt(p, 0, ClassMeta); err != nil {
		return fmt.Errorf("rawblock: cannot write the superblock: %w", err)
	}
	if err := e.dev.Trim(dataStart, n*rs); err != nil {
		e.log.Warn("rawblock: cannot trim the device while formatting", "error", err)
	}
	if err := e.dev.Flush(); err != nil {
		return fmt.Errorf("rawblock: cannot flush the new superblock: %w", err)
	}
	e.setSuper(sb)
	e.log.Info("rawblock: formatted device", "size", e.dev.Size(), "region_size", rs, "regions", n, "block_size", e.bs)
	return nil
}

func allZero(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}

func (e *Engine) getBuf() *slab.Buf { return <-e.pool }

func (e *Engine) putBuf(b *slab.Buf) {
	b.SetLen(ioBufSize)
	e.pool <- b
}

func (e *Engine) regionOff(r int) int64 { return e.sb.dataStart + int64(r)*e.regSize }

// SetEvict sets the eviction callback (store wires it after construction).
func (e *Engine) SetEvict(fn tiers.EvictFunc) {
	e.mu.Lock()
	e.onEvict = fn
	e.mu.Unlock()
}

// Name implements tiers.Tier.
func (e *Engine) Name() string {
	if e.opt.Name == "" {
		return "rawblock"
	}
	return e.opt.Name
}

// Sync makes every write that completed before the call durable: it waits for writes that
// were allocated earlier (so what is durable is a prefix of each region) and flushes the
// device.
func (e *Engine) Sync() error {
	e.mu.Lock()
	upTo := e.seq
	e.mu.Unlock()
	return e.syncUpTo(upTo)
}

// syncUpTo returns once every write with a ticket up to upTo is durable. Callers that sync at
// once share device flushes (group commit): a flush covers every write completed before it
// began, so a caller whose writes completed while another's flush ran waits for the next one,
// which the first of them to get there issues for all.
func (e *Engine) syncUpTo(upTo uint64) error {
	e.mu.Lock()
	for e.pendingUpToLocked(upTo) {
		e.cond.Wait()
	}
	for e.flushing && e.durable < upTo {
		e.cond.Wait()
	}
	if e.durable >= upTo {
		e.mu.Unlock()
		return nil
	}
	e.flushing = true
	covers := e.seq // every ticket below the oldest write in flight has completed
	for t, written := range e.inflight {
		if !written {
			covers = min(covers, t-1)
		}
	}
	e.mu.Unlock()
	err := e.dev.Flush()
	e.mu.Lock()
	e.flushing = false
	if err == nil {
		e.durable = max(e.durable, covers)
	}
	e.cond.Broadcast()
	e.mu.Unlock()
	if err != nil {
		e.c.ioErrs.Add(1)
		return fmt.Errorf("rawblock: cannot flush: %w", err)
	}
	return nil
}

func (e *Engine) pendingUpToLocked(upTo uint64) bool {
	for t, written := range e.inflight {
		if t <= upTo && !written {
			return true
		}
	}
	return false
}

func (e *Engine) flushLoop(every time.Duration) {
	defer e.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			if err := e.Sync(); err != nil {
				e.log.Warn("rawblock: periodic flush failed", "error", err)
			}
		}
	}
}

// Close waits for writes in flight, flushes and closes the device. Open regions stay open on
// the device (the next Open scans them).
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return nil
	}
	e.closing = true
	e.mu.Unlock()
	// Stop the reclaim loop before refusing writes: a reclaim under way must
	// still be able to keep its tombstones and reinsert survivors, or it
	// would retire a region holding the only newer copy of a key and let an
	// older copy come back at the next start.
	close(e.stop)
	e.wg.Wait()
	e.mu.Lock()
	e.closed = true
	e.cond.Broadcast()
	e.mu.Unlock()
	e.flushMu.Lock() // no write or reclaim in flight from here on
	err := e.Sync()
	e.flushMu.Unlock()
	e.mu.Lock()
	for len(e.inflight) > 0 { // summaries being written
		e.cond.Wait()
	}
	e.mu.Unlock()
	e.releasePool()
	// Buffers reclaim handed down and still referenced (a demotion not yet written) stay
	// valid: the arena unmaps them when they are released.
	_ = e.rarena.Close()
	return errors.Join(err, e.dev.Close())
}

// Stats implements tiers.Tier.
func (e *Engine) Stats() tiers.Stats {
	n, b := e.idx.len()
	e.mu.Lock()
	capacity := e.regSize * int64(len(e.regions))
	e.mu.Unlock()
	return tiers.Stats{
		Name: e.Name(), Items: int64(n), Bytes: b, Capacity: capacity,
		Hits: e.c.hits.Load(), Misses: e.c.misses.Load(), Puts: e.c.puts.Load(), Deletes: e.c.deletes.Load(),
		Evictions: e.c.evictions.Load(), Expired: e.c.expired.Load(), Errors: e.c.errors.Load(),
	}
}

// EngineStats are the engine's own counters and gauges, for INFO and metrics.
type EngineStats struct {
	BlockSize, RegionSize                   int64
	Regions                                 int
	FreeRegions, OpenRegions, SealedRegions int
	ReclaimingRegions                       int
	Reads, Writes, ReadBytes, WriteBytes    uint64
	Reclaims, Reinsertions, ReinsertBytes   uint64
	Trims, ChecksumFailures, IOErrors       uint64
	CorruptRecords                          uint64 // headers, summaries and keys that failed validation
	TombstonesKept, EvictionTombstones      uint64
	Recovered                               uint64 // entries indexed by the last Open
	IndexBytes                              int64
	// ReclaimBufferBytes is the memory mapped by reclaim's own buffers (values on their way
	// to the tier below, reinsertions), in use or cached for reuse; ReclaimBufferLimit bounds
	// it (one region). Neither is part of Options.Arena's limit.
	ReclaimBufferBytes, ReclaimBufferLimit int64
}

// EngineStats returns the engine's counters.
func (e *Engine) EngineStats() EngineStats {
	s := EngineStats{
		BlockSize: e.bs, RegionSize: e.regSize,
		Reads: e.c.reads.Load(), Writes: e.c.writes.Load(), ReadBytes: e.c.readBytes.Load(), WriteBytes: e.c.writeBytes.Load(),
		Reclaims: e.c.reclaims.Load(), Reinsertions: e.c.reinserts.Load(), ReinsertBytes: e.c.reinsertBytes.Load(),
		Trims: e.c.trims.Load(), ChecksumFailures: e.c.checksumFails.Load(), IOErrors: e.c.ioErrs.Load(),
		CorruptRecords: e.c.corrupt.Load(), TombstonesKept: e.c.tombsKept.Load(), EvictionTombstones: e.c.evictTombs.Load(),
		Recovered: e.c.recovered.Load(), IndexBytes: e.idx.memBytes(),
	}
	rs := e.rarena.Stats()
	s.ReclaimBufferBytes, s.ReclaimBufferLimit = rs.Used, rs.Limit
	e.mu.Lock()
	s.Regions = len(e.regions)
	for _, r := range e.regions {
		switch r.state {
		case regionFree:
			s.FreeRegions++
		case regionOpen:
			s.OpenRegions++
		case regionSealed:
			s.SealedRegions++
		case regionReclaiming:
			s.ReclaimingRegions++
		}
	}
	e.mu.Unlock()
	return s
}
