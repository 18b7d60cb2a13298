//go:build linux

package uring

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// newRing sets up a ring for a test and closes it at cleanup. A kernel without io_uring (ENOSYS)
// or with it forbidden (EPERM, sysctl kernel.io_uring_disabled) skips the test, except in CI,
// where the tests must really run.
func newRing(tb testing.TB, p Params) *Ring {
	tb.Helper()
	r, err := New(p)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		if os.Getenv("CI") != "" {
			tb.Fatalf("io_uring unavailable in CI: %v", err)
		}
		tb.Skipf("io_uring unavailable: %v", err)
	}
	if err != nil {
		tb.Fatalf("New(%+v): %v", p, err)
	}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return r
}

// alignedBuf returns size bytes of page-aligned memory off the Go heap, as the package doc asks
// for buffers the kernel writes after a call returns.
func alignedBuf(tb testing.TB, size int) []byte {
	tb.Helper()
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		tb.Fatalf("mmap %d bytes: %v", size, err)
	}
	tb.Cleanup(func() { _ = unix.Munmap(b) })
	return b
}

// directFile creates a file of size bytes in a temporary directory, opened O_RDWR|O_DIRECT, and
// fills it with pattern(i) for each 4 KiB block i (no fill when pattern is nil).
func directFile(tb testing.TB, size int, pattern func(block int) byte) int {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "data")
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_DIRECT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		tb.Fatalf("open %s O_DIRECT: %v", path, err)
	}
	tb.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		tb.Fatalf("ftruncate: %v", err)
	}
	if pattern != nil {
		const chunk = 1 << 20
		buf := alignedBuf(tb, chunk)
		for off := 0; off < size; off += chunk {
			n := min(chunk, size-off)
			for i := 0; i < n; i += 4096 {
				fill(buf[i:i+4096], pattern((off+i)/4096))
			}
			if _, err := unix.Pwrite(fd, buf[:n], int64(off)); err != nil {
				tb.Fatalf("pwrite at %d: %v", off, err)
			}
		}
	}
	return fd
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

func blockPattern(block int) byte { return byte(block*7 + 1) }

// run prepares one SQE with prep, submits it and returns its completion, checking that the
// completion carries the user data it was given.
func run(tb testing.TB, r *Ring, prep func(*SQE)) CQE {
	tb.Helper()
	s := r.GetSQE()
	if s == nil {
		tb.Fatal("GetSQE: queue full")
	}
	prep(s)
	const ud uint64 = 0xfeedface
	s.SetUserData(ud)
	c, err := r.WaitCQE()
	if err != nil {
		tb.Fatalf("WaitCQE: %v", err)
	}
	r.CQESeen()
	if c.UserData != ud {
		tb.Fatalf("completion user data %#x, want %#x", c.UserData, ud)
	}
	return c
}

// mustRes runs one op and fails unless it completed with Res == want.
func mustRes(tb testing.TB, r *Ring, want int32, prep func(*SQE)) CQE {
	tb.Helper()
	c := run(tb, r, prep)
	if c.Res != want {
		tb.Fatalf("op completed with res %d (err %v), want %d", c.Res, c.Err(), want)
	}
	return c
}

func checkBlocks(tb testing.TB, got []byte, firstBlock int) {
	tb.Helper()
	for i := 0; i < len(got); i += 4096 {
		want := blockPattern(firstBlock + i/4096)
		for j, b := range got[i : i+4096] {
			if b != want {
				tb.Fatalf("block %d byte %d: got %#x, want %#x", firstBlock+i/4096, j, b, want)
			}
		}
	}
}
