//go:build linux

package dax

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"kvresp/rawblock"
	"kvresp/slab"
	"kvresp/tiers"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newArena(t testing.TB) *slab.Arena {
	t.Helper()
	a, err := slab.New(slab.Options{Limit: 512 << 20, ValueOffset: slab.DefaultValueOffset})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// openEngine opens the log over dev with test defaults; with cleanup it checks and closes the
// engine when the test ends.
func openEngine(t testing.TB, dev rawblock.Device, a *slab.Arena, cleanup bool, mod func(*rawblock.Options)) *rawblock.Engine {
	t.Helper()
	o := rawblock.Options{Device: dev, Arena: a, RegionSize: 1 << 20, FlushInterval: -1, Logger: quiet, IOBuffers: 8}
	if mod != nil {
		mod(&o)
	}
	e, err := rawblock.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if cleanup {
		t.Cleanup(func() {
			if err := e.Check(); err != nil {
				t.Errorf("Check: %v", err)
			}
			e.Close()
		})
	}
	return e
}

// openFileDev opens a dax device on path, closing it when the test ends (a second Close by an
// engine is harmless).
func openFileDev(t testing.TB, o Options) *Device {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	d, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// shmPath is a fresh path on /dev/shm (tmpfs), removed when the test ends.
func shmPath(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/dev/shm"); err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	f, err := os.CreateTemp("/dev/shm", "kvresp-dax-test-")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.Remove(f.Name())
	t.Cleanup(func() { os.Remove(f.Name()) })
	return f.Name()
}

func value(n int, seed int) []byte {
	b := make([]byte, n)
	x := uint32(seed*2654435761 + 1)
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func key(i int) string { return fmt.Sprintf("model@%08x@0@%x@bfloat16kv_bytes", i, i*7919) }

func put(t testing.TB, e *rawblock.Engine, a *slab.Arena, key string, v []byte) error {
	t.Helper()
	b, err := a.Alloc(len(v))
	if err != nil {
		t.Fatal(err)
	}
	copy(b.Bytes(), v)
	err = e.Put(key, tiers.Item{Buf: b})
	b.Release()
	return err
}

func mustPut(t testing.TB, e *rawblock.Engine, a *slab.Arena, key string, v []byte) {
	t.Helper()
	if err := put(t, e, a, key, v); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

// get returns the value of key or nil.
func get(t testing.TB, e *rawblock.Engine, key string) []byte {
	t.Helper()
	it, ok, err := e.Get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	if !ok {
		return nil
	}
	defer it.Buf.Release()
	return append([]byte{}, it.Buf.Bytes()...)
}

func wantValue(t testing.TB, e *rawblock.Engine, key string, want []byte) {
	t.Helper()
	got := get(t, e, key)
	if got == nil {
		t.Fatalf("get %q: miss, want %d bytes", key, len(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("get %q: %d bytes differ from the %d put", key, len(got), len(want))
	}
}

// newTestMapping returns n bytes of anonymous memory outside the Go heap, unmapped when the
// test ends.
func newTestMapping(t testing.TB, n int) []byte {
	t.Helper()
	m, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(m) })
	return m
}
