//go:build linux

package dax

import (
	"fmt"
	"testing"
	"time"

	"github.com/zeebo/xxh3"

	"kvresp/rawblock"
	"kvresp/slab"
	"kvresp/tiers"
)

// BenchmarkDaxTier measures the DAX tier as the server uses it: values put into and read from a
// rawblock.Engine over a Device on a tmpfs file (/dev/shm: memory, as persistent memory is), and
// compares the throughput with plain memmove of the same size measured in the same benchmark,
// alternating with it (memmove-MB/s; x-memmove is the tier's share of it). The engine checksums
// every value (xxh3) as it writes it and verifies it as it reads it, in the same pass as the copy
// (internal/hashcopy); xxh3-MB/s is the speed of that hash alone over the value's buffer,
// measured the same way. The device/ sub-benchmarks are WriteAt and ReadAt alone, without the engine.
//
// Two ways to persist: msync (what a plain file gets: tmpfs makes it a near no-op, so this is
// the engine and the copy alone) and lines (the fsdax/devdax path forced onto the tmpfs
// mapping: non-temporal stores, or, without AVX2, every line written back by CLWB or its
// fallback as the copy goes; a fence per write).
// Puts use Options.Sync (durable on return). The device is written whole before timing, so the
// figures are for a tier past its first pass, whose page faults are not counted.
func BenchmarkDaxTier(b *testing.B) {
	for _, mode := range []string{"msync", "lines"} {
		for _, size := range []int{4 << 20, 32 << 20} {
			name := fmt.Sprintf("%s/%dMiB", mode, size>>20)
			for _, engine := range []bool{true, false} {
				prefix := "tier/"
				if !engine {
					prefix = "device/"
				}
				b.Run(prefix+"write/"+name, func(b *testing.B) { benchTier(b, mode == "lines", size, false, engine) })
				b.Run(prefix+"read/"+name, func(b *testing.B) { benchTier(b, mode == "lines", size, true, engine) })
			}
		}
	}
}

func benchTier(b *testing.B, lines bool, size int, read, engine bool) {
	const devSize = 1 << 30
	a, err := slab.New(slab.Options{Limit: 2 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	d, err := Open(Options{Path: shmPath(b), Size: devSize, Logger: quiet, forceLines: lines})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	src, err := a.Alloc(size)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Release()
	dst, err := a.Alloc(size)
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Release()
	clear(src.Bytes())
	for off := int64(0); off+int64(size) <= devSize; off += int64(size) {
		if err := d.WriteAt(src.Bytes(), off, rawblock.ClassHot); err != nil {
			b.Fatal(err)
		}
	}
	copy(src.Bytes(), value(size, 1))
	copy(dst.Bytes(), src.Bytes())

	// 256 MiB of values: several times the CPU's caches, a quarter of the device, so that
	// writes keep reclaiming and reads come from memory, not from a cache.
	keys := (256 << 20) / size
	var e *rawblock.Engine
	if engine {
		if e, err = rawblock.Open(rawblock.Options{Device: d, Arena: a, RegionSize: 128 << 20, FlushInterval: -1, Sync: true, Logger: quiet}); err != nil {
			b.Fatal(err)
		}
		defer e.Close()
	}
	if read {
		for i := 0; i < keys; i++ {
			if engine {
				err = e.Put(fmt.Sprintf("k%d", i), tiers.Item{Buf: src})
			} else {
				err = d.WriteAt(src.Bytes(), int64(i*size), rawblock.ClassHot)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	// The memmove baseline moves the same bytes between the same kinds of memory: the slab
	// buffer and another tmpfs mapping, over as many bytes as the values occupy (so, like the
	// tier, mostly out of the CPU's caches).
	base, err := Open(Options{Path: shmPath(b), Size: int64(keys * size), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer base.Close()
	for off := 0; off < keys*size; off += size {
		copy(base.mem[off:off+size], src.Bytes())
	}
	baseline := func(n int) (memmove, hash time.Duration) {
		start := time.Now()
		for i := 0; i < n; i++ {
			off := (i % keys) * size
			if read {
				copy(dst.Bytes(), base.mem[off:off+size])
			} else {
				copy(base.mem[off:off+size], src.Bytes())
			}
		}
		memmove = time.Since(start)
		start = time.Now()
		for i := 0; i < n; i++ {
			xxh3.Hash(src.Bytes())
		}
		return memmove, time.Since(start)
	}
	baseline(2) // warm
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	var tier, mm, hash time.Duration
	for done := 0; done < b.N; {
		// The tier and the baselines alternate in batches, so that all see the same machine.
		n := min(b.N-done, 8)
		b.StopTimer()
		m, h := baseline(n)
		mm, hash = mm+m, hash+h
		b.StartTimer()
		start := time.Now()
		for i := done; i < done+n; i++ {
			if !engine {
				off := int64(i%keys) * int64(size)
				if read {
					err = d.ReadAt(dst.Bytes(), off)
				} else {
					err = d.WriteAt(src.Bytes(), off, rawblock.ClassHot)
				}
				if err != nil {
					b.Fatal(err)
				}
				continue
			}
			k := fmt.Sprintf("k%d", i%keys)
			if read {
				it, ok, err := e.Get(k)
				if err != nil || !ok {
					b.Fatalf("get %s: %v %v", k, ok, err)
				}
				it.Buf.Release()
			} else if err := e.Put(k, tiers.Item{Buf: src}); err != nil {
				b.Fatal(err)
			}
		}
		tier += time.Since(start)
		done += n
	}
	mbs := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbs(mm), "memmove-MB/s")
	b.ReportMetric(mbs(hash), "xxh3-MB/s")
	b.ReportMetric(mbs(tier)/mbs(mm), "x-memmove")
}

// BenchmarkDaxFlush measures what writing cache lines back costs per GiB written, on a 1 GiB
// tmpfs mapping, the way WriteAt does it where it cannot store non-temporally (no AVX2): a
// chunk copied, then its lines written back, a fence
// at the end. Each iteration writes the GiB twice, once without write-back and once with;
// copy-ms/GiB and copy+flush-ms/GiB are the two, flush-ms/GiB their difference. One
// sub-benchmark per instruction this CPU has, and per chunk: 1 MiB (flushChunk: Go's memmove
// copies it with non-temporal stores, so the lines are no longer cached when written back) and
// 64 KiB (copied through the cache: the lines are written back while still cached).
func BenchmarkDaxFlush(b *testing.B) {
	const gib = 1 << 30
	for op := opCLFLUSH; op <= lineOp; op++ {
		for _, chunk := range []int{flushChunk, 64 << 10} {
			b.Run(fmt.Sprintf("%s/chunk=%dKiB", opNames[op], chunk>>10), func(b *testing.B) {
				d, err := Open(Options{Path: shmPath(b), Size: gib, Logger: quiet})
				if err != nil {
					b.Fatal(err)
				}
				defer d.Close()
				mem := d.mem
				src := newTestMapping(b, 64<<20)
				copy(src, value(len(src), 3))
				pass := func(flush bool) time.Duration {
					start := time.Now()
					for off := 0; off < gib; off += chunk {
						s := off % len(src)
						copy(mem[off:off+chunk], src[s:s+chunk])
						if flush {
							writeLines(op, mem[off:off+chunk])
						}
					}
					if flush {
						sfence()
					}
					return time.Since(start)
				}
				pass(false) // fault the mapping in
				b.ReportAllocs()
				b.ResetTimer()
				var plain, flushed time.Duration
				for i := 0; i < b.N; i++ {
					plain += pass(false)
					flushed += pass(true)
				}
				ms := func(d time.Duration) float64 { return d.Seconds() * 1e3 / float64(b.N) }
				b.ReportMetric(ms(plain), "copy-ms/GiB")
				b.ReportMetric(ms(flushed), "copy+flush-ms/GiB")
				b.ReportMetric(ms(flushed)-ms(plain), "flush-ms/GiB")
			})
		}
	}
}
