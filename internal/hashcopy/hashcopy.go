// Package hashcopy copies memory and computes the xxh3-64 hash of what it copies in one pass:
// each 64-byte stripe is loaded once, folded into the hash and stored with non-temporal stores
// (which bypass the CPU's caches). A copy followed by a separate hash reads the source twice; on
// a machine whose memory bandwidth a copy already fills, that second read costs half as much
// again as the copy, and a hash on another core competes for the same bandwidth.
//
// Non-temporal stores also make a copy to persistent memory durable with one store fence: the
// data never sits dirty in a cache, so no cache line needs writing back (NonTemporal).
//
// The hash is XXH3-64 with a seed, as github.com/zeebo/xxh3's HashSeed computes it; the tests
// check the two against each other for every length class and seed.
package hashcopy

import (
	"encoding/binary"
	"math/bits"

	"github.com/zeebo/xxh3"
)

// stripe is what XXH3 folds in at a time; block is 16 stripes, after which it scrambles its
// accumulators (with the 192-byte secret of the default size).
const (
	stripe     = 64
	block      = 1024
	secretSize = 192
	// longMin is the shortest input XXH3 hashes with the stripe loop; shorter ones it hashes
	// otherwise, and CopyHash leaves them to xxh3.
	longMin = 241
)

// The XXH3 primes and default secret (XXH3 specification), the secret as little-endian words.
const (
	prime32_1 = 0x9E3779B1
	prime32_2 = 0x85EBCA77
	prime32_3 = 0xC2B2AE3D
	prime64_1 = 0x9E3779B185EBCA87
	prime64_2 = 0xC2B2AE3D27D4EB4F
	prime64_3 = 0x165667B19E3779F9
	prime64_4 = 0x85EBCA77C2B2AE63
	prime64_5 = 0x27D4EB2F165667C5
)

var defaultSecret = [secretSize / 8]uint64{
	0xbe4ba423396cfeb8, 0x1cad21f72c81017c, 0xdb979083e96dd4de, 0x1f67b3b7a4a44072,
	0x78e5c0cc4ee679cb, 0x2172ffcc7dd05a82, 0x8e2443f7744608b8, 0x4c263a81e69035e0,
	0xcb00c391bb52283c, 0xa32e531b8b65d088, 0x4ef90da297486471, 0xd8acdea946ef1938,
	0x3f349ce33f76faa8, 0x1d4f0bc7c7bbdcf9, 0x3159b4cd4be0518a, 0x647378d9c97e9fc8,
	0xc3ebd33483acc5ea, 0xeb6313faffa081c5, 0x49daf0b751dd0d17, 0x9e68d429265516d3,
	0xfca1477d58be162b, 0xce31d07ad1b8f88f, 0x280416958f3acb45, 0x7e404bbbcafbd7af,
}

// NonTemporal reports whether Copy(dst, src) and CopyHash(dst, src, ...) write dst with
// non-temporal stores followed by a store fence: on this CPU (AVX2), for a length that is a
// multiple of 64 and a destination aligned to 32 bytes. Otherwise they copy with the runtime's
// memmove, after which a caller that needs the data out of the caches writes the lines back.
func NonTemporal(dst, src []byte) bool {
	return haveNT && len(src)%stripe == 0 && len(src) > 0 && len(dst) >= len(src) && aligned(dst)
}

// Copy copies src into dst (len(dst) >= len(src)), non-temporally when NonTemporal says so,
// and reports whether it did: the caller that needs the bytes out of the caches writes the
// lines back otherwise.
func Copy(dst, src []byte) (nonTemporal bool) {
	if NonTemporal(dst, src) {
		copyNT(&dst[0], &src[0], uintptr(len(src)))
		return true
	}
	copy(dst, src)
	return false
}

// CopyHash copies all of src into dst (len(dst) >= len(src)), as Copy does, reporting as it
// does, and returns the XXH3-64 hash of its first n bytes with seed: xxh3.HashSeed(src[:n],
// seed). Bytes of src past n (a block's padding) are copied and not hashed.
func CopyHash(dst, src []byte, n int, seed uint64) (sum uint64, nonTemporal bool) {
	if n < 0 || n > len(src) {
		panic("hashcopy: hashed length out of range")
	}
	if n < longMin || !NonTemporal(dst, src) {
		nt := Copy(dst, src)
		return xxh3.HashSeed(src[:n], seed), nt
	}
	var secret [secretSize]byte
	for i := 0; i < secretSize/16; i++ {
		binary.LittleEndian.PutUint64(secret[16*i:], defaultSecret[2*i]+seed)
		binary.LittleEndian.PutUint64(secret[16*i+8:], defaultSecret[2*i+1]-seed)
	}
	acc := [8]uint64{prime32_3, prime64_1, prime64_2, prime64_3, prime64_4, prime32_2, prime64_5, prime32_1}
	// Whole blocks, then the stripes of the last block but its last (which may be partial),
	// then the input's last 64 bytes with their own part of the secret.
	blocks := (n - 1) / block
	if blocks > 0 {
		copyAccumBlocks(&dst[0], &src[0], &acc, &secret, uintptr(blocks))
	}
	at := blocks * block
	stripes := (n - 1 - at) / stripe
	if stripes > 0 {
		copyAccumStripes(&dst[at], &src[at], &acc, &secret[0], uintptr(stripes))
	}
	at += stripes * stripe
	accumulate(&acc, src[n-stripe:n], secret[secretSize-stripe-7:])
	// The rest, never empty (the last stripe is hashed, not copied, above): copyNT's fence
	// covers the stores of the loops as well.
	copyNT(&dst[at], &src[at], uintptr(len(src)-at))
	h := uint64(n) * prime64_1
	for i := 0; i < 4; i++ {
		h += mulFold(acc[2*i]^binary.LittleEndian.Uint64(secret[11+16*i:]), acc[2*i+1]^binary.LittleEndian.Uint64(secret[19+16*i:]))
	}
	h ^= h >> 37
	h *= 0x165667919E3779F9
	return h ^ h>>32, true
}

// accumulate folds one stripe p into acc with the secret at s, as the assembly does.
func accumulate(acc *[8]uint64, p, s []byte) {
	for i := 0; i < 8; i++ {
		v := binary.LittleEndian.Uint64(p[8*i:])
		k := v ^ binary.LittleEndian.Uint64(s[8*i:])
		acc[i^1] += v
		acc[i] += uint64(uint32(k)) * (k >> 32)
	}
}

func mulFold(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}
