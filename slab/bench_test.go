package slab

import (
	"fmt"
	"testing"
)

var sink []byte

// BenchmarkAlloc compares an Alloc+Release round trip (the reuse path: the class's free list is
// warm) with make([]byte, n), which zeroes or faults in fresh memory and leaves garbage.
func BenchmarkAlloc(b *testing.B) {
	for _, n := range []int{28, MiB, 32 * MiB} {
		name := fmt.Sprintf("%dB", n)
		if n >= MiB {
			name = fmt.Sprintf("%dMiB", n/MiB)
		}
		b.Run(name+"/slab", func(b *testing.B) {
			a := newArena(b, Options{Limit: 256 * MiB})
			alloc(b, a, n).Release()
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				buf, err := a.Alloc(n)
				if err != nil {
					b.Fatal(err)
				}
				buf.Bytes()[0] = 1
				buf.Release()
			}
		})
		b.Run(name+"/make", func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				sink = make([]byte, n)
				sink[0] = 1
			}
		})
	}
}

// BenchmarkAllocParallel measures tiny allocations from all cores at once: the arena lock's cost.
func BenchmarkAllocParallel(b *testing.B) {
	a := newArena(b, Options{Limit: 256 * MiB})
	b.SetBytes(28)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			buf, err := a.Alloc(28)
			if err != nil {
				b.Error(err)
				return
			}
			buf.Release()
		}
	})
}
