//go:build linux

package uring

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
)

// TestSparseBuffers fills a slot of a sparse table, does fixed I/O through it on an O_DIRECT
// file, replaces it, clears it and sees a fixed op on the empty slot fail.
func TestSparseBuffers(t *testing.T) {
	r := newRing(t, Params{Entries: 4})
	fd := directFile(t, 256<<10, blockPattern)
	if err := r.RegisterBuffersSparse(8); err != nil {
		t.Fatal(err)
	}
	// An empty slot refuses fixed I/O from the start.
	a := alignedBuf(t, 64<<10)
	c := run(t, r, func(s *SQE) { s.PrepReadFixed(int32(fd), a, 0, 5) })
	if !errors.As(c.Err(), new(syscall.Errno)) {
		t.Fatalf("READ_FIXED on an empty slot: res %d, want an errno", c.Res)
	}

	if err := r.UpdateBuffers(5, [][]byte{a}); err != nil {
		t.Fatal(err)
	}
	mustRes(t, r, int32(len(a)), func(s *SQE) { s.PrepReadFixed(int32(fd), a, 64<<10, 5) })
	checkBlocks(t, a, 16)
	// An interior slice of the registered buffer works too.
	w := a[8192 : 8192+16<<10]
	fill(w, 0xa5)
	mustRes(t, r, int32(len(w)), func(s *SQE) { s.PrepWriteFixed(int32(fd), w, 4096, 5) })
	written := bytes.Clone(w)

	// Replace the slot with another mapping: the fixed read lands in the new one.
	b := alignedBuf(t, 16<<10)
	if err := r.UpdateBuffers(5, [][]byte{b}); err != nil {
		t.Fatal(err)
	}
	fill(a, 0)
	mustRes(t, r, int32(len(b)), func(s *SQE) { s.PrepReadFixed(int32(fd), b, 4096, 5) })
	if !bytes.Equal(b, written) {
		t.Fatal("fixed read through the replaced slot differs from the fixed write")
	}
	if !bytes.Equal(a, make([]byte, len(a))) {
		t.Fatal("fixed read through the replaced slot wrote into the old buffer")
	}

	// Several slots at once, one of them cleared.
	if err := r.UpdateBuffers(6, [][]byte{a, nil}); err != nil {
		t.Fatal(err)
	}
	mustRes(t, r, int32(len(a)), func(s *SQE) { s.PrepReadFixed(int32(fd), a, 128<<10, 6) })
	checkBlocks(t, a, 32)

	// Cleared: the fixed op fails with an errno, plain I/O on the same memory still works.
	if err := r.UpdateBuffers(5, [][]byte{nil}); err != nil {
		t.Fatal(err)
	}
	c = run(t, r, func(s *SQE) { s.PrepReadFixed(int32(fd), b, 0, 5) })
	if !errors.As(c.Err(), new(syscall.Errno)) {
		t.Fatalf("READ_FIXED on a cleared slot: res %d, want an errno", c.Res)
	}
	c = run(t, r, func(s *SQE) { s.PrepWriteFixed(int32(fd), b, 0, 5) })
	if !errors.As(c.Err(), new(syscall.Errno)) {
		t.Fatalf("WRITE_FIXED on a cleared slot: res %d, want an errno", c.Res)
	}
	fill(b, 0)
	mustRes(t, r, int32(len(b)), func(s *SQE) { s.PrepRead(int32(fd), b, 4096) })
	if !bytes.Equal(b, written) {
		t.Fatal("plain read after clearing the slot differs from the fixed write")
	}

	// Slots past the table, and a second table, are refused.
	if err := r.UpdateBuffers(8, [][]byte{b}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("UpdateBuffers past the table: %v, want EINVAL", err)
	}
	if err := r.RegisterBuffersSparse(4); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("second RegisterBuffersSparse: %v, want EBUSY", err)
	}
	if err := r.UnregisterBuffers(); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterBuffersSparse(0); err == nil {
		t.Error("RegisterBuffersSparse(0) succeeded")
	}
}

// TestUpdateBuffersMany updates more slots than fit the scratch page in one call.
func TestUpdateBuffersMany(t *testing.T) {
	r := newRing(t, Params{Entries: 4})
	fd := directFile(t, 4096*600, blockPattern)
	const n = 600
	if err := r.RegisterBuffersSparse(n); err != nil {
		t.Fatal(err)
	}
	mem := alignedBuf(t, n*4096)
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = mem[i*4096 : (i+1)*4096]
	}
	if err := r.UpdateBuffers(0, bufs); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 239, 240, 241, 599} {
		mustRes(t, r, 4096, func(s *SQE) { s.PrepReadFixed(int32(fd), bufs[i], uint64(i)*4096, uint16(i)) })
		checkBlocks(t, bufs[i], i)
	}
}
