//go:build linux

package dax

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"kvresp/internal/hashcopy"
	"kvresp/rawblock"
)

// plainPaths are where the plain-file mode is tested: tmpfs and the test's own directory
// (whatever filesystem holds it: neither is DAX here).
func plainPaths(t *testing.T) map[string]string {
	return map[string]string{"shm": shmPath(t), "file": filepath.Join(t.TempDir(), "dax.img")}
}

// TestPlainFile: a file kvresp creates on a filesystem without DAX maps plainly, says so in
// its stats, and holds values through the log engine across a clean restart.
func TestPlainFile(t *testing.T) {
	for name, path := range plainPaths(t) {
		t.Run(name, func(t *testing.T) {
			const size = 32 << 20
			a := newArena(t)
			d := openFileDev(t, Options{Path: path, Size: size})
			st := d.Stats()
			if st.Mode != ModeFile || st.MapSync || st.Flusher != "msync" || st.Size != size {
				t.Fatalf("stats of a plain file: %+v", st)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() != size {
				t.Fatalf("created file: %v, %v", fi, err)
			}
			e := openEngine(t, d, a, false, func(o *rawblock.Options) { o.RegionSize = 4 << 20 })
			sizes := []int{0, 28, BlockSize - 1, BlockSize, 100 << 10, 1 << 20, 3<<20 + 17}
			for i, n := range sizes {
				mustPut(t, e, a, key(i), value(n, i))
				wantValue(t, e, key(i), value(n, i))
			}
			if err := e.Sync(); err != nil {
				t.Fatal(err)
			}
			st = d.Stats()
			if st.Msyncs == 0 || st.MsyncBytes == 0 || st.LinesFlushed != 0 || st.Writes == 0 || st.WriteBytesByClass[rawblock.ClassHot] == 0 {
				t.Fatalf("stats after writes and a sync: %+v", st)
			}
			if err := e.Check(); err != nil {
				t.Fatal(err)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}

			// Reopened at its own size (0), the values are all there.
			e = openEngine(t, openFileDev(t, Options{Path: path}), a, true, nil)
			for i, n := range sizes {
				wantValue(t, e, key(i), value(n, i))
			}
		})
	}
}

// TestRecovery: values put with Options.Sync are in the file as soon as Put returns, so a copy
// of the file taken then, without Close (the process killed), recovers every one of them by
// scanning the open regions.
func TestRecovery(t *testing.T) {
	a := newArena(t)
	path := shmPath(t)
	e := openEngine(t, openFileDev(t, Options{Path: path, Size: 16 << 20}), a, true, func(o *rawblock.Options) { o.Sync = true })
	for i := 0; i < 40; i++ {
		mustPut(t, e, a, key(i), value(i*3001, i))
	}
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	killed := shmPath(t)
	if err := os.WriteFile(killed, img, 0o644); err != nil {
		t.Fatal(err)
	}
	e2 := openEngine(t, openFileDev(t, Options{Path: killed}), a, true, nil)
	if n := e2.EngineStats().Recovered; n != 40 {
		t.Errorf("recovered %d entries, want 40", n)
	}
	for i := 0; i < 40; i++ {
		wantValue(t, e2, key(i), value(i*3001, i))
	}
}

// TestCorruption flips bytes inside stored values in the file: the value reads as a miss and
// the engine counts a checksum failure; the other values are untouched. Damage while the engine
// runs (written through the file, which shares its pages with the mapping), and damage found
// after a restart in a sealed region (listed by its summary: an open region's scan would stop
// at the damage as at a torn tail).
func TestCorruption(t *testing.T) {
	a := newArena(t)
	path := filepath.Join(t.TempDir(), "dax.img")
	e := openEngine(t, openFileDev(t, Options{Path: path, Size: 16 << 20}), a, false, nil)
	vals := make([][]byte, 12)
	for i := range vals {
		vals[i] = value(200<<10, i)
		mustPut(t, e, a, key(i), vals[i])
	}
	damage := func(i int) {
		t.Helper()
		img, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		at := bytes.Index(img, vals[i][1000:1064])
		if at < 0 {
			t.Fatalf("value %d is not in the file", i)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte{^img[at+5000], ^img[at+5001]}, int64(at+5000)); err != nil {
			t.Fatal(err)
		}
	}
	check := func(e *rawblock.Engine, bad int) {
		t.Helper()
		before := e.EngineStats().ChecksumFailures
		if got := get(t, e, key(bad)); got != nil {
			t.Fatalf("damaged value %d read back (%d bytes), want a miss", bad, len(got))
		}
		if e.EngineStats().ChecksumFailures == before {
			t.Errorf("no checksum failure counted for damaged value %d", bad)
		}
		for i := range vals {
			if i != bad && i != 0 && i != 11 {
				wantValue(t, e, key(i), vals[i])
			}
		}
	}
	damage(11) // in the open region
	check(e, 11)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	damage(0) // in the first region, sealed by now
	e = openEngine(t, openFileDev(t, Options{Path: path}), a, false, nil)
	defer e.Close()
	check(e, 0)
}

// TestOpenErrors: what Open refuses, and why.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no path", Options{}, "a path is required"},
		{"odd size", Options{Path: small, Size: 5000}, "multiple of 4096"},
		{"missing", Options{Path: filepath.Join(dir, "nope")}, "does not exist; set a size"},
		{"shrink", Options{Path: small, Size: 4096}, "larger than the size asked"},
		{"read-only size", Options{Path: small, Size: 8192, ReadOnly: true}, "cannot be given with read-only"},
		{"directory", Options{Path: dir}, "neither a regular file"},
		{"not devdax", Options{Path: "/dev/null"}, "does not know as a device-DAX"},
	} {
		_, err := Open(Options{Path: tc.o.Path, Size: tc.o.Size, ReadOnly: tc.o.ReadOnly, Logger: quiet})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Open error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	for _, p := range []string{"/dev/null", small, dir, filepath.Join(dir, "nope")} {
		if IsDevDAX(p) {
			t.Errorf("IsDevDAX(%s) = true", p)
		}
	}
	// A failed Open of a file it created leaves nothing behind.
	if _, err := os.Stat(filepath.Join(dir, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file after a failed open: %v", err)
	}
}

// TestDeviceRules: alignment and range checks, growth, read-only, Trim as a counted hint,
// Close.
func TestDeviceRules(t *testing.T) {
	path := shmPath(t)
	d := openFileDev(t, Options{Path: path, Size: 64 << 10})
	a := newArena(t)
	buf, err := a.Alloc(2 * BlockSize)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Release()
	p := buf.Bytes()
	copy(p, value(len(p), 9))
	for _, tc := range []struct {
		n    int
		off  int64
		want error
	}{
		{BlockSize, 1, rawblock.ErrUnaligned},
		{100, 0, rawblock.ErrUnaligned},
		{BlockSize, -BlockSize, rawblock.ErrUnaligned},
		{2 * BlockSize, 64<<10 - BlockSize, rawblock.ErrOutOfRange},
	} {
		if err := d.WriteAt(p[:tc.n], tc.off, rawblock.ClassHot); !errors.Is(err, tc.want) {
			t.Errorf("write of %d at %d: %v, want %v", tc.n, tc.off, err, tc.want)
		}
		if err := d.ReadAt(p[:tc.n], tc.off); !errors.Is(err, tc.want) {
			t.Errorf("read of %d at %d: %v, want %v", tc.n, tc.off, err, tc.want)
		}
	}
	if err := d.WriteAt(p, 8*BlockSize, rawblock.ClassCold); err != nil {
		t.Fatal(err)
	}
	if err := d.Trim(8*BlockSize, 2*BlockSize); err != nil {
		t.Fatal(err)
	}
	if err := d.Trim(1, BlockSize); !errors.Is(err, rawblock.ErrUnaligned) {
		t.Errorf("unaligned trim: %v", err)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	st := d.Stats()
	if st.TrimsSkipped != 1 || st.TrimBytes != 2*BlockSize || st.WriteBytesByClass[rawblock.ClassCold] != 2*BlockSize || st.Errors != 9 {
		t.Errorf("stats: %+v", st)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.ReadAt(p, 0); !errors.Is(err, rawblock.ErrDeviceClosed) {
		t.Errorf("read after close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}

	// Grown to a larger size, the old bytes stay; read-only, they read and nothing writes.
	d = openFileDev(t, Options{Path: path, Size: 128 << 10})
	if d.Size() != 128<<10 {
		t.Fatalf("grown size %d", d.Size())
	}
	d.Close()
	ro := openFileDev(t, Options{Path: path, ReadOnly: true})
	got := make([]byte, 2*BlockSize)
	if err := ro.ReadAt(got, 8*BlockSize); err != nil || !bytes.Equal(got, value(len(p), 9)) {
		t.Fatalf("read-only read: %v (equal %v)", err, bytes.Equal(got, value(len(p), 9)))
	}
	for name, err := range map[string]error{
		"write": ro.WriteAt(got, 0, rawblock.ClassHot), "trim": ro.Trim(0, BlockSize), "flush": ro.Flush(),
	} {
		if !errors.Is(err, ErrReadOnly) || !errors.Is(err, unix.EBADF) {
			t.Errorf("read-only %s: %v", name, err)
		}
	}
}

// TestFault: a file truncated underneath the mapping faults on access; the read and the write
// fail with ErrFault and the process lives on.
func TestFault(t *testing.T) {
	path := shmPath(t)
	d := openFileDev(t, Options{Path: path, Size: 64 << 10})
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	p := newTestMapping(t, BlockSize)
	if err := d.ReadAt(p, 4*BlockSize); !errors.Is(err, ErrFault) {
		t.Errorf("read of a truncated file: %v, want ErrFault", err)
	}
	if err := d.WriteAt(p, 4*BlockSize, rawblock.ClassHot); !errors.Is(err, ErrFault) {
		t.Errorf("write of a truncated file: %v, want ErrFault", err)
	}
	if st := d.Stats(); st.Faults != 2 {
		t.Errorf("faults counted: %d, want 2", st.Faults)
	}
}

// TestLinesOnPlainFile: the cache-line path (forced onto a plain mapping, as the benchmarks do)
// writes every line either with non-temporal stores or written back, fences, and reads back
// what it wrote.
func TestLinesOnPlainFile(t *testing.T) {
	a := newArena(t)
	d := openFileDev(t, Options{Path: shmPath(t), Size: 32 << 20, forceLines: true})
	e := openEngine(t, d, a, true, func(o *rawblock.Options) { o.Sync, o.RegionSize = true, 4<<20 })
	v := value(300<<10, 5)
	mustPut(t, e, a, key(1), v)
	wantValue(t, e, key(1), v)
	// A value the device writes in several chunks (flushChunk), each hashed from its offset.
	big := value(3<<20+17, 6)
	mustPut(t, e, a, key(2), big)
	wantValue(t, e, key(2), big)
	st := d.Stats()
	if st.LinesFlushed+st.LinesStreamed != uint64(st.WriteBytes/cacheLine) || st.Msyncs != 0 || st.Flusher == "msync" {
		t.Errorf("stats: %+v", st)
	}
	if hashcopy.NonTemporal(d.mem[:cacheLine], d.mem[:cacheLine]) && st.LinesStreamed == 0 {
		t.Errorf("this CPU stores non-temporally, but no line was streamed: %+v", st)
	}
}
