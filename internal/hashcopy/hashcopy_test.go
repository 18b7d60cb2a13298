package hashcopy

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/zeebo/xxh3"
)

// alignedBuf returns n bytes starting at a 4 KiB boundary plus off.
func alignedBuf(n, off int) []byte {
	b := make([]byte, n+off+4096)
	skip := (4096 - int(uintptr(unsafe.Pointer(&b[0]))%4096)) % 4096
	return b[skip+off : skip+off+n]
}

// CopyHash copies every byte and returns xxh3.HashSeed of the hashed prefix, for lengths
// around every boundary of the algorithm (short inputs, 240/241, stripes, blocks, 64 KiB) and
// several seeds, on aligned destinations (the fused path) and unaligned ones (the fallback).
func TestCopyHashMatchesXXH3(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int{0, 1, 16, 64, 128, 192, 256, 320, 1024, 1088, 4096, 65536, 1 << 20,
		240, 241, 255, 1023, 1025, 2047, 2048, 4095, 65535, 65537, 100000}
	for _, seed := range []uint64{0, 1, 0x9E3779B185EBCA87, rng.Uint64()} {
		for _, n := range lengths {
			padded := (n + 63) / 64 * 64
			src := alignedBuf(padded, 0)
			for i := range src {
				src[i] = byte(rng.Uint32())
			}
			want := xxh3.HashSeed(src[:n], seed)
			for _, off := range []int{0, 8} {
				dst := alignedBuf(padded, off)
				got, nt := CopyHash(dst, src, n, seed)
				if got != want {
					t.Fatalf("n=%d seed=%#x dst+%d: hash %#x, xxh3 %#x", n, seed, off, got, want)
				}
				if nt != NonTemporal(dst, src) {
					t.Fatalf("n=%d dst+%d: reported non-temporal %v, NonTemporal says %v", n, off, nt, !nt)
				}
				if !bytes.Equal(dst, src) {
					t.Fatalf("n=%d dst+%d: copy differs", n, off)
				}
			}
		}
	}
}

func TestNonTemporal(t *testing.T) {
	src := alignedBuf(4096, 0)
	if haveNT != NonTemporal(alignedBuf(4096, 0), src) {
		t.Fatal("aligned whole stripes: NonTemporal should follow the CPU")
	}
	if NonTemporal(alignedBuf(4096, 16), src) || NonTemporal(alignedBuf(4096, 0), src[:100]) || NonTemporal(alignedBuf(64, 0), src) {
		t.Fatal("misaligned, partial-stripe or short destinations must not be non-temporal")
	}
	for _, n := range []int{64, 4096, 3 << 20} {
		s, d := alignedBuf(n, 0), alignedBuf(n, 0)
		for i := range s {
			s[i] = byte(i * 7)
		}
		if nt := Copy(d, s); nt != NonTemporal(d, s) {
			t.Fatalf("Copy of %d bytes reported non-temporal %v", n, nt)
		}
		if !bytes.Equal(d, s) {
			t.Fatalf("Copy of %d bytes differs", n)
		}
	}
}

func FuzzCopyHash(f *testing.F) {
	f.Add([]byte("x"), uint64(0), uint16(0))
	f.Add(bytes.Repeat([]byte{0xA5}, 5000), uint64(42), uint16(4000))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, cut uint16) {
		padded := (len(data) + 63) / 64 * 64
		src := alignedBuf(padded, 0)
		copy(src, data)
		n := len(data)
		if int(cut) < n {
			n = int(cut)
		}
		dst := alignedBuf(padded, 0)
		if got, want := first(CopyHash(dst, src, n, seed)), xxh3.HashSeed(src[:n], seed); got != want {
			t.Fatalf("len %d n %d: %#x, want %#x", len(src), n, got, want)
		}
		if !bytes.Equal(dst, src) {
			t.Fatal("copy differs")
		}
	})
}

// BenchmarkCopyHash: the fused pass against memmove and against memmove then xxh3, over 4 MiB
// (a value) into 256 MiB of destinations, so the destination is never cached.
func BenchmarkCopyHash(b *testing.B) {
	const size, span = 4 << 20, 256 << 20
	src := alignedBuf(size, 0)
	for i := range src {
		src[i] = byte(i)
	}
	dst := alignedBuf(span, 0)
	clear(dst)
	for _, mode := range []string{"memmove", "memmove+xxh3", "fused"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				d := dst[(i*size)%span:][:size]
				switch mode {
				case "memmove":
					copy(d, src)
				case "memmove+xxh3":
					copy(d, src)
					xxh3.Hash(src)
				case "fused":
					for at := 0; at < size; at += 64 << 10 {
						CopyHash(d[at:], src[at:at+64<<10], 64<<10, uint64(at))
					}
				}
			}
		})
	}
}

func first(sum uint64, _ bool) uint64 { return sum }
