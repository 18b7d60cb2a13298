package rawblock

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"kvresp/slab"
	"kvresp/tiers"
)

func newArena(t testing.TB) *slab.Arena {
	a, err := slab.New(slab.Options{Limit: 512 << 20, ValueOffset: slab.DefaultValueOffset})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// open opens an engine over dev with test defaults and checks it on cleanup.
func open(t testing.TB, dev Device, a *slab.Arena, mod func(*Options)) *Engine {
	t.Helper()
	o := Options{Device: dev, Arena: a, RegionSize: 1 << 20, FlushInterval: -1, Logger: quiet, IOBuffers: 8}
	if mod != nil {
		mod(&o)
	}
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
		e.Close()
	})
	return e
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

func put(t testing.TB, e *Engine, a *slab.Arena, key string, v []byte, exp int64) error {
	t.Helper()
	b, err := a.AllocValue(len(v)) // as the server does
	if err != nil {
		t.Fatal(err)
	}
	copy(b.Bytes(), v)
	err = e.Put(key, tiers.Item{Buf: b, ExpireAt: exp})
	b.Release()
	return err
}

func mustPut(t testing.TB, e *Engine, a *slab.Arena, key string, v []byte) {
	t.Helper()
	if err := put(t, e, a, key, v, 0); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

// get returns the value of key or nil.
func get(t testing.TB, e *Engine, key string) []byte {
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

func wantValue(t testing.TB, e *Engine, key string, want []byte) {
	t.Helper()
	got := get(t, e, key)
	if got == nil {
		t.Fatalf("get %q: miss, want %d bytes", key, len(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("get %q: %d bytes differ from the %d put", key, len(got), len(want))
	}
}

func key(i int) string { return fmt.Sprintf("model@%08x@0@%x@bfloat16kv_bytes", i, i*7919) }
