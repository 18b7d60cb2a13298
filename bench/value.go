package bench

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
)

// A value is derived from its key and size alone, so any GET can be checked
// without remembering what was written, by any run of the bench:
//
//   - below smallValueLen bytes: a stream of words mix(h+1), mix(h+2), ...
//     where h is the key's hash; checked whole.
//   - from smallValueLen up: h and the size (8 bytes each, little endian),
//     then the shared pattern bytes with nMarks 8-byte marks mix(h+j+…)
//     at key-dependent offsets, one per equal slice of the rest. A GET is
//     checked on the header, every mark and sampleBytes random bytes, so
//     a value of another key, a shifted or truncated value, or corruption
//     of more than a sliver is caught at a cost of O(1) per GET.
//
// A SET sends the pattern bytes in place (net.Buffers) with the header and
// marks in between: nothing of the value's size is copied or allocated.
const (
	hdrLen        = 16
	nMarks        = 8
	markLen       = 8
	smallValueLen = hdrLen + 2*nMarks*markLen
	sampleBytes   = 32
)

// pattern is the shared, read-only filler of large values: pseudo-random,
// so that nothing on the path can compress it, and fixed, so that values
// written by an earlier run still verify.
type pattern struct{ base []byte }

func newPattern(size int) *pattern {
	b := make([]byte, (size+7)&^7)
	x := uint64(0x6b7672657370) // "kvresp"
	for i := 0; i < len(b); i += 8 {
		x += 0x9e3779b97f4a7c15
		binary.LittleEndian.PutUint64(b[i:], mix(x))
	}
	return &pattern{base: b[:size]}
}

// mix is splitmix64's finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func keyHash(key []byte) uint64 {
	f := fnv.New64a()
	f.Write(key)
	return mix(f.Sum64())
}

func markWord(h uint64, j int) uint64 { return mix(h ^ uint64(j+1)*0x9e3779b97f4a7c15) }

// markOffsets places mark j in the j-th slice of [hdrLen, n); n >= smallValueLen.
func markOffsets(h uint64, n int) (off [nMarks]int) {
	slice := (n - hdrLen) / nMarks
	for j := range off {
		off[j] = hdrLen + j*slice + int(mix(h+uint64(j)+7)%uint64(slice-markLen+1))
	}
	return off
}

// appendSmall appends the whole value of a small key.
func appendSmall(b []byte, h uint64, n int) []byte {
	var w [8]byte
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(w[:], mix(h+uint64(i/8)+1))
		b = append(b, w[:min(8, n-i)]...)
	}
	return b
}

// writeValue queues the value of key, n bytes, as a bulk string.
func (p *pattern) writeValue(c *conn, key []byte, n int) {
	h := keyHash(key)
	c.writeBulkHeader(n)
	if n < smallValueLen {
		c.wbuf = appendSmall(c.wbuf, h, n)
		c.wbuf = append(c.wbuf, '\r', '\n')
		return
	}
	if n > len(p.base) {
		panic(fmt.Sprintf("BUG: value of %d bytes, pattern of %d", n, len(p.base)))
	}
	c.wbuf = binary.LittleEndian.AppendUint64(c.wbuf, h)
	c.wbuf = binary.LittleEndian.AppendUint64(c.wbuf, uint64(n))
	prev := hdrLen
	for j, off := range markOffsets(h, n) {
		c.writeExt(p.base[prev:off])
		c.wbuf = binary.LittleEndian.AppendUint64(c.wbuf, markWord(h, j))
		prev = off + markLen
	}
	c.writeExt(p.base[prev:n])
	c.wbuf = append(c.wbuf, '\r', '\n')
}

// verifyError is a GET whose bytes are not what was written.
type verifyError struct {
	key string
	msg string
}

func (e *verifyError) Error() string { return fmt.Sprintf("wrong value for %q: %s", e.key, e.msg) }

// verify checks b as the value of key, n bytes; rng picks the sampled bytes.
func (p *pattern) verify(key, b []byte, n int, rng *rand.Rand) error {
	bad := func(format string, args ...any) error {
		return &verifyError{key: string(key), msg: fmt.Sprintf(format, args...)}
	}
	if len(b) != n {
		return bad("%d bytes, want %d", len(b), n)
	}
	h := keyHash(key)
	if n < smallValueLen {
		var buf [smallValueLen]byte
		want := appendSmall(buf[:0], h, n)
		for i := range want {
			if b[i] != want[i] {
				return bad("byte %d is %#x, want %#x", i, b[i], want[i])
			}
		}
		return nil
	}
	if got := binary.LittleEndian.Uint64(b); got != h {
		return bad("header names key hash %#x, want %#x (another key's value?)", got, h)
	}
	if got := binary.LittleEndian.Uint64(b[8:]); got != uint64(n) {
		return bad("header says %d bytes, want %d", got, n)
	}
	offs := markOffsets(h, n)
	for j, off := range offs {
		if got, want := binary.LittleEndian.Uint64(b[off:]), markWord(h, j); got != want {
			return bad("mark %d at byte %d is %#x, want %#x", j, off, got, want)
		}
	}
	slice := (n - hdrLen) / nMarks
	for i := 0; i <= sampleBytes; i++ {
		pos := n - 1 // the last byte, then random ones
		if i > 0 {
			pos = hdrLen + rng.IntN(n-hdrLen)
		}
		want := p.base[pos]
		if j := min((pos-hdrLen)/slice, nMarks-1); pos >= offs[j] && pos < offs[j]+markLen {
			continue // checked with the marks
		}
		if b[pos] != want {
			return bad("byte %d is %#x, want %#x", pos, b[pos], want)
		}
	}
	return nil
}
