//go:build linux

package rawblock

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
)

// The FileDevice benchmarks mirror fio on one 1 GiB file with 1 MiB blocks at queue depth 32:
//
//	fio --name=w --filename=F --size=1g --bs=1m --iodepth=32 --ioengine=io_uring --direct=1 --rw=write
//	fio --name=r --filename=F --size=1g --bs=1m --iodepth=32 --ioengine=io_uring --direct=1 --rw=randread
//
// Queue depth 32 is 32 goroutines with one 1 MiB call each in flight (the way the engine's
// readers load the device); the 32MiB variants are one caller whose calls are split into 32
// operations. KVRESP_BENCH_FILE names the file to use (default: a temporary one) and
// KVRESP_BENCH_RINGS the ring count (default 1, like fio's one job).

const benchFileSize = 1 << 30

func benchFileDev(b *testing.B, filled bool) *FileDevice {
	path := os.Getenv("KVRESP_BENCH_FILE")
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench")
	}
	rings := 1
	if s := os.Getenv("KVRESP_BENCH_RINGS"); s != "" {
		rings, _ = strconv.Atoi(s)
	}
	d := openFileDev(b, FileOptions{Path: path, Size: benchFileSize, Rings: rings, QueueDepth: 32})
	if filled {
		// Lay the file out first, as fio does before a randread.
		buf := slabBuf(b, newArena(b), 32<<20)
		for off := int64(0); off < benchFileSize; off += int64(len(buf)) {
			if err := d.WriteAt(buf, off, ClassHot); err != nil {
				b.Fatal(err)
			}
		}
	}
	return d
}

// runQD32 runs op from 32 goroutines, each with its own 1 MiB buffer.
func runQD32(b *testing.B, d *FileDevice, op func(buf []byte, i int64) error) {
	a := newArena(b)
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var n atomic.Int64
	before := d.Stats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf, err := a.Alloc(1 << 20)
		if err != nil {
			b.Error(err)
			return
		}
		defer buf.Release()
		for pb.Next() {
			if err := op(buf.Bytes(), n.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportQueue(b, d, before)
}

// reportQueue reports the deepest queue seen and how many operations each io_uring_enter
// submitted or waited for on average.
func reportQueue(b *testing.B, d *FileDevice, before FileStats) {
	st := d.Stats()
	b.ReportMetric(float64(st.MaxQueueDepth), "max-qd")
	b.ReportMetric(float64(st.Ops-before.Ops)/float64(max(st.Submits-before.Submits, 1)), "ops/enter")
}

func BenchmarkFileDeviceSeqWrite1MiBQD32(b *testing.B) {
	d := benchFileDev(b, false)
	runQD32(b, d, func(buf []byte, i int64) error {
		return d.WriteAt(buf, (i<<20)%benchFileSize, ClassHot)
	})
}

func BenchmarkFileDeviceRandRead1MiBQD32(b *testing.B) {
	d := benchFileDev(b, true)
	runQD32(b, d, func(buf []byte, _ int64) error {
		return d.ReadAt(buf, rand.Int64N(benchFileSize>>20)<<20)
	})
}

func benchFileDev32MiB(b *testing.B, write bool) {
	d := benchFileDev(b, !write)
	buf := slabBuf(b, newArena(b), 32<<20)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	before := d.Stats()
	for i := int64(0); b.Loop(); i++ {
		var err error
		if write {
			err = d.WriteAt(buf, (i<<25)%benchFileSize, ClassHot)
		} else {
			err = d.ReadAt(buf, rand.Int64N(benchFileSize>>25)<<25)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	reportQueue(b, d, before)
}

func BenchmarkFileDeviceSeqWrite32MiB(b *testing.B) { benchFileDev32MiB(b, true) }
func BenchmarkFileDeviceRandRead32MiB(b *testing.B) { benchFileDev32MiB(b, false) }
