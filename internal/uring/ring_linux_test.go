//go:build linux

package uring

import (
	"bytes"
	"errors"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestKernelStructSizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"io_uring_params", unsafe.Sizeof(ioUringParams{}), 120},
		{"io_uring_params.sq_off", unsafe.Offsetof(ioUringParams{}.sqOff), 40},
		{"io_uring_params.cq_off", unsafe.Offsetof(ioUringParams{}.cqOff), 80},
		{"io_uring_cqe", unsafe.Sizeof(cqe16{}), 16},
		{"io_uring_cqe (CQE32)", unsafe.Sizeof(cqe32{}), 32},
		{"io_uring_getevents_arg", unsafe.Sizeof(geteventsArg{}), 24},
		{"io_uring_getevents_arg.ts", unsafe.Offsetof(geteventsArg{}.ts), 16},
		{"io_uring_probe_op", unsafe.Sizeof(probeOp{}), 8},
		{"__kernel_timespec", unsafe.Sizeof(kernelTimespec{}), 16},
		{"io_uring_rsrc_register", unsafe.Sizeof(rsrcRegister{}), 32},
		{"io_uring_rsrc_register.data", unsafe.Offsetof(rsrcRegister{}.data), 16},
		{"io_uring_rsrc_update2", unsafe.Sizeof(rsrcUpdate2{}), 32},
		{"io_uring_rsrc_update2.data", unsafe.Offsetof(rsrcUpdate2{}.data), 8},
		{"io_uring_rsrc_update2.nr", unsafe.Offsetof(rsrcUpdate2{}.nr), 24},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestNop(t *testing.T) {
	r := newRing(t, Params{Entries: 8})
	if r.SQEntries() != 8 || r.CQEntries() != 16 {
		t.Errorf("SQ %d CQ %d entries, want 8 and 16", r.SQEntries(), r.CQEntries())
	}
	s := r.GetSQE()
	s.PrepNop()
	s.SetUserData(42)
	if n, err := r.Submit(); n != 1 || err != nil {
		t.Fatalf("Submit = %d, %v; want 1, nil", n, err)
	}
	c, err := r.WaitCQE()
	if err != nil {
		t.Fatal(err)
	}
	if c.UserData != 42 || c.Res != 0 || c.Err() != nil {
		t.Fatalf("NOP completion %+v", c)
	}
	if r.CQReady() != 1 {
		t.Fatalf("CQReady %d before CQESeen, want 1", r.CQReady())
	}
	r.CQESeen()
	if _, ok := r.PeekCQE(); ok || r.CQReady() != 0 {
		t.Fatal("completion still there after CQESeen")
	}
}

func TestReadWriteDirect(t *testing.T) {
	r := newRing(t, Params{Entries: 4})
	fd := directFile(t, 64<<10, nil)
	w, rd := alignedBuf(t, 16<<10), alignedBuf(t, 16<<10)
	for i := range w {
		w[i] = byte(i * 13)
	}
	mustRes(t, r, int32(len(w)), func(s *SQE) { s.PrepWrite(int32(fd), w, 8192) })
	mustRes(t, r, int32(len(rd)), func(s *SQE) { s.PrepRead(int32(fd), rd, 8192) })
	if !bytes.Equal(w, rd) {
		t.Fatal("read back differs from what was written")
	}
	// A read past the end of the file is short, not an error.
	mustRes(t, r, 4096, func(s *SQE) { s.PrepRead(int32(fd), rd, 60<<10) })
}

func TestFixedBuffers(t *testing.T) {
	r := newRing(t, Params{Entries: 4})
	fd := directFile(t, 64<<10, nil)
	bufs := [][]byte{alignedBuf(t, 32<<10), alignedBuf(t, 16<<10)}
	if err := r.RegisterBuffers(bufs); err != nil {
		t.Fatal(err)
	}
	w := bufs[0][8192 : 8192+16<<10] // a slice inside registered buffer 0
	for i := range w {
		w[i] = byte(i*31 + 5)
	}
	mustRes(t, r, int32(len(w)), func(s *SQE) { s.PrepWriteFixed(int32(fd), w, 4096, 0) })
	mustRes(t, r, int32(len(bufs[1])), func(s *SQE) { s.PrepReadFixed(int32(fd), bufs[1], 4096, 1) })
	if !bytes.Equal(w, bufs[1]) {
		t.Fatal("fixed read back differs from fixed write")
	}
	// A buffer outside the registered range is refused, and so is any after unregistering.
	c := run(t, r, func(s *SQE) { s.PrepReadFixed(int32(fd), bufs[0], 0, 1) })
	if !errors.As(c.Err(), new(syscall.Errno)) {
		t.Fatalf("READ_FIXED outside buffer 1: res %d, want an errno", c.Res)
	}
	if err := r.UnregisterBuffers(); err != nil {
		t.Fatal(err)
	}
	c = run(t, r, func(s *SQE) { s.PrepReadFixed(int32(fd), bufs[1], 0, 1) })
	if !errors.As(c.Err(), new(syscall.Errno)) {
		t.Fatalf("READ_FIXED after UnregisterBuffers: res %d, want an errno", c.Res)
	}
}

func TestReadvWritev(t *testing.T) {
	r := newRing(t, Params{Entries: 4})
	fd := directFile(t, 64<<10, nil)
	mem := alignedBuf(t, 48<<10)
	w := [][]byte{mem[0:4096], mem[4096 : 3*4096], mem[3*4096 : 4*4096]}
	rd := [][]byte{mem[16<<10 : 16<<10+8192], mem[32<<10 : 32<<10+8192]}
	for i := range mem[:4*4096] {
		mem[i] = byte(i*3 + 1)
	}
	iovecs := func(bufs [][]byte) []unix.Iovec {
		v := make([]unix.Iovec, len(bufs))
		for i, b := range bufs {
			v[i].Base = &b[0]
			v[i].SetLen(len(b))
		}
		return v
	}
	// The iovec arrays live on the Go heap here, so they are pinned while the kernel owns them
	// (the buffers themselves are mmap'd).
	var pin runtime.Pinner
	defer pin.Unpin()
	wv, rv := iovecs(w), iovecs(rd)
	pin.Pin(&wv[0])
	pin.Pin(&rv[0])
	mustRes(t, r, 4*4096, func(s *SQE) { s.PrepWritev(int32(fd), wv, 4096) })
	mustRes(t, r, 4*4096, func(s *SQE) { s.PrepReadv(int32(fd), rv, 4096) })
	if got, want := append(append([]byte{}, rd[0]...), rd[1]...), mem[:4*4096]; !bytes.Equal(got, want) {
		t.Fatal("READV differs from WRITEV")
	}
}

func TestFsync(t *testing.T) {
	r := newRing(t, Params{Entries: 4})
	fd := directFile(t, 16<<10, blockPattern)
	mustRes(t, r, 0, func(s *SQE) { s.PrepFsync(int32(fd), 0) })
	mustRes(t, r, 0, func(s *SQE) { s.PrepFsync(int32(fd), FsyncDatasync) })
}

func TestFallocate(t *testing.T) {
	r := newRing(t, Params{Entries: 4})
	fd := directFile(t, 0, nil)
	const size = 64 << 10
	mustRes(t, r, 0, func(s *SQE) { s.PrepFallocate(int32(fd), 0, 0, size) })
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != size {
		t.Fatalf("size after fallocate %d, want %d", st.Size, size)
	}
	buf := alignedBuf(t, 3*4096)
	for i := 0; i < 3; i++ {
		fill(buf[i*4096:(i+1)*4096], blockPattern(i))
	}
	mustRes(t, r, 3*4096, func(s *SQE) { s.PrepWrite(int32(fd), buf, 0) })
	mustRes(t, r, 0, func(s *SQE) {
		s.PrepFallocate(int32(fd), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 4096, 4096)
	})
	clear(buf)
	mustRes(t, r, 3*4096, func(s *SQE) { s.PrepRead(int32(fd), buf, 0) })
	checkBlocks(t, buf[:4096], 0)
	if !bytes.Equal(buf[4096:8192], make([]byte, 4096)) {
		t.Fatal("punched hole does not read back as zeroes")
	}
	checkBlocks(t, buf[8192:], 2)
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != size {
		t.Fatalf("size after PUNCH_HOLE|KEEP_SIZE %d, want %d", st.Size, size)
	}
}

func TestFixedFiles(t *testing.T) {
	r := newRing(t, Params{Entries: 4})
	fd := directFile(t, 32<<10, blockPattern)
	dup, err := unix.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterFiles([]int{-1, dup}); err != nil {
		t.Fatal(err)
	}
	// The ring holds its own reference: the registered file outlives the descriptor.
	if err := unix.Close(dup); err != nil {
		t.Fatal(err)
	}
	buf := alignedBuf(t, 8192)
	mustRes(t, r, 8192, func(s *SQE) {
		s.PrepRead(1, buf, 4096)
		s.SetFlags(IOSQEFixedFile)
	})
	checkBlocks(t, buf, 1)
	c := run(t, r, func(s *SQE) {
		s.PrepRead(0, buf, 0) // slot 0 is empty
		s.SetFlags(IOSQEFixedFile)
	})
	if !errors.Is(c.Err(), syscall.EBADF) {
		t.Fatalf("read through an empty fixed-file slot: %v, want EBADF", c.Err())
	}
	if err := r.UnregisterFiles(); err != nil {
		t.Fatal(err)
	}
}

func TestBigRing(t *testing.T) {
	r := newRing(t, Params{Entries: 4, SQE128: true, CQE32: true})
	if r.SetupFlags()&(SetupSQE128|SetupCQE32) != SetupSQE128|SetupCQE32 {
		t.Fatalf("setup flags %#x lack SQE128|CQE32", r.SetupFlags())
	}
	fd := directFile(t, 32<<10, blockPattern)
	buf := alignedBuf(t, 16<<10)
	// Consecutive SQEs are 128 bytes apart, and the command area is the 80 bytes from 48.
	a, b := r.GetSQE(), r.GetSQE()
	if d := uintptr(unsafe.Pointer(b)) - uintptr(unsafe.Pointer(a)); d != 128 {
		t.Fatalf("SQEs %d bytes apart, want 128", d)
	}
	if d := uintptr(unsafe.Pointer(r.Cmd(a))) - uintptr(unsafe.Pointer(a)); d != 48 {
		t.Fatalf("command area at offset %d, want 48", d)
	}
	a.PrepNop()
	a.SetUserData(1)
	b.PrepRead(int32(fd), buf, 8192)
	b.SetUserData(2)
	if _, err := r.SubmitAndWait(2); err != nil {
		t.Fatal(err)
	}
	var cqes [4]CQE
	n := r.PeekBatchCQE(cqes[:])
	if n != 2 {
		t.Fatalf("%d completions ready, want 2", n)
	}
	r.CQAdvance(uint32(n))
	for _, c := range cqes[:n] {
		want := map[uint64]int32{1: 0, 2: int32(len(buf))}[c.UserData]
		if c.Res != want || c.Big != [2]uint64{} {
			t.Errorf("completion %+v, want res %d and zero extra words", c, want)
		}
	}
	checkBlocks(t, buf, 2)

	// Since Linux 6.18 a NOP with IORING_NOP_CQE32 (nop_flags 1<<5) posts sqe->off and
	// sqe->addr as the CQE's two extra words: a check that Big reads CQE bytes 16..31.
	const nopCQE32 = 1 << 5
	c := run(t, r, func(s *SQE) {
		s.PrepNop()
		s.SetRWFlags(nopCQE32)
		s.off, s.addr = 0x1122334455667788, 0x99aabbccddeeff00
	})
	switch {
	case errors.Is(c.Err(), syscall.EINVAL):
		t.Log("kernel lacks IORING_NOP_CQE32; extra CQE words not checked")
	case c.Res != 0 || c.Big != [2]uint64{0x1122334455667788, 0x99aabbccddeeff00}:
		t.Fatalf("NOP_CQE32 completion %+v", c)
	}
}

func TestCmdNeedsSQE128(t *testing.T) {
	r := newRing(t, Params{Entries: 2})
	defer func() {
		if recover() == nil {
			t.Fatal("Cmd on a 64-byte ring did not panic")
		}
	}()
	r.Cmd(r.GetSQE())
}

func TestErrnos(t *testing.T) {
	r := newRing(t, Params{Entries: 4})
	fd := directFile(t, 32<<10, blockPattern)
	buf := alignedBuf(t, 8192)

	closed, err := unix.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Close(closed); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		prep func(*SQE)
		want syscall.Errno
	}{
		{"read on a closed fd", func(s *SQE) { s.PrepRead(int32(closed), buf[:4096], 0) }, syscall.EBADF},
		{"O_DIRECT read into a misaligned buffer", func(s *SQE) { s.PrepRead(int32(fd), buf[1:4097], 0) }, syscall.EINVAL},
		{"O_DIRECT read at a misaligned offset", func(s *SQE) { s.PrepRead(int32(fd), buf[:4096], 1) }, syscall.EINVAL},
		{"fsync on a closed fd", func(s *SQE) { s.PrepFsync(int32(closed), 0) }, syscall.EBADF},
	} {
		t.Run(c.name, func(t *testing.T) {
			cqe := run(t, r, c.prep)
			var errno syscall.Errno
			if !errors.As(cqe.Err(), &errno) || errno != c.want {
				t.Fatalf("res %d, err %v; want %v", cqe.Res, cqe.Err(), c.want)
			}
		})
	}
}

// TestSQEReuseAfterCmd checks that GetSQE clears all 128 bytes: a URING_CMD with a command area
// full of 0xff goes through the only slot of the ring, then a NOP and a read use that slot.
// Kernels from 6.14 read attr_type_mask at offset 56 for reads, so junk there fails a read
// with -EINVAL.
func TestSQEReuseAfterCmd(t *testing.T) {
	r := newRing(t, Params{Entries: 1, SQE128: true, CQE32: true})
	fd := directFile(t, 16<<10, blockPattern)
	buf := alignedBuf(t, 4096)

	s := r.GetSQE()
	s.PrepURingCmd(int32(fd), 0xC0484E80) // NVME_URING_CMD_IO, meaningless on a regular file
	fill(r.Cmd(s)[:], 0xff)
	s.SetURingCmdFixed(7)
	s.SetWriteStream(0xff)
	s.SetUserData(1)
	c, err := r.WaitCQE()
	if err != nil {
		t.Fatal(err)
	}
	r.CQESeen()
	var errno syscall.Errno
	if !errors.As(c.Err(), &errno) {
		t.Fatalf("URING_CMD on a regular file: res %d, want an errno", c.Res)
	}
	t.Logf("URING_CMD on a regular file: %v", errno)

	s2 := r.GetSQE()
	if s2 != s {
		t.Fatal("a one-entry ring handed out a different slot")
	}
	if raw := (*[128]byte)(unsafe.Pointer(s2)); !bytes.Equal(raw[:], make([]byte, 128)) {
		t.Fatalf("GetSQE left junk: % x", raw[:])
	}
	s2.PrepNop()
	s2.SetUserData(2)
	if c, err := r.WaitCQE(); err != nil || c.Res != 0 || c.UserData != 2 {
		t.Fatalf("NOP after URING_CMD: %+v, %v", c, err)
	}
	r.CQESeen()
	mustRes(t, r, 4096, func(s *SQE) { s.PrepRead(int32(fd), buf, 8192) })
	checkBlocks(t, buf, 2)
}

func TestManyInFlight(t *testing.T) {
	const n = 32
	r := newRing(t, Params{Entries: n})
	fd := directFile(t, n*4096, blockPattern)
	mem := alignedBuf(t, n*4096)
	// Block i goes into buffer slot n-1-i, so a completion's user data says both.
	for i := range n {
		s := r.GetSQE()
		s.PrepRead(int32(fd), mem[(n-1-i)*4096:(n-i)*4096], uint64(i)*4096)
		s.SetUserData(uint64(i))
	}
	if got, err := r.Submit(); got != n || err != nil {
		t.Fatalf("Submit = %d, %v; want %d", got, err, n)
	}
	seen := make(map[uint64]bool)
	for len(seen) < n {
		c, err := r.WaitCQE()
		if err != nil {
			t.Fatal(err)
		}
		r.CQESeen()
		if c.Res != 4096 || c.UserData >= n || seen[c.UserData] {
			t.Fatalf("unexpected completion %+v", c)
		}
		seen[c.UserData] = true
		i := int(c.UserData)
		checkBlocks(t, mem[(n-1-i)*4096:(n-i)*4096], i)
	}
}

func TestQueueFull(t *testing.T) {
	r := newRing(t, Params{Entries: 4})
	for i := range 4 {
		s := r.GetSQE()
		if s == nil {
			t.Fatalf("GetSQE %d of 4 returned nil", i)
		}
		s.PrepNop()
		s.SetUserData(uint64(i))
	}
	if s := r.GetSQE(); s != nil || r.SQSpace() != 0 {
		t.Fatalf("GetSQE on a full SQ = %p, SQSpace %d; want nil, 0", s, r.SQSpace())
	}
	if n, err := r.Submit(); n != 4 || err != nil {
		t.Fatalf("Submit = %d, %v", n, err)
	}
	if r.SQSpace() != 4 {
		t.Fatalf("SQSpace after submit %d, want 4", r.SQSpace())
	}
	s := r.GetSQE()
	if s == nil {
		t.Fatal("GetSQE after submit returned nil")
	}
	s.PrepNop()
	s.SetUserData(4)
	if _, err := r.SubmitAndWait(5); err != nil {
		t.Fatal(err)
	}
	if got := r.PeekBatchCQE(make([]CQE, 8)); got != 5 {
		t.Fatalf("%d completions, want 5", got)
	}
	r.CQAdvance(5)
}

// TestCQOverflow posts more completions than the CQ holds without reaping; the kernel keeps the
// rest (IORING_FEAT_NODROP) and every one must come out, each once.
func TestCQOverflow(t *testing.T) {
	r := newRing(t, Params{Entries: 4, CQEntries: 4})
	if r.Features()&FeatNoDrop == 0 {
		t.Skip("kernel drops overflowing completions (no IORING_FEAT_NODROP)")
	}
	const total = 12
	next, seen := 0, make(map[uint64]bool)
	reap := func() {
		c, err := r.WaitCQE()
		if err != nil {
			t.Fatal(err)
		}
		r.CQESeen()
		if seen[c.UserData] || c.UserData >= total {
			t.Fatalf("unexpected completion %+v", c)
		}
		seen[c.UserData] = true
	}
	for next < total {
		for s := r.GetSQE(); s != nil && next < total; s = r.GetSQE() {
			s.PrepNop()
			s.SetUserData(uint64(next))
			next++
		}
		if _, err := r.Submit(); errors.Is(err, ErrBusy) {
			reap()
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if r.CQReady() != 4 {
		t.Errorf("CQ ring holds %d completions, want it full (4)", r.CQReady())
	}
	for len(seen) < total {
		reap()
	}
	if _, ok := r.PeekCQE(); ok {
		t.Fatal("a completion beyond the ones submitted")
	}
}

func TestWaitTimeout(t *testing.T) {
	r := newRing(t, Params{Entries: 2})
	_, err := r.WaitCQETimeout(5 * time.Millisecond)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, syscall.ETIME) {
		t.Fatalf("WaitCQETimeout on an idle ring: %v, want ErrTimeout and ETIME", err)
	}
	s := r.GetSQE()
	s.PrepNop()
	s.SetUserData(9)
	if _, err := r.SubmitAndWaitTimeout(1, time.Minute); err != nil {
		t.Fatal(err)
	}
	c, err := r.WaitCQETimeout(time.Minute)
	if err != nil || c.UserData != 9 {
		t.Fatalf("WaitCQETimeout = %+v, %v", c, err)
	}
	r.CQESeen()
}

// TestSingleIssuer checks the rule in the package doc: a SingleIssuer|DeferTaskrun ring works
// from the locked thread that created it and answers ErrWrongThread on another.
func TestSingleIssuer(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r := newRing(t, Params{Entries: 4, SingleIssuer: true, DeferTaskrun: true})
	mustRes(t, r, 0, func(s *SQE) { s.PrepNop() })

	s := r.GetSQE()
	s.PrepNop()
	s.SetUserData(7)
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // a locked goroutine never shares the test's thread
		defer runtime.UnlockOSThread()
		_, err := r.Submit()
		errc <- err
	}()
	if err := <-errc; !errors.Is(err, ErrWrongThread) || !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("Submit from another thread: %v, want ErrWrongThread", err)
	}
	// The entry is still queued; the owner submits it.
	c, err := r.WaitCQE()
	if err != nil || c.UserData != 7 {
		t.Fatalf("owner WaitCQE = %+v, %v", c, err)
	}
	r.CQESeen()
	if _, ok := r.PeekCQE(); ok {
		t.Fatal("extra completion")
	}
}

func TestSQPoll(t *testing.T) {
	r := newRing(t, Params{Entries: 4, SQPoll: true, SQThreadIdleMs: 1})
	fd := directFile(t, 16<<10, blockPattern)
	buf := alignedBuf(t, 4096)
	mustRes(t, r, 0, func(s *SQE) { s.PrepNop() })
	// Let the SQ thread go to sleep, so the next submit has to wake it.
	deadline := time.Now().Add(10 * time.Second)
	for atomic.LoadUint32(r.sqFlags)&sqNeedWakeup == 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	mustRes(t, r, 4096, func(s *SQE) { s.PrepRead(int32(fd), buf, 4096) })
	checkBlocks(t, buf, 1)
}

func TestProbe(t *testing.T) {
	r := newRing(t, Params{Entries: 2})
	p, err := r.Probe()
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []Op{OpNop, OpReadv, OpWritev, OpFsync, OpReadFixed, OpWriteFixed, OpFallocate, OpRead, OpWrite} {
		if !p.OpSupported(op) {
			t.Errorf("op %d not supported", op)
		}
	}
	if p.LastOp() >= OpURingCmd && !p.OpSupported(OpURingCmd) {
		t.Error("kernel knows URING_CMD but the probe says unsupported")
	}
	if p.OpSupported(255) {
		t.Error("op 255 reported supported")
	}
	t.Logf("last op %d, URING_CMD supported: %v", p.LastOp(), p.OpSupported(OpURingCmd))
}

func TestClose(t *testing.T) {
	r := newRing(t, Params{Entries: 2})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if r.GetSQE() != nil {
		t.Error("GetSQE after Close returned an entry")
	}
	if _, err := r.Submit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close: %v", err)
	}
	if _, err := r.WaitCQE(); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitCQE after Close: %v", err)
	}
}

func TestNewRejectsBadParams(t *testing.T) {
	if _, err := New(Params{DeferTaskrun: true}); err == nil {
		t.Fatal("New accepted DeferTaskrun without SingleIssuer")
	}
}
