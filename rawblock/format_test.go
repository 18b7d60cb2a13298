package rawblock

import (
	"bytes"
	"errors"
	"testing"

	"github.com/zeebo/xxh3"
)

// TestDataHashPinned pins the entry checksum of format version 2: a change to dataDigest (its
// hash, its chaining, hashPiece) is a change of the on-media format, which needs a new
// formatVersion, not just a new constant here.
func TestDataHashPinned(t *testing.T) {
	hdr := make([]byte, headerLen)
	(&entryHeader{keyLen: 9, valueLen: 200<<10 + 3, seq: 42, expireAt: 7, epoch: 40}).encodeBody(hdr)
	v := value(200<<10+3, 1)
	const want = 0x72265a9178ea2771
	if got := dataHash(hdr, "model@key", v); got != want {
		t.Fatalf("dataHash = %#x, want %#x", got, want)
	}
	// As the definition reads: xxh3-64 of each part, seeded with the hash of what precedes it
	// (computed here with xxh3's own streaming state).
	sum := xxh3.Hash(hdr[:48])
	for _, part := range [][]byte{[]byte("model@key"), v[:hashPiece], v[hashPiece : 2*hashPiece], v[2*hashPiece : 3*hashPiece], v[3*hashPiece:]} {
		h := xxh3.NewSeed(sum)
		h.Write(part)
		sum = h.Sum64()
	}
	if sum != want {
		t.Fatalf("the chain computed part by part is %#x, want %#x", sum, want)
	}
	// Copied and hashed in one pass (as CPUCopier devices are read and written), whole or a
	// chunk at a time (a DAX device moves 1 MiB at a time), padding included, it is the same,
	// and the copy is exact.
	padded := make([]byte, roundUp64(int64(len(v)), 4096))
	copy(padded, v)
	if ioBufSize%hashPiece != 0 {
		t.Fatalf("ioBufSize %d is not a whole number of checksum pieces (%d): a scan could not verify a value a buffer at a time", ioBufSize, hashPiece)
	}
	for _, chunk := range []int{len(padded), 2 * hashPiece, hashPiece} {
		d := newDigest(hdr, "model@key")
		dst := make([]byte, len(padded))
		move := d.mover(len(v))
		for at := 0; at < len(padded); at += chunk {
			end := min(at+chunk, len(padded))
			move(dst[at:end], padded[at:end])
		}
		if d.sum != want || !bytes.Equal(dst, padded) {
			t.Errorf("copied in chunks of %d: %#x, want %#x; copy exact: %v", chunk, d.sum, want, bytes.Equal(dst, padded))
		}
	}
}

// TestCopyPaths: a large value is hashed as it is copied on a device that copies by CPU
// (MemDevice), and read in one I/O then hashed on a device that does not (the same device
// wrapped in a FaultDevice, which hides CPUCopier). Each reads what the other wrote, at sizes
// around the piece and block boundaries, and Check (a third reader, one I/O buffer at a time)
// passes on both images.
func TestCopyPaths(t *testing.T) {
	// Boundaries of the checksum's pieces and of MemDevice's chunks (memChunk).
	sizes := []int{directMin - 1, directMin, hashPiece - 1, hashPiece, hashPiece + 1, 3*hashPiece + 7,
		memChunk - 1, memChunk, memChunk + hashPiece + 3, 3*memChunk + 5, 8 * memChunk}
	a := newArena(t)
	mod := func(o *Options) { o.RegionSize = 16 << 20 }
	cpu := NewMemDevice(128<<20, 4096, false)
	e := open(t, cpu, a, mod)
	if e.cpu == nil {
		t.Fatal("the engine does not take MemDevice's copy path")
	}
	for i, n := range sizes {
		mustPut(t, e, a, key(i), value(n, i))
	}
	io := NewMemDeviceFrom(cpu.Image(), 4096, false)
	e2 := open(t, NewFaultDevice(io), a, mod)
	if e2.cpu != nil {
		t.Fatal("the engine takes the copy path through a FaultDevice")
	}
	for i, n := range sizes {
		wantValue(t, e2, key(i), value(n, i))
		mustPut(t, e2, a, key(i), value(n, i+100))
	}
	d3 := NewMemDeviceFrom(io.Image(), 4096, false)
	e3 := open(t, d3, a, mod) // seals the regions e2 left open
	for i, n := range sizes {
		wantValue(t, e3, key(i), value(n, i+100))
	}
	for _, img := range [][]byte{cpu.Image(), io.Image()} {
		rep, err := Check(NewMemDeviceFrom(img, 4096, false))
		if err != nil || len(rep.Corruptions) != 0 || rep.Entries < len(sizes) {
			t.Errorf("Check: %v, %d entries, corruptions %v", err, rep.Entries, rep.Corruptions)
		}
	}
	// A byte damaged in the last piece of a value (in a sealed region, so that Open indexes it
	// from the summary without reading it): both paths miss it and count it.
	last := len(sizes) - 1
	loc, _ := e3.lookup(keyHash(key(last)), false)
	for _, wrap := range []bool{false, true} {
		d := NewMemDeviceFrom(d3.Image(), 4096, false)
		d.Corrupt(e3.regionOff(loc.region) + int64(loc.v.off512+uint32(loc.v.hk512))*512 + int64(sizes[last]) - 2)
		var dev Device = d
		if wrap {
			dev = NewFaultDevice(d)
		}
		e4 := open(t, dev, a, mod)
		if got := get(t, e4, key(last)); got != nil {
			t.Errorf("wrapped %v: the damaged value was read back", wrap)
		}
		if e4.EngineStats().ChecksumFailures != 1 {
			t.Errorf("wrapped %v: %d checksum failures counted, want 1", wrap, e4.EngineStats().ChecksumFailures)
		}
	}
}

// TestOldFormat: a log of format version 1 (another entry checksum) is refused by Open and
// Check with ErrOldFormat, and erased by Open with Format.
func TestOldFormat(t *testing.T) {
	a := newArena(t)
	dev := NewMemDevice(16<<20, 4096, false)
	e, err := Open(Options{Device: dev, Arena: a, RegionSize: 1 << 20, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, e, a, key(1), value(100<<10, 1))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	img := dev.Image()
	for _, off := range []int{0, superSlot} {
		sb, err := parseSuper(img[off : off+superSlot])
		if err != nil {
			t.Fatal(err)
		}
		sb.version = 1
		sb.encode(img[off : off+superSlot])
	}
	old := NewMemDeviceFrom(img, 4096, false)
	if _, err := Open(Options{Device: old, Arena: a, Logger: quiet}); !errors.Is(err, ErrOldFormat) {
		t.Fatalf("Open of a version 1 log: %v, want ErrOldFormat", err)
	}
	if _, err := Check(old); !errors.Is(err, ErrOldFormat) {
		t.Fatalf("Check of a version 1 log: %v, want ErrOldFormat", err)
	}
	e = open(t, old, a, func(o *Options) { o.Format = true })
	if e.Len() != 0 {
		t.Fatalf("%d keys after formatting", e.Len())
	}
	mustPut(t, e, a, key(2), value(100<<10, 2))
	wantValue(t, e, key(2), value(100<<10, 2))
}
