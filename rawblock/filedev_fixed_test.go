//go:build linux

package rawblock

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"kvresp/internal/syncbuf"
	"kvresp/internal/uring"
	"kvresp/slab"
)

// roundTrip writes w at off, reads it back into r and compares.
func roundTrip(t testing.TB, d *FileDevice, w, r []byte, off int64, seed int) {
	t.Helper()
	fillBlocks(w, off, seed)
	if err := d.WriteAt(w, off, ClassHot); err != nil {
		t.Fatalf("write %d bytes at %d: %v", len(w), off, err)
	}
	clear(r)
	if err := d.ReadAt(r, off); err != nil {
		t.Fatalf("read %d bytes at %d: %v", len(r), off, err)
	}
	if !bytes.Equal(r, w) {
		t.Fatalf("%d bytes at %d read back differ from those written", len(r), off)
	}
}

// TestFileDeviceFixedRoundTrip mixes large slab buffers (fixed I/O), small ones (plain) and
// interior slices, with fewer slots than mappings so that idle slots are replaced.
func TestFileDeviceFixedRoundTrip(t *testing.T) {
	a := newArena(t)
	d := openFileDev(t, FileOptions{Path: filepath.Join(t.TempDir(), "dev"), Size: 128 << 20, Rings: 2, QueueDepth: 8, FixedSlots: 4, Arena: a})
	sizes := []int{4 << 10, 8 << 10, 20 << 10, 1 << 20, 1<<20 + 4<<10, 3 << 20, 128 << 10, 2 << 20, 5 << 20}
	var wg sync.WaitGroup
	for i, n := range sizes {
		off := int64(i) * (12 << 20)
		w, r := slabBuf(t, a, n), slabBuf(t, a, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 4 {
				roundTrip(t, d, w, r, off, i*10+round)
				if n > 8<<10 {
					// An interior slice of the same mapping: the same slot, if it still has one.
					roundTrip(t, d, w[4096:n-4096], r[4096:n-4096], off+4096, i*10+round+5)
				}
			}
		}()
	}
	wg.Wait()
	st := d.Stats()
	if st.FixedOps == 0 || st.PlainOps == 0 || st.FixedRegistrations == 0 || st.Errors != 0 {
		t.Errorf("stats %+v: want fixed and plain operations, registrations and no error", st)
	}
	t.Logf("fixed ops %d, plain ops %d, registrations %d", st.FixedOps, st.PlainOps, st.FixedRegistrations)
}

// TestFileDeviceFixedAfterUnmap frees registered buffers and allocates other sizes past the
// arena's limit, so that the slab unmaps them (rebalancing) and maps new buffers, often at the
// same address: data must land in the new buffers, not in the pages of the old registration.
func TestFileDeviceFixedAfterUnmap(t *testing.T) {
	a, err := slab.New(slab.Options{Limit: 4 << 20, ValueOffset: slab.DefaultValueOffset})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	d := openFileDev(t, FileOptions{Path: filepath.Join(t.TempDir(), "dev"), Size: 64 << 20, Rings: 1, Arena: a})
	reused := 0
	var prev []byte   // what the previous round wrote
	var prevOff int64 // where
	seen := map[uintptr]bool{}
	for round := range 24 {
		n := 3 << 20
		if round%2 == 1 {
			n = 2 << 20
		}
		alloc := a.Alloc
		if round%4 >= 2 {
			alloc = a.AllocValue // a value mid-page: fixed I/O at an offset into the registration
		}
		b, err := alloc(n) // unmaps the previous round's cached buffer: 2 + 3 MiB > 4 MiB
		if err != nil {
			t.Fatal(err)
		}
		p := b.Bytes()
		base := slab.Addr(p)
		if seen[base] {
			reused++
		}
		seen[base] = true
		d.fixMu.Lock()
		stale := len(d.fixRings)
		d.fixMu.Unlock()
		if stale != 0 {
			t.Fatalf("round %d: %d mappings still registered after the slab unmapped them", round, stale)
		}
		if prev != nil {
			// Read what the last round wrote into the new buffer first.
			k := min(len(p), len(prev))
			clear(p)
			if err := d.ReadAt(p[:k], prevOff); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p[:k], prev[:k]) {
				t.Fatalf("round %d: read into a new buffer at %#x (reused address: %v) differs from what was written", round, base, reused > 0)
			}
		}
		off := int64(round%8) * (8 << 20)
		fillBlocks(p, off, round)
		if err := d.WriteAt(p, off, ClassHot); err != nil {
			t.Fatal(err)
		}
		prev, prevOff = append(prev[:0], p...), off
		b.Release()
	}
	st := d.Stats()
	if st.FixedOps == 0 || st.PlainOps != 0 || st.FixedRegistrations < 24 {
		t.Errorf("stats %+v: want only fixed operations and a registration per buffer", st)
	}
	t.Logf("%d of 24 buffers mapped at an address used before", reused)
	if reused == 0 {
		t.Fatal("no buffer was mapped at an address used before: the stale-slot case was not exercised")
	}
}

// TestFileDeviceFixedOff: without an Arena, or with NoFixedBuffers, all I/O is plain.
func TestFileDeviceFixedOff(t *testing.T) {
	a := newArena(t)
	for name, o := range map[string]FileOptions{
		"no arena":         {},
		"no fixed buffers": {Arena: a, NoFixedBuffers: true},
	} {
		t.Run(name, func(t *testing.T) {
			o.Path, o.Size = filepath.Join(t.TempDir(), "dev"), 16<<20
			d := openFileDev(t, o)
			roundTrip(t, d, slabBuf(t, a, 1<<20), slabBuf(t, a, 1<<20), 4096, 1)
			if st := d.Stats(); st.FixedOps != 0 || st.PlainOps == 0 || st.FixedRegistrations != 0 {
				t.Errorf("stats %+v: want plain operations only", st)
			}
		})
	}
}

// TestFileDeviceFixedFallback: when the kernel refuses to pin (RLIMIT_MEMLOCK without
// CAP_IPC_LOCK), I/O goes on plain and the log says so once.
func TestFileDeviceFixedFallback(t *testing.T) {
	orig := updateBuffers
	t.Cleanup(func() { updateBuffers = orig })
	updateBuffers = func(r *uring.Ring, off int, bufs [][]byte) error {
		if len(bufs) == 1 && bufs[0] == nil {
			return orig(r, off, bufs)
		}
		return unix.ENOMEM
	}
	var logs syncbuf.Buffer
	a := newArena(t)
	d := openFileDev(t, FileOptions{Path: filepath.Join(t.TempDir(), "dev"), Size: 32 << 20, Rings: 2, Arena: a,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := range 6 {
		roundTrip(t, d, slabBuf(t, a, 1<<20), slabBuf(t, a, 1<<20), int64(i)<<20, i)
	}
	if st := d.Stats(); st.FixedOps != 0 || st.PlainOps == 0 || st.Errors != 0 {
		t.Errorf("stats %+v: want plain operations only, no error", st)
	}
	if n := strings.Count(logs.String(), "fixed buffers unavailable"); n != 1 || !strings.Contains(logs.String(), "RLIMIT_MEMLOCK") {
		t.Errorf("log has %d fallback lines, want 1 naming RLIMIT_MEMLOCK:\n%s", n, logs.String())
	}
}
