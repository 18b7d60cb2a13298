package slab

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	KiB = 1 << 10
	MiB = 1 << 20
)

// newArena returns an arena that is checked and closed when the test ends.
func newArena(t testing.TB, o Options) *Arena {
	t.Helper()
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Check(); err != nil {
			t.Error(err)
		}
		if err := a.Close(); err != nil {
			t.Error(err)
		}
		if err := a.Check(); err != nil {
			t.Error("after Close:", err)
		}
	})
	return a
}

func alloc(t testing.TB, a *Arena, n int) *Buf {
	t.Helper()
	b, err := a.Alloc(n)
	if err != nil {
		t.Fatalf("Alloc(%d): %v", n, err)
	}
	return b
}

// mustPanic runs f and returns the message it panicked with.
func mustPanic(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("did not panic")
		}
		msg, _ = r.(string)
	}()
	f()
	return ""
}

// waitFor polls until cond holds; the test's own deadline bounds it.
func waitFor(cond func() bool) {
	for !cond() {
		time.Sleep(time.Millisecond)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want []string // substrings of the error; none means valid
	}{
		{Options{Limit: 1 << 30}, nil},
		{Options{Limit: MiB, WaitTimeout: time.Second}, nil},
		{Options{}, []string{"memory limit is 0 bytes"}},
		{Options{Limit: 4096}, []string{"at least 1048576"}},
		{Options{Limit: -1, WaitTimeout: -time.Second}, []string{"memory limit", "wait timeout is -1s"}},
		{Options{Limit: MiB, ValueOffset: DefaultValueOffset}, nil},
		{Options{Limit: MiB, ValueOffset: 4032}, nil},
		{Options{Limit: MiB, ValueOffset: 100}, []string{"value offset is 100"}},
		{Options{Limit: MiB, ValueOffset: 4096}, []string{"value offset is 4096"}},
		{Options{Limit: MiB, ValueOffset: -64}, []string{"value offset is -64"}},
	} {
		err := tc.o.Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%+v: %v", tc.o, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%+v: no error, want %q", tc.o, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not mention %q", tc.o, err, w)
			}
		}
		if _, err := New(tc.o); err == nil {
			t.Errorf("New(%+v) succeeded", tc.o)
		}
	}
}

func TestSmallClasses(t *testing.T) {
	prev := 0
	for _, s := range smallSizes {
		if s <= prev || s%smallGrain != 0 {
			t.Fatalf("class %d after %d: not increasing or not %d-aligned", s, prev, smallGrain)
		}
		prev = s
	}
	if prev != maxSmall {
		t.Fatalf("largest small class %d, want %d", prev, maxSmall)
	}
	for n := 0; n <= maxSmall; n++ {
		i := smallIndex(n)
		if smallSizes[i] < n || (i > 0 && smallSizes[i-1] >= n) {
			t.Fatalf("size %d maps to class %d", n, smallSizes[i])
		}
	}
}

func TestAllocLenCapAlign(t *testing.T) {
	a := newArena(t, Options{Limit: 64 * MiB})
	for _, tc := range []struct{ n, cap int }{
		{0, 32}, {1, 32}, {28, 32}, {33, 48}, {129, 160}, {1000, 1024}, {4096, 4096},
		{16 * KiB, 16 * KiB}, {16*KiB + 1, 20 * KiB}, {MiB, MiB}, {MiB + 1, MiB + 4*KiB}, {8 * MiB, 8 * MiB},
	} {
		b := alloc(t, a, tc.n)
		if b.Len() != tc.n || len(b.Bytes()) != tc.n || b.Cap() != tc.cap || b.Refs() != 1 {
			t.Errorf("Alloc(%d): len %d/%d cap %d refs %d, want cap %d refs 1", tc.n, b.Len(), len(b.Bytes()), b.Cap(), b.Refs(), tc.cap)
		}
		align := uintptr(smallGrain)
		if tc.n > maxSmall {
			align = largeAlign
		}
		if p := Addr(b.data); p%align != 0 {
			t.Errorf("Alloc(%d) at %#x: not %d-aligned", tc.n, p, align)
		}
		b.SetLen(b.Cap())
		full := b.Bytes()
		for i := range full {
			full[i] = byte(i)
		}
		if cap(full) != tc.cap {
			t.Errorf("Alloc(%d): Bytes has cap %d; appends would overrun the slot", tc.n, cap(full))
		}
		b.SetLen(tc.n / 2)
		if b.Len() != tc.n/2 {
			t.Errorf("SetLen(%d): Len %d", tc.n/2, b.Len())
		}
		mustPanic(t, func() { b.SetLen(b.Cap() + 1) })
		mustPanic(t, func() { b.SetLen(-1) })
		b.Release()
	}
	if _, err := a.Alloc(-1); err == nil {
		t.Error("Alloc(-1) succeeded")
	}
}

func TestAllocValue(t *testing.T) {
	a := newArena(t, Options{Limit: 64 * MiB, ValueOffset: DefaultValueOffset})
	if a.ValueOffset() != DefaultValueOffset {
		t.Fatalf("ValueOffset %d", a.ValueOffset())
	}
	for _, n := range []int{0, 100, 16 * KiB, 16*KiB + 1, 20 * KiB, MiB - 1, MiB, MiB + 1, 4 * MiB} {
		b, err := a.AllocValue(n)
		if err != nil {
			t.Fatalf("AllocValue(%d): %v", n, err)
		}
		p, want := Addr(b.Bytes()), uintptr(DefaultValueOffset)
		if n <= maxSmall {
			want = Addr(b.data) % largeAlign
		}
		if b.Len() != n || p%largeAlign != want {
			t.Errorf("AllocValue(%d): len %d at page offset %d, want %d", n, b.Len(), p%largeAlign, want)
		}
		if n > maxSmall && b.Cap() < roundUp(n, largeAlign) {
			t.Errorf("AllocValue(%d): cap %d < %d, the value rounded up to 4 KiB", n, b.Cap(), roundUp(n, largeAlign))
		}
		b.SetLen(b.Cap())
		full := b.Bytes()
		if cap(full) != b.Cap() || Addr(full)+uintptr(len(full)) != Addr(b.data)+uintptr(len(b.data)) {
			t.Errorf("AllocValue(%d): Bytes does not end where the mapping does", n)
		}
		for i := range full {
			full[i] = byte(i)
		}
		if n > maxSmall {
			m, ok := a.MappingOf(full)
			if !ok || Addr(m) != p-uintptr(DefaultValueOffset) {
				t.Errorf("AllocValue(%d): MappingOf = %#x, %v; want %#x", n, Addr(m), ok, p-uintptr(DefaultValueOffset))
			}
		}
		b.Release()
	}
	// A cached mapping serves either kind: the offset is the allocation's, not the mapping's.
	v, err := a.AllocValue(MiB)
	if err != nil {
		t.Fatal(err)
	}
	v.Release()
	b := alloc(t, a, MiB+4*KiB) // the same class: MiB rounded up plus one page
	if Addr(b.Bytes())%largeAlign != 0 || b.Cap() != MiB+4*KiB {
		t.Errorf("Alloc after AllocValue of the same class: page offset %d, cap %d", Addr(b.Bytes())%largeAlign, b.Cap())
	}
	b.Release()
	if v, err = a.AllocValue(MiB); err != nil {
		t.Fatal(err)
	}
	if Addr(v.Bytes())%largeAlign != DefaultValueOffset {
		t.Errorf("AllocValue after Alloc of the same class: page offset %d", Addr(v.Bytes())%largeAlign)
	}
	v.Release()
	if st := a.Stats(); st.Allocs != 12 || st.Frees != 12 {
		t.Errorf("allocs %d, frees %d; want 12 each", st.Allocs, st.Frees)
	}
	// Without an offset AllocValue is Alloc.
	z := newArena(t, Options{Limit: 64 * MiB})
	if v, err = z.AllocValue(MiB); err != nil {
		t.Fatal(err)
	}
	if Addr(v.Bytes())%largeAlign != 0 || v.Cap() != MiB {
		t.Errorf("AllocValue with no offset: page offset %d, cap %d", Addr(v.Bytes())%largeAlign, v.Cap())
	}
	v.Release()
	if _, err := a.AllocValue(-1); err == nil {
		t.Error("AllocValue(-1) succeeded")
	}
	// The offset can change until a large value was allocated.
	if err := z.SetValueOffset(DefaultValueOffset); err == nil {
		t.Error("SetValueOffset after a large value was allocated succeeded")
	}
	z = newArena(t, Options{Limit: 64 * MiB})
	if err := z.SetValueOffset(100); err == nil {
		t.Error("SetValueOffset(100) succeeded")
	}
	if err := z.SetValueOffset(DefaultValueOffset); err != nil {
		t.Fatal(err)
	}
	if v, err = z.AllocValue(MiB); err != nil {
		t.Fatal(err)
	}
	if Addr(v.Bytes())%largeAlign != DefaultValueOffset {
		t.Errorf("AllocValue after SetValueOffset: page offset %d", Addr(v.Bytes())%largeAlign)
	}
	v.Release()
	if err := z.SetValueOffset(0); err == nil {
		t.Error("SetValueOffset after a value was placed succeeded")
	}
	if err := z.SetValueOffset(DefaultValueOffset); err != nil {
		t.Errorf("SetValueOffset to the same offset: %v", err)
	}
}

func TestRefs(t *testing.T) {
	a := newArena(t, Options{Limit: 16 * MiB})
	for _, n := range []int{28, 2 * MiB} {
		before := a.Stats()
		b := alloc(t, a, n)
		b.Retain()
		b.Retain()
		if b.Refs() != 3 {
			t.Fatalf("refs %d, want 3", b.Refs())
		}
		b.Release()
		b.Release()
		if s := a.Stats(); s.Frees != before.Frees || s.InUse == 0 {
			t.Fatalf("buffer returned while referenced: %+v", s)
		}
		b.Release()
		if b.Refs() != 0 || a.Stats().InUse != 0 {
			t.Fatalf("after last release: refs %d, stats %+v", b.Refs(), a.Stats())
		}
		if msg := mustPanic(t, b.Release); msg != "BUG: slab: release of released buffer" {
			t.Errorf("double release panicked with %q", msg)
		}
		if msg := mustPanic(t, b.Retain); msg != "BUG: slab: retain of released buffer" {
			t.Errorf("retain after release panicked with %q", msg)
		}
		if b.Refs() != 0 {
			t.Errorf("refs %d after recovered double release, want 0", b.Refs())
		}
	}
}

func TestReuseSameClass(t *testing.T) {
	a := newArena(t, Options{Limit: 64 * MiB})
	for _, tc := range []struct{ first, second int }{
		{8 * MiB, 8 * MiB}, {8 * MiB, 8*MiB - 100}, {MiB + 1, MiB + 4096}, {28, 28}, {28, 17}, {5000, 5000},
	} {
		b := alloc(t, a, tc.first)
		p := Addr(b.data)
		b.Release()
		before := a.Stats()
		b = alloc(t, a, tc.second)
		if q := Addr(b.data); q != p {
			t.Errorf("Alloc(%d) after freeing Alloc(%d): address %#x, want the freed %#x", tc.second, tc.first, q, p)
		}
		if s := a.Stats(); s.Used != before.Used || s.Unmaps != before.Unmaps {
			t.Errorf("reuse mapped or unmapped memory: before %+v after %+v", before, s)
		}
		if b.Len() != tc.second {
			t.Errorf("Len %d, want %d", b.Len(), tc.second)
		}
		b.Release()
	}
}

// TestSmallPacking checks that tiny values share pages, never overlap, and that empty pages are
// given back when something else needs the memory.
func TestSmallPacking(t *testing.T) {
	a := newArena(t, Options{Limit: 4 * MiB})
	n := smallPageBytes/32 + 10 // two pages of the 32-byte class
	bufs := make([]*Buf, n)
	seen := make(map[uintptr]bool, n)
	for i := range bufs {
		bufs[i] = alloc(t, a, 28)
		p := Addr(bufs[i].data)
		if seen[p] {
			t.Fatalf("address %#x handed out twice", p)
		}
		seen[p] = true
		copy(bufs[i].Bytes(), []byte{byte(i), byte(i >> 8), byte(i >> 16)})
	}
	s := a.Stats()
	if s.Used != 2*MiB || s.InUse != int64(n*32) || len(s.Classes) != 1 || s.Classes[0].InUse != n {
		t.Fatalf("stats after %d tiny allocs: %+v", n, s)
	}
	for i, b := range bufs {
		if got := b.Bytes()[:3]; got[0] != byte(i) || got[1] != byte(i>>8) || got[2] != byte(i>>16) {
			t.Fatalf("buffer %d overwritten: %v", i, got)
		}
		b.Release()
	}
	if s := a.Stats(); s.Cached != 2*MiB || s.InUse != 0 {
		t.Fatalf("stats after freeing: %+v", s)
	}
	// 4 MiB fits only if both empty pages are unmapped.
	b := alloc(t, a, 4*MiB)
	if s := a.Stats(); s.Unmaps != 2 || s.Used != 4*MiB || len(s.Classes) != 1 {
		t.Errorf("stats after rebalancing small pages: %+v", s)
	}
	b.Release()
}

// TestRebalance fills the limit with 8 MiB buffers, frees them, and expects 32 MiB buffers to fit
// by unmapping the cached 8 MiB ones, without asking the reclaimer.
func TestRebalance(t *testing.T) {
	a := newArena(t, Options{Limit: 64 * MiB})
	a.SetReclaimer(func(need int64, size int) int64 {
		t.Errorf("reclaimer called (need %d, size %d) with cached memory to rebalance", need, size)
		return 0
	})
	var bufs []*Buf
	for range 8 {
		bufs = append(bufs, alloc(t, a, 8*MiB))
	}
	for _, b := range bufs {
		b.Release()
	}
	if s := a.Stats(); s.Cached != 64*MiB || s.Used != 64*MiB {
		t.Fatalf("after freeing: %+v", s)
	}
	x, y := alloc(t, a, 32*MiB), alloc(t, a, 32*MiB)
	s := a.Stats()
	if s.Unmaps != 8 || s.Reclaims != 0 || s.InUse != 64*MiB || s.Cached != 0 {
		t.Errorf("after rebalancing: %+v", s)
	}
	if len(s.Classes) != 1 || s.Classes[0] != (ClassStats{Size: 32 * MiB, InUse: 2, Bytes: 64 * MiB}) {
		t.Errorf("classes %+v", s.Classes)
	}
	x.Release()
	y.Release()
}

func TestReclaim(t *testing.T) {
	a := newArena(t, Options{Limit: 64 * MiB})
	var l tier
	a.SetReclaimer(l.reclaim)
	for range 4 {
		l.add(alloc(t, a, 16*MiB), 0)
	}
	b := alloc(t, a, 16*MiB) // evicts the oldest item and reuses its buffer
	l.mu.Lock()
	left := len(l.items)
	l.mu.Unlock()
	if s := a.Stats(); left != 3 || s.Reclaims != 1 || s.Unmaps != 0 || s.Used != 64*MiB {
		t.Errorf("after reclaim: %d items left, stats %+v", left, s)
	}
	b.Release()
	l.reclaim(1<<62, 0)
}

// TestEvictionWithPinnedReader evicts items that readers still hold: their memory comes back only
// when the readers release, and an Alloc waiting for it then succeeds.
func TestEvictionWithPinnedReader(t *testing.T) {
	a := newArena(t, Options{Limit: 32 * MiB, WaitTimeout: time.Hour})
	var l tier
	a.SetReclaimer(l.reclaim)
	x, y := alloc(t, a, 16*MiB), alloc(t, a, 16*MiB)
	l.add(x, 0)
	l.add(y, 0)
	x.Retain() // readers streaming the items to clients
	y.Retain()
	type result struct {
		b   *Buf
		err error
	}
	done := make(chan result)
	go func() {
		b, err := a.Alloc(16 * MiB)
		done <- result{b, err}
	}()
	waitFor(func() bool { return a.Stats().Waits == 1 })
	if s := a.Stats(); s.InUse != 32*MiB || s.Frees != 0 {
		t.Errorf("evicted but pinned buffers were returned: %+v", s)
	}
	if x.Refs() != 1 || y.Refs() != 1 {
		t.Errorf("evicted items hold refs %d, %d; want the readers' 1", x.Refs(), y.Refs())
	}
	p := Addr(x.data)
	x.Release() // first reader done
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if q := Addr(r.b.data); q != p {
		t.Errorf("waiting Alloc got %#x, want the released buffer %#x", q, p)
	}
	y.Release()
	r.b.Release()
	if s := a.Stats(); s.InUse != 0 || s.Unmaps != 0 {
		t.Errorf("at the end: %+v", s)
	}
}

func TestErrTooLarge(t *testing.T) {
	a := newArena(t, Options{Limit: 8 * MiB})
	for _, n := range []int{8*MiB + 1, 100 * MiB} {
		if _, err := a.Alloc(n); !errors.Is(err, ErrTooLarge) {
			t.Errorf("Alloc(%d): %v, want ErrTooLarge", n, err)
		}
	}
	if err := a.Reserve(8*MiB + 1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Reserve: %v, want ErrTooLarge", err)
	}
	alloc(t, a, 8*MiB).Release()
}

func TestErrNoMemory(t *testing.T) {
	a := newArena(t, Options{Limit: 16 * MiB, WaitTimeout: 10 * time.Millisecond})
	calls := 0
	a.SetReclaimer(func(int64, int) int64 { calls++; return 0 })
	b := alloc(t, a, 12*MiB)
	if _, err := a.Alloc(8 * MiB); !errors.Is(err, ErrNoMemory) {
		t.Errorf("Alloc: %v, want ErrNoMemory", err)
	}
	if err := a.Reserve(8 * MiB); !errors.Is(err, ErrNoMemory) {
		t.Errorf("Reserve: %v, want ErrNoMemory", err)
	}
	if s := a.Stats(); calls == 0 || s.Waits != 2 || s.Used != 12*MiB {
		t.Errorf("reclaimer called %d times, stats %+v", calls, s)
	}
	b.Release()
	alloc(t, a, 16*MiB).Release()
}

func TestReserve(t *testing.T) {
	a := newArena(t, Options{Limit: 32 * MiB, WaitTimeout: time.Hour})
	if err := a.Reserve(10 * MiB); err != nil {
		t.Fatal(err)
	}
	b := alloc(t, a, 16*MiB)
	b.Release() // cached
	if s := a.Stats(); s.Reserved != 10*MiB || s.Used != 26*MiB || s.Cached != 16*MiB {
		t.Fatalf("stats %+v", s)
	}
	if err := a.Reserve(20 * MiB); err != nil { // unmaps the cached buffer
		t.Fatal(err)
	}
	if s := a.Stats(); s.Reserved != 30*MiB || s.Used != 30*MiB || s.Unmaps != 1 {
		t.Fatalf("stats %+v", s)
	}
	// An Alloc that does not fit waits for Unreserve.
	done := make(chan error)
	go func() {
		b, err := a.Alloc(4 * MiB)
		if err == nil {
			b.Release()
		}
		done <- err
	}()
	waitFor(func() bool { return a.Stats().Waits == 1 })
	a.Unreserve(20 * MiB)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a.Unreserve(10 * MiB)
	if s := a.Stats(); s.Reserved != 0 || s.Used != s.Cached {
		t.Errorf("stats %+v", s)
	}
	mustPanic(t, func() { a.Unreserve(1) })
	if err := a.Reserve(-1); err == nil {
		t.Error("Reserve(-1) succeeded")
	}
}

func TestSetLimit(t *testing.T) {
	a := newArena(t, Options{Limit: 64 * MiB})
	var l tier
	a.SetReclaimer(l.reclaim)
	var cached []*Buf
	for range 4 {
		l.add(alloc(t, a, 8*MiB), 0)
		cached = append(cached, alloc(t, a, 8*MiB))
	}
	for _, b := range cached {
		b.Release()
	}
	// Dropping three of the cached buffers is enough.
	if err := a.SetLimit(40 * MiB); err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.Limit != 40*MiB || s.Used != 40*MiB || s.Cached != 8*MiB || s.Unmaps != 3 || s.Reclaims != 0 {
		t.Fatalf("after SetLimit(40 MiB): %+v", s)
	}
	// The reclaimer must evict, but a reader pins the oldest item.
	l.mu.Lock()
	pinned := l.items[0].b
	l.mu.Unlock()
	pinned.Retain()
	if err := a.SetLimit(MiB); err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.Used != 8*MiB || s.Cached != 0 || s.Reclaims == 0 {
		t.Fatalf("after SetLimit(1 MiB): %+v", s)
	}
	pinned.Release() // over the limit: unmapped, not cached
	if s := a.Stats(); s.Used != 0 || s.Unmaps != 8 || a.Limit() != MiB {
		t.Fatalf("after the reader released: %+v", s)
	}
	if _, err := a.Alloc(2 * MiB); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Alloc over the new limit: %v", err)
	}
	if err := a.SetLimit(0); err == nil {
		t.Error("SetLimit(0) succeeded")
	}
	if err := a.SetLimit(64 * MiB); err != nil {
		t.Fatal(err)
	}
	alloc(t, a, 32*MiB).Release()
}

func TestClose(t *testing.T) {
	a := newArena(t, Options{Limit: 32 * MiB, WaitTimeout: time.Hour})
	held, small := alloc(t, a, 16*MiB), alloc(t, a, 28)
	alloc(t, a, 8*MiB).Release()
	alloc(t, a, 100).Release()
	done := make(chan error)
	go func() {
		_, err := a.Alloc(32 * MiB)
		done <- err
	}()
	waitFor(func() bool { return a.Stats().Waits == 1 })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("waiting Alloc: %v, want ErrClosed", err)
	}
	if _, err := a.Alloc(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Alloc after Close: %v", err)
	}
	if err := a.Reserve(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Reserve after Close: %v", err)
	}
	held.Bytes()[0] = 1 // still mapped
	// Only the page holding the small buffer stays mapped.
	if s := a.Stats(); s.Cached != MiB-32 || s.InUse != 16*MiB+32 || s.Unmaps != 2 {
		t.Errorf("after Close: %+v", s)
	}
	held.Release()
	small.Release()
	if s := a.Stats(); s.Used != 0 || len(s.Classes) != 0 {
		t.Errorf("after releasing everything: %+v", s)
	}
	if err := a.Close(); err != nil {
		t.Error("second Close:", err)
	}
}

// TestErrNoMemoryUnderChurn makes sure a starved allocation still times out while other
// goroutines keep releasing (and so keep waking it) without freeing enough.
func TestErrNoMemoryUnderChurn(t *testing.T) {
	a := newArena(t, Options{Limit: 16 * MiB, WaitTimeout: 20 * time.Millisecond})
	held := alloc(t, a, 12*MiB)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := a.Alloc(28)
			if err != nil {
				t.Error(err)
				return
			}
			b.Release()
		}
	})
	if _, err := a.Alloc(8 * MiB); !errors.Is(err, ErrNoMemory) {
		t.Errorf("Alloc: %v, want ErrNoMemory", err)
	}
	close(stop)
	wg.Wait()
	held.Release()
}

// TestCheckCatches makes sure Check is not vacuous: each corruption must be reported.
func TestCheckCatches(t *testing.T) {
	a := newArena(t, Options{Limit: 64 * MiB})
	big, small := alloc(t, a, 8*MiB), alloc(t, a, 28)
	alloc(t, a, 8*MiB).Release()
	for _, tc := range []struct {
		name        string
		break_, fix func()
	}{
		{"accounting", func() { a.inUse++ }, func() { a.inUse-- }},
		{"used", func() { a.used++ }, func() { a.used-- }},
		{"free buffer in use", func() { big.free = true }, func() { big.free = false }},
		{"in use without refs", func() { big.refs.Store(0) }, func() { big.refs.Store(1) }},
		{"negative refs", func() { a.large[8*MiB].free[0].refs.Store(-1) }, func() { a.large[8*MiB].free[0].refs.Store(0) }},
		{"slot both free and in use", func() { small.page.free[0] |= 1 }, func() { small.page.free[0] &^= 1 }},
		{"class count", func() { a.small[0].inuse++ }, func() { a.small[0].inuse-- }},
	} {
		a.mu.Lock()
		tc.break_()
		a.mu.Unlock()
		if err := a.Check(); err == nil {
			t.Errorf("%s: Check found nothing", tc.name)
		}
		a.mu.Lock()
		tc.fix()
		a.mu.Unlock()
		if err := a.Check(); err != nil {
			t.Fatalf("%s: after fixing: %v", tc.name, err)
		}
	}
	big.Release()
	small.Release()
}
