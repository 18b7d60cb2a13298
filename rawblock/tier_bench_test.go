//go:build linux

package rawblock

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"kvresp/slab"
	"kvresp/tiers"
)

// The tier benchmarks run the Engine over a FileDevice with the shape of the fio runs they are
// compared with (DESIGN.md §7): one ring (fio's one job), queue depth 32, 1 MiB operations,
// on one 2 GiB file of 256 MiB regions:
//
//	fio --name=w --filename=F --size=2g --bs=1m --iodepth=32 --ioengine=io_uring --direct=1 --rw=write
//	fio --name=r --filename=F --size=2g --bs=1m --iodepth=32 --ioengine=io_uring --direct=1 --rw=randread
//
// Values are 4 or 32 MiB, so the device splits each Put or Get into 1 MiB operations; enough
// goroutines call at once to keep 32 operations queued (twice the number that would just fill
// the queue, so that one caller's turnaround does not drain it). KVRESP_BENCH_FILE names the
// file (default: a temporary one); its contents are formatted away. Reclaimed regions are not
// trimmed, as with the server's default (rawblock-trim auto) on a regular file;
// KVRESP_BENCH_TRIM=1 punches their holes, to measure what writing into punched holes (which
// the filesystem must allocate again) costs.

const (
	tierBenchFileSize   = 2 << 30
	tierBenchRegionSize = 256 << 20
	tierBenchQD         = 32
)

func tierBenchEngine(b *testing.B, a *slab.Arena) (*Engine, *FileDevice) {
	path := os.Getenv("KVRESP_BENCH_FILE")
	if path == "" {
		path = filepath.Join(b.TempDir(), "tier")
	}
	trim := TrimOff
	if os.Getenv("KVRESP_BENCH_TRIM") == "1" {
		trim = TrimOn
	}
	d := openFileDev(b, FileOptions{Path: path, Size: tierBenchFileSize, Rings: 1, QueueDepth: tierBenchQD, ChunkSize: 1 << 20, Trim: trim})
	e, err := Open(Options{Device: d, Arena: a, RegionSize: tierBenchRegionSize, Format: true, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	// No Check here: reclaim may still be working through a region when the benchmark ends,
	// and Check wants an engine with nothing in flight.
	b.Cleanup(func() {
		if err := e.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
	return e, d
}

// tierCallers is the number of goroutines that keeps the device queue full with values of size
// bytes split into 1 MiB operations.
func tierCallers(size int) int { return max(2, 2*tierBenchQD/(size>>20)) }

// runTier runs op from tierCallers(size) goroutines, each with its own value buffer.
func runTier(b *testing.B, d *FileDevice, a *slab.Arena, size int, op func(buf *slab.Buf, i int64) error) {
	b.SetBytes(int64(size))
	b.ReportAllocs()
	callers := tierCallers(size)
	b.SetParallelism((callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var n atomic.Int64
	before := d.Stats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf, err := a.Alloc(size)
		if err != nil {
			b.Error(err)
			return
		}
		defer buf.Release()
		copy(buf.Bytes(), value(4096, int(n.Load()))) // not all zero
		for pb.Next() {
			if err := op(buf, n.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportQueue(b, d, before)
}

func benchTierPutFile(b *testing.B, size int) {
	a := newArena(b)
	e, d := tierBenchEngine(b, a)
	runTier(b, d, a, size, func(buf *slab.Buf, i int64) error {
		return e.Put(fmt.Sprintf("put%012d", i), tiers.Item{Buf: buf})
	})
	st := e.EngineStats()
	b.ReportMetric(float64(st.Reclaims), "reclaims")
}

func BenchmarkTierPutFile4MiB(b *testing.B)  { benchTierPutFile(b, 4<<20) }
func BenchmarkTierPutFile32MiB(b *testing.B) { benchTierPutFile(b, 32<<20) }

// tierResident is how many bytes of values the Get benchmarks keep on the device: four of the
// seven regions, so that no reclaim evicts them (three regions are kept free).
const tierResident = 800 << 20

func benchTierGetFile(b *testing.B, size int) {
	a := newArena(b)
	e, d := tierBenchEngine(b, a)
	keys := tierResident / size
	buf := slabBuf(b, a, size)
	copy(buf, value(size, 7))
	for i := 0; i < keys; i++ {
		if err := put(b, e, a, fmt.Sprintf("get%08d", i), buf, 0); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.Sync(); err != nil {
		b.Fatal(err)
	}
	if e.Len() != keys {
		b.Fatalf("%d of %d values resident", e.Len(), keys)
	}
	var misses atomic.Int64
	runTier(b, d, a, size, func(_ *slab.Buf, _ int64) error {
		it, ok, err := e.Get(fmt.Sprintf("get%08d", rand.IntN(keys)))
		if err != nil {
			return err
		}
		if !ok {
			misses.Add(1)
			return nil
		}
		it.Buf.Release()
		return nil
	})
	if m := misses.Load(); m > 0 {
		b.Fatalf("%d misses of resident values", m)
	}
}

func BenchmarkTierGetFile4MiB(b *testing.B)  { benchTierGetFile(b, 4<<20) }
func BenchmarkTierGetFile32MiB(b *testing.B) { benchTierGetFile(b, 32<<20) }

// BenchmarkRecoveryFile measures Open over a FileDevice holding a log of 1 M small entries
// (28-byte values, as many keys as redis-benchmark -r 1000000 writes). The log is written
// through the engine on the file by 64 goroutines, then each iteration opens the file again
// (O_DIRECT through io_uring, as a restarting server does) until the index holds every entry.
func BenchmarkRecoveryFile(b *testing.B) {
	const n, writers = 1_000_000, 64
	path := os.Getenv("KVRESP_BENCH_FILE")
	if path == "" {
		path = filepath.Join(b.TempDir(), "recovery")
	}
	// One entry takes a block (header + key + value, padded): room for n of them in 256 MiB
	// regions, plus the regions reclaim keeps free.
	size := int64(n)*4096 + (3+defaultFreeRegions)*tierBenchRegionSize
	size -= size % tierBenchRegionSize
	a := newArena(b)
	fo := FileOptions{Path: path, Size: size, Rings: 1, QueueDepth: tierBenchQD}
	e, err := Open(Options{Device: openFileDev(b, fo), Arena: a, RegionSize: tierBenchRegionSize, Format: true, FlushInterval: -1, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	val, _ := a.Alloc(28)
	copy(val.Bytes(), "xxxxxxxxxxxxxxxxxxxxxxxxxxxx")
	var next atomic.Int64
	errc := make(chan error, writers)
	for range writers {
		go func() {
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				if err := e.Put(fmt.Sprintf("key:%012d", i), tiers.Item{Buf: val}); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range writers {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	val.Release()
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	fo.Size = 0
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		e, err := Open(Options{Device: openFileDev(b, fo), Arena: a, FlushInterval: -1, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		b.ReportMetric(took.Seconds(), "s/recovery") // the last iteration's
		b.Logf("recovered %d entries in %v", e.Len(), took)
		if e.Len() != n {
			b.Fatalf("recovered %d of %d", e.Len(), n)
		}
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTierPutFileSmall measures Puts of 28-byte values (LMCache's metadata, or
// redis-benchmark's default) from 64 goroutines: what a shutdown write-down of many small keys
// costs per key. Each entry takes one block.
func BenchmarkTierPutFileSmall(b *testing.B) {
	a := newArena(b)
	e, d := tierBenchEngine(b, a)
	val, _ := a.Alloc(28)
	defer val.Release()
	copy(val.Bytes(), "xxxxxxxxxxxxxxxxxxxxxxxxxxxx")
	b.ReportAllocs()
	b.SetParallelism(32)
	var n atomic.Int64
	before := d.Stats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := e.Put(fmt.Sprintf("key:%012d", n.Add(1)), tiers.Item{Buf: val}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportQueue(b, d, before)
}
