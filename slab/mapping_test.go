package slab

import (
	"slices"
	"sync"
	"testing"
)

func TestMappingOf(t *testing.T) {
	a := newArena(t, Options{Limit: 8 << 20})
	big := alloc(t, a, 100<<10)
	defer big.Release()
	small := alloc(t, a, 4096)
	defer small.Release()

	m, ok := a.MappingOf(big.Bytes())
	if !ok || Addr(m) != Addr(big.Bytes()) || len(m) != big.Cap() {
		t.Fatalf("MappingOf(large buffer) = %#x+%d, %v; want %#x+%d", Addr(m), len(m), ok, Addr(big.Bytes()), big.Cap())
	}
	if m2, ok := a.MappingOf(big.Bytes()[8192:12288]); !ok || Addr(m2) != Addr(m) || len(m2) != len(m) {
		t.Errorf("MappingOf(interior slice) = %#x+%d, %v; want the whole mapping", Addr(m2), len(m2), ok)
	}
	if _, ok := a.MappingOf(big.Bytes()[:big.Cap()][big.Cap()-4096:]); !ok {
		t.Error("MappingOf(last page) = false")
	}
	for name, p := range map[string][]byte{
		"small buffer": small.Bytes(),
		"Go heap":      make([]byte, 64<<10),
		"empty":        big.Bytes()[:0],
	} {
		if _, ok := a.MappingOf(p); ok {
			t.Errorf("MappingOf(%s) = true, want false", name)
		}
	}
}

// TestOnUnmap frees a large buffer and allocates another size past the limit, so that the arena
// unmaps the cached one (rebalancing): the hook hears of it before the munmap, and MappingOf
// stops answering for it.
func TestOnUnmap(t *testing.T) {
	a := newArena(t, Options{Limit: 4 << 20})
	type ev struct {
		addr uintptr
		n    int
	}
	var (
		mu     sync.Mutex
		events []ev
		m      []byte
		seen   byte
	)
	stop := a.OnUnmap(func(p uintptr, n int) {
		mu.Lock()
		if m != nil && p == Addr(m) {
			seen = m[len(m)-1] // still mapped: this would fault after munmap
		}
		events = append(events, ev{p, n})
		mu.Unlock()
	})
	b := alloc(t, a, 2<<20)
	mu.Lock()
	var ok bool
	m, ok = a.MappingOf(b.Bytes())
	mu.Unlock()
	if !ok {
		t.Fatal("MappingOf(new buffer) = false")
	}
	base, n := Addr(m), len(m)
	m[n-1] = 7 // the mapping is live
	b.Release()
	if len(events) != 0 {
		t.Fatalf("hook called for a buffer only cached: %v", events)
	}
	c := alloc(t, a, 3<<20) // does not fit next to the cached 2 MiB: rebalancing unmaps it
	mu.Lock()
	got := slices.Clone(events)
	mu.Unlock()
	if !slices.Contains(got, ev{base, n}) || seen != 7 {
		t.Fatalf("hook calls %v (read %d), want one for %#x+%d made while it was mapped", got, seen, base, n)
	}
	if mc, ok := a.MappingOf(c.Bytes()); !ok || Addr(mc) != Addr(c.Bytes()) {
		t.Fatal("MappingOf(second buffer) wrong")
	}
	c.Release()

	stop()
	d := alloc(t, a, 4<<20) // unmaps c's mapping, with no hook any more
	d.Release()
	mu.Lock()
	defer mu.Unlock()
	if len(events) != len(got) {
		t.Errorf("hook called after stop: %v", events[len(got):])
	}
}
