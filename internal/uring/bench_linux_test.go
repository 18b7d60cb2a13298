//go:build linux

package uring

import (
	"fmt"
	"testing"
)

// BenchmarkReadDirect reads blockSize bytes at random aligned offsets of a 64 MiB O_DIRECT file,
// keeping depth reads in flight, through registered buffers (READ_FIXED) as rawblock does.
func BenchmarkReadDirect(b *testing.B) {
	const fileSize = 64 << 20
	for _, blockSize := range []int{4 << 10, 1 << 20} {
		for _, depth := range []int{1, 32} {
			b.Run(fmt.Sprintf("block=%dKiB/qd=%d", blockSize>>10, depth), func(b *testing.B) {
				benchRead(b, fileSize, blockSize, depth)
			})
		}
	}
}

func benchRead(b *testing.B, fileSize, blockSize, depth int) {
	r := newRing(b, Params{Entries: uint32(depth)})
	fd := directFile(b, fileSize, blockPattern)
	mem := alignedBuf(b, depth*blockSize)
	fixed := r.RegisterBuffers([][]byte{mem}) == nil
	if !fixed {
		b.Log("buffer registration failed; plain READ")
	}
	blocks := uint64(fileSize / blockSize)
	rnd := uint64(0x9e3779b97f4a7c15)
	issue := func(slot int) {
		rnd ^= rnd << 13 // xorshift: cheap and allocation-free
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		s := r.GetSQE()
		if s == nil {
			b.Fatal("SQ full")
		}
		buf := mem[slot*blockSize : (slot+1)*blockSize]
		off := (rnd % blocks) * uint64(blockSize)
		if fixed {
			s.PrepReadFixed(int32(fd), buf, off, 0)
		} else {
			s.PrepRead(int32(fd), buf, off)
		}
		s.SetUserData(uint64(slot))
	}
	b.SetBytes(int64(blockSize))
	b.ReportAllocs()
	b.ResetTimer()
	issued := 0
	for ; issued < min(depth, b.N); issued++ {
		issue(issued)
	}
	for done := 0; done < b.N; done++ {
		c, err := r.WaitCQE()
		if err != nil {
			b.Fatal(err)
		}
		r.CQESeen()
		if int(c.Res) != blockSize {
			b.Fatalf("read completed with %d (%v)", c.Res, c.Err())
		}
		if issued < b.N {
			issue(int(c.UserData))
			issued++
		}
	}
}
