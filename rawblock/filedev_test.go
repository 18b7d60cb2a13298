//go:build linux

package rawblock

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"kvresp/slab"
)

// openFileDev opens a FileDevice for a test (closed at cleanup). A kernel without io_uring
// skips the test, except in CI.
func openFileDev(t testing.TB, o FileOptions) *FileDevice {
	// The tests exercise trimming, which is off on regular files by default.
	if o.Trim == TrimAuto {
		o.Trim = TrimOn
	}
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	d, err := OpenFile(o)
	if (errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM)) && os.Getenv("CI") == "" {
		t.Skipf("io_uring unavailable: %v", err)
	}
	if err != nil {
		t.Fatalf("OpenFile(%+v): %v", o, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// pattern is 1 MiB of noise that test buffers are filled from, block by block.
var pattern = value(1<<20, 99)

// fillBlocks fills p, meant for device offset off, with blocks that depend on seed and on
// their device offset, so that a block read from the wrong place or left unwritten shows.
func fillBlocks(p []byte, off int64, seed int) {
	for b := 0; b < len(p); b += 4096 {
		src := ((seed*131 + b/4096) % 255) * 4096
		copy(p[b:b+4096], pattern[src:src+4096])
		binary.LittleEndian.PutUint64(p[b:], uint64(off)+uint64(b))
		binary.LittleEndian.PutUint64(p[b+8:], uint64(seed))
	}
}

func slabBuf(t testing.TB, a *slab.Arena, n int) []byte {
	t.Helper()
	b, err := a.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Release)
	return b.Bytes()
}

func stBlocks(t testing.TB, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func TestFileDeviceRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev")
	d := openFileDev(t, FileOptions{Path: path, Size: 160 << 20, Rings: 2, QueueDepth: 8})
	if d.BlockSize() != 4096 || d.Size() != 160<<20 || d.IsBlockDevice() {
		t.Fatalf("block size %d, size %d, block device %v", d.BlockSize(), d.Size(), d.IsBlockDevice())
	}
	a := newArena(t)
	// Each goroutine owns a 10 MiB slice of the device, except the 33 MiB one at the end.
	sizes := []int{4 << 10, 8 << 10, 60 << 10, 1 << 20, 1<<20 + 4<<10, 3 << 20, 4<<20 - 4<<10, 7<<20 + 12<<10, 128 << 10, 2 << 20, 33 << 20}
	var wg sync.WaitGroup
	var classBytes [numClasses]int64
	for i, n := range sizes {
		off := int64(i)*(10<<20) + int64(i%5)*12288
		c := Class(i % int(numClasses))
		classBytes[c] += int64(2 * n)
		w, r := slabBuf(t, a, n), slabBuf(t, a, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 2 {
				fillBlocks(w, off, i*10+round)
				if err := d.WriteAt(w, off, c); err != nil {
					t.Errorf("write %d bytes at %d: %v", n, off, err)
					return
				}
				clear(r)
				if err := d.ReadAt(r, off); err != nil {
					t.Errorf("read %d bytes at %d: %v", n, off, err)
					return
				}
				if !bytes.Equal(r, w) {
					t.Errorf("%d bytes at %d read back differ from those written", n, off)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	st := d.Stats()
	var total int64
	for _, n := range sizes {
		total += int64(2 * n)
	}
	if st.Writes != uint64(2*len(sizes)) || st.Reads != uint64(2*len(sizes)) || st.WriteBytes != total || st.ReadBytes != total || st.Flushes != 1 || st.Errors != 0 {
		t.Errorf("stats %+v; want %d reads and writes of %d bytes, 1 flush, no error", st, 2*len(sizes), total)
	}
	if st.WriteBytesByClass != classBytes {
		t.Errorf("bytes by class %v, want %v", st.WriteBytesByClass, classBytes)
	}
	// A 33 MiB call is 33 operations of 1 MiB: its ring fills all 8 slots at once.
	if st.MaxQueueDepth < 8 || st.MaxQueueDepth > 16 || st.QueueDepth != 0 {
		t.Errorf("queue depth now %d, max %d; want 0 and 8..16", st.QueueDepth, st.MaxQueueDepth)
	}
}

func TestFileDeviceAlignment(t *testing.T) {
	d := openFileDev(t, FileOptions{Path: filepath.Join(t.TempDir(), "dev"), Size: 1 << 20, Rings: 1})
	a := newArena(t)
	buf := slabBuf(t, a, 64<<10)
	// The memory alignment is the filesystem's (statx), at most a page; an address that meets
	// it but not the block size is fine.
	m := d.MemAlign()
	if m < 1 || m > 4096 || m&(m-1) != 0 {
		t.Fatalf("memory alignment %d with %d-byte blocks", m, d.BlockSize())
	}
	if m < d.BlockSize() {
		if err := d.WriteAt(buf[m:m+4096], 0, ClassHot); err != nil {
			t.Errorf("write from a %d-aligned address: %v", m, err)
		}
		if err := d.ReadAt(buf[m:m+4096], 0); err != nil {
			t.Errorf("read into a %d-aligned address: %v", m, err)
		}
	}
	for _, c := range []struct {
		name string
		p    []byte
		off  int64
		want error
	}{
		{"offset", buf[:4096], 512, ErrUnaligned},
		{"negative offset", buf[:4096], -4096, ErrUnaligned},
		{"length", buf[:4096+512], 0, ErrUnaligned},
		{"address", buf[m/2 : m/2+4096], 0, ErrUnaligned},
		{"past the end", buf[:8192], 1<<20 - 4096, ErrOutOfRange},
	} {
		if err := d.ReadAt(c.p, c.off); !errors.Is(err, c.want) {
			t.Errorf("%s: ReadAt = %v, want %v", c.name, err, c.want)
		}
		if err := d.WriteAt(c.p, c.off, ClassHot); !errors.Is(err, c.want) {
			t.Errorf("%s: WriteAt = %v, want %v", c.name, err, c.want)
		}
	}
	if err := d.WriteAt(buf[:4096], 0, numClasses); err == nil {
		t.Error("a write with an unknown class succeeded")
	}
	for _, r := range [][2]int64{{512, 4096}, {0, 100}, {-4096, 4096}, {0, 2 << 20}} {
		if err := d.Trim(r[0], r[1]); !errors.Is(err, ErrUnaligned) {
			t.Errorf("Trim(%d, %d) = %v, want ErrUnaligned", r[0], r[1], err)
		}
	}
	if err := d.ReadAt(nil, 0); err != nil {
		t.Errorf("empty read: %v", err)
	}
	if got := d.Stats().Errors; got != 5*2+1+4 {
		t.Errorf("%d errors counted, want %d", got, 5*2+1+4)
	}
}

func TestFileDeviceTrimAndSparse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev")
	d := openFileDev(t, FileOptions{Path: path, Size: 1 << 30, Rings: 1})
	if fi, err := os.Stat(path); err != nil || fi.Size() != 1<<30 {
		t.Fatalf("file size %v, %v; want 1 GiB", fi, err)
	}
	if used := stBlocks(t, path); used > 64<<10 {
		t.Fatalf("a new 1 GiB device file uses %d bytes of disk; it must be sparse", used)
	}
	a := newArena(t)
	w, r := slabBuf(t, a, 1<<20), slabBuf(t, a, 1<<20)
	fillBlocks(w, 4<<20, 1)
	if err := d.WriteAt(w, 4<<20, ClassHot); err != nil {
		t.Fatal(err)
	}
	if used := stBlocks(t, path); used < 1<<20 || used > 2<<20 {
		t.Fatalf("after a 1 MiB write the file uses %d bytes of disk", used)
	}
	if err := d.Trim(4<<20+256<<10, 512<<10); err != nil {
		t.Fatal(err)
	}
	if err := d.ReadAt(r, 4<<20); err != nil {
		t.Fatal(err)
	}
	want := append([]byte{}, w...)
	clear(want[256<<10 : 768<<10])
	if !bytes.Equal(r, want) {
		t.Fatal("after Trim the range does not read back as zeroes, or its neighbours changed")
	}
	if used := stBlocks(t, path); used > 1<<20-256<<10 {
		t.Errorf("after punching 512 KiB the file uses %d bytes of disk", used)
	}
	if err := d.Trim(0, d.Size()); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Trims != 2 || st.TrimBytes != 512<<10+1<<30 || st.Flushes != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestFileDeviceReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev")
	a := newArena(t)
	w, r := slabBuf(t, a, 3<<20), slabBuf(t, a, 3<<20)
	fillBlocks(w, 5<<20, 7)
	d, err := OpenFile(FileOptions{Path: path, Size: 16 << 20, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteAt(w, 5<<20, ClassCold); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// The existing size (Size 0), or a larger one (the file grows), keep the data.
	for _, size := range []int64{0, 16 << 20, 32 << 20} {
		d := openFileDev(t, FileOptions{Path: path, Size: size, Rings: 1})
		if want := max(size, 16<<20); d.Size() != want {
			t.Errorf("Size %d: device size %d, want %d", size, d.Size(), want)
		}
		clear(r)
		if err := d.ReadAt(r, 5<<20); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r, w) {
			t.Fatalf("Size %d: the data written before reopening differs", size)
		}
	}
	for _, c := range []struct {
		o    FileOptions
		want string
	}{
		{FileOptions{Path: path, Size: 8 << 20}, "larger than the size asked"},
		{FileOptions{Path: path + ".missing"}, "does not exist"},
		{FileOptions{Path: "/dev/null"}, "/dev/null is a character device but not an NVMe namespace device"},
		{FileOptions{Path: t.TempDir()}, "neither a regular file, a block device nor an NVMe namespace device"},
		{FileOptions{Path: path, Size: 64 << 20, ReadOnly: true}, "read-only"},
	} {
		c.o.Logger = quiet
		if d, err := OpenFile(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("OpenFile(%+v) = %v; want an error saying %q", c.o, err, c.want)
			if d != nil {
				d.Close()
			}
		}
	}
	if _, err := os.Stat(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed open left a file behind: %v", err)
	}
}

func TestFileDeviceErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev")
	a := newArena(t)
	buf := slabBuf(t, a, 1<<20)
	rw := openFileDev(t, FileOptions{Path: path, Size: 4 << 20, Rings: 1})
	fillBlocks(buf, 0, 1)
	if err := rw.WriteAt(buf, 0, ClassHot); err != nil {
		t.Fatal(err)
	}

	ro := openFileDev(t, FileOptions{Path: path, ReadOnly: true, Rings: 1})
	if err := ro.ReadAt(buf, 0); err != nil {
		t.Fatalf("read of a read-only device: %v", err)
	}
	if err := ro.WriteAt(buf, 0, ClassHot); !errors.Is(err, syscall.EBADF) {
		t.Errorf("write to a read-only device = %v, want EBADF", err)
	}
	if err := ro.Trim(0, 4096); !errors.Is(err, syscall.EBADF) {
		t.Errorf("trim of a read-only device = %v, want EBADF", err)
	}

	// The file shrinks behind the device's back: a read across its new end is short, the rest
	// is asked for again, and the kernel's 0 turns into an error; a read past it fails too.
	if err := unix.Truncate(path, 512<<10); err != nil {
		t.Fatal(err)
	}
	before := rw.Stats().Retries
	if err := rw.ReadAt(buf, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read across the end of a truncated file = %v, want io.ErrUnexpectedEOF", err)
	}
	if rw.Stats().Retries == before {
		t.Error("the short read was not resubmitted")
	}
	if err := rw.ReadAt(buf[:4096], 2<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read past the end of a truncated file = %v, want io.ErrUnexpectedEOF", err)
	}

	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"ReadAt":  rw.ReadAt(buf, 0),
		"WriteAt": rw.WriteAt(buf, 0, ClassHot),
		"Trim":    rw.Trim(0, 4096),
		"Flush":   rw.Flush(),
	} {
		if !errors.Is(err, ErrDeviceClosed) {
			t.Errorf("%s after Close = %v, want ErrDeviceClosed", name, err)
		}
	}
}

// TestFileDeviceCloseRace closes the device while calls are in flight: each call either
// completes or fails with ErrDeviceClosed, and Close waits for the ones handed out.
func TestFileDeviceCloseRace(t *testing.T) {
	d := openFileDev(t, FileOptions{Path: filepath.Join(t.TempDir(), "dev"), Size: 8 << 20, QueueDepth: 4})
	a := newArena(t)
	var wg sync.WaitGroup
	var ok, closed atomic.Int64
	for i := range 8 {
		buf := slabBuf(t, a, 1<<20)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := d.WriteAt(buf, int64(i)<<20, ClassHot)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrDeviceClosed):
					closed.Add(1)
					return
				default:
					t.Errorf("write: %v", err)
					return
				}
			}
		}()
	}
	for ok.Load() < 8 {
		runtime.Gosched()
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if closed.Load() != 8 {
		t.Errorf("%d writers saw ErrDeviceClosed, want 8", closed.Load())
	}
}

func TestFileDeviceEngine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev")
	a := newArena(t)
	openEngine := func() *Engine {
		// Small chunks, so that values span several operations.
		d := openFileDev(t, FileOptions{Path: path, Size: 24 << 20, ChunkSize: 64 << 10, QueueDepth: 4})
		e, err := Open(Options{Device: d, Arena: a, RegionSize: 2 << 20, FlushInterval: -1, Logger: quiet, IOBuffers: 8})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := openEngine()
	want := map[string][]byte{}
	for i := range 40 {
		v := value([]int{28, 5000, 70 << 10, 300<<10 + 17}[i%4], i)
		mustPut(t, e, a, key(i), v)
		want[key(i)] = v
	}
	for i := 0; i < 40; i += 9 {
		if _, err := e.Delete(key(i)); err != nil {
			t.Fatal(err)
		}
		delete(want, key(i))
	}
	for k, v := range want {
		wantValue(t, e, k, v)
	}
	if err := e.Check(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openEngine()
	defer e.Close()
	if e.Len() != len(want) {
		t.Fatalf("Len after restart %d, want %d", e.Len(), len(want))
	}
	for i := range 40 {
		if v, ok := want[key(i)]; ok {
			wantValue(t, e, key(i), v)
		} else if get(t, e, key(i)) != nil {
			t.Fatalf("deleted key %d came back", i)
		}
	}
	if err := e.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestFileOptionsValidate(t *testing.T) {
	err := FileOptions{Size: 1000, Rings: -1, QueueDepth: 1 << 20, ChunkSize: 5000}.Validate()
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, s := range []string{"path is required", "device size 1000", "-1 rings", "queue depth 1048576", "chunk size 5000"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Validate error %q does not mention %q", err, s)
		}
	}
	if err := (FileOptions{Path: "x"}).Validate(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}

// TestFileDeviceBlockDevice runs on a scratch block device named by KVRESP_TEST_BLOCKDEV (its
// contents are destroyed), for example a loop device:
//
//	truncate -s 64M /tmp/img && KVRESP_TEST_BLOCKDEV=$(losetup -f --show /tmp/img) go test -run BlockDevice ./rawblock/
func TestFileDeviceBlockDevice(t *testing.T) {
	path := os.Getenv("KVRESP_TEST_BLOCKDEV")
	if path == "" {
		t.Skip("KVRESP_TEST_BLOCKDEV not set")
	}
	d := openFileDev(t, FileOptions{Path: path})
	size, err := unix.IoctlGetUint64(d.fd, unix.BLKGETSIZE64)
	if err != nil {
		t.Fatal(err)
	}
	if !d.IsBlockDevice() || d.Size() != int64(size)-int64(size)%int64(d.BlockSize()) {
		t.Fatalf("block device %v, size %d (BLKGETSIZE64 %d), block size %d", d.IsBlockDevice(), d.Size(), size, d.BlockSize())
	}
	t.Logf("%s: %d bytes, %d-byte blocks", path, d.Size(), d.BlockSize())
	a := newArena(t)
	n := min(int(d.Size()/2), 5<<20)
	w, r := slabBuf(t, a, n), slabBuf(t, a, n)
	fillBlocks(w, int64(d.BlockSize()), 3)
	if err := d.WriteAt(w, int64(d.BlockSize()), ClassMeta); err != nil {
		t.Fatal(err)
	}
	if err := d.ReadAt(r, int64(d.BlockSize())); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r, w) {
		t.Fatal("data read back differs")
	}
	if err := d.Trim(0, d.Size()); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(FileOptions{Path: path, Size: d.Size() + 1<<20, Logger: quiet}); err == nil {
		t.Error("a size larger than the block device was accepted")
	}
	t.Logf("stats %+v", d.Stats())
}

// By default a regular file's trims are skipped (and counted): punching holes
// costs the next writes of the region more than it saves.
func TestFileDeviceTrimAutoSkipsFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev")
	d, err := OpenFile(FileOptions{Path: path, Size: 16 << 20, Rings: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Trim(0, 1<<20); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.TrimsSkipped != 1 || st.Trims != 0 {
		t.Fatalf("stats %+v: want one skipped trim", st)
	}
}

// TestOpLen: a passthrough command on a value placed mid-page is a page shorter than the chunk,
// so that it touches no more pages than one on a page-aligned buffer (the kernel maps it whole
// into one bio); direct I/O keeps whole chunks.
func TestOpLen(t *testing.T) {
	a := newArena(t)
	v, err := a.AllocValue(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	p := slabBuf(t, a, 4<<20)
	pages := func(b []byte, n int) int { return int((slab.Addr(b)%4096 + uintptr(n) + 4095) / 4096) }
	for _, passthrough := range []bool{false, true} {
		d := &FileDevice{chunk: 1 << 20}
		if passthrough {
			d.nvme = &nvmeDev{}
		}
		for _, b := range [][]byte{p, v.Bytes()} {
			n := d.opLen(b)
			want := 1 << 20
			if passthrough && slab.Addr(b)%4096 != 0 {
				want -= 4096
			}
			if n != want {
				t.Errorf("passthrough %v, buffer at page offset %d: operations of %d bytes, want %d", passthrough, slab.Addr(b)%4096, n, want)
			}
			// Every chunk of the value starts at the same page offset and spans at most 256 pages.
			for pos := 0; passthrough && pos < len(b); pos += n {
				if k := pages(b[pos:], min(n, len(b)-pos)); k > 256 {
					t.Errorf("a command at %d of a buffer at page offset %d spans %d pages", pos, slab.Addr(b)%4096, k)
				}
			}
		}
	}
}
