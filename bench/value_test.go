package bench

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// valueBytes returns what writeValue sends for key, without the bulk framing.
func valueBytes(t *testing.T, pat *pattern, key string, n int) []byte {
	t.Helper()
	c := &conn{}
	pat.writeValue(c, []byte(key), n)
	if c.mark < len(c.wbuf) {
		c.segs = append(c.segs, segment{off: c.mark, end: len(c.wbuf)})
	}
	var out []byte
	for _, s := range c.segs {
		if s.ext != nil {
			out = append(out, s.ext...)
		} else {
			out = append(out, c.wbuf[s.off:s.end]...)
		}
	}
	r, err := readerConn(out).readReply(nil)
	if err != nil || r.kind != '$' {
		t.Fatalf("writeValue(%q, %d) is not one bulk string: %v", key, n, err)
	}
	return r.str
}

func TestValueRoundTrip(t *testing.T) {
	pat := newPattern(1<<20 + 3)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{1, 7, 8, 28, smallValueLen - 1, smallValueLen, smallValueLen + 1, 1000, 1<<20 + 3} {
		v := valueBytes(t, pat, "key", n)
		if len(v) != n {
			t.Fatalf("size %d: wrote %d bytes", n, len(v))
		}
		if err := pat.verify([]byte("key"), v, n, rng); err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if other := valueBytes(t, pat, "kez", n); string(other) == string(v) {
			t.Fatalf("size %d: two keys have the same value", n)
		}
		// Every header byte and every mark is checked, whatever the rng.
		checked := []int{0, 8, 15, n - 1}
		if n >= smallValueLen {
			for _, off := range markOffsets(keyHash([]byte("key")), n) {
				checked = append(checked, off, off+markLen-1)
			}
		}
		for _, pos := range checked {
			if pos < 0 || pos >= n {
				continue
			}
			v[pos] ^= 0x40
			var ve *verifyError
			if err := pat.verify([]byte("key"), v, n, rng); !errors.As(err, &ve) {
				t.Fatalf("size %d: byte %d flipped, verify says %v", n, pos, err)
			}
			v[pos] ^= 0x40
		}
	}
}
