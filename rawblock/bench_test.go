package rawblock

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"kvresp/tiers"
)

func benchPutGet(b *testing.B, size int) {
	dev := NewMemDevice(int64(size)*24+64<<20, 4096, false)
	a := newArena(b)
	e := open(b, dev, a, func(o *Options) { o.RegionSize = int64(size)*2 + 1<<20; o.FreeRegions = 2 })
	buf, _ := a.Alloc(size)
	copy(buf.Bytes(), value(size, 1))
	defer buf.Release()
	b.Run("Put", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := e.Put(key(i%8), tiers.Item{Buf: buf}); err != nil {
				b.Fatal(err)
			}
		}
	})
	for i := 0; i < 8; i++ {
		e.Put(key(i), tiers.Item{Buf: buf})
	}
	b.Run("Get", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			it, ok, _ := e.Get(key(i % 8))
			if !ok {
				b.Fatal("miss")
			}
			it.Buf.Release()
		}
	})
}

func BenchmarkPutGet4MiB(b *testing.B)  { benchPutGet(b, 4<<20) }
func BenchmarkPutGet32MiB(b *testing.B) { benchPutGet(b, 32<<20) }

// BenchmarkIndexBytesPerEntry measures the heap the index takes for 10 M entries.
func BenchmarkIndexBytesPerEntry(b *testing.B) {
	const n = 10_000_000
	for b.Loop() {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		x := newIndex()
		for i := uint64(1); i <= n; i++ {
			h := i * 0x9e3779b97f4a7c15
			s := x.shard(h)
			s.put(h, ival{region: uint32(i % 1000), off512: uint32(i % 4096), hk512: 1, vlen: 28, expireAt: int64(i)})
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		if got, _ := x.len(); got != n {
			b.Fatalf("index holds %d", got)
		}
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/n, "heapB/entry")
		runtime.KeepAlive(x)
	}
}

// BenchmarkRecovery1M measures Open over a log of 1 M small entries (28-byte values).
func BenchmarkRecovery1M(b *testing.B) {
	const n = 1_000_000
	dev := NewMemDevice(720<<20, 512, false)
	a := newArena(b)
	e, err := Open(Options{Device: dev, Arena: a, RegionSize: 64 << 20, FlushInterval: -1, Logger: quiet, FreeRegions: 2})
	if err != nil {
		b.Fatal(err)
	}
	buf, _ := a.Alloc(28)
	for i := 0; i < n; i++ {
		if err := e.Put(fmt.Sprintf("k%08d", i), tiers.Item{Buf: buf}); err != nil {
			b.Fatal(err)
		}
	}
	buf.Release()
	e.Close()
	img := dev.Image()
	for b.Loop() {
		start := time.Now()
		e, err := Open(Options{Device: NewMemDeviceFrom(img, 512, false), Arena: a, FlushInterval: -1, Logger: quiet, FreeRegions: 2})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/recovery")
		if e.Len() != n {
			b.Fatalf("recovered %d of %d", e.Len(), n)
		}
		e.Close()
	}
}
