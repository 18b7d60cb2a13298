package store

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kvresp/slab"
	"kvresp/slab/dram"
	"kvresp/tiers"
)

type fixture struct {
	s     *Store
	arena *slab.Arena
	tier  *dram.Tier
	clock atomic.Int64
}

func newFixture(t *testing.T, limit int64) *fixture {
	t.Helper()
	return newFixtureWith(t, limit, nil)
}

// newFixtureWith is newFixture with options changed by opt, which may add
// what the store sits on (an upstream).
// newDRAM makes an arena, with values placed as the server places them, and a DRAM tier over it
// (now nil: the wall clock).
func newDRAM(t *testing.T, o slab.Options, now func() int64) (*slab.Arena, *dram.Tier) {
	t.Helper()
	o.ValueOffset = slab.DefaultValueOffset
	a, err := slab.New(o)
	if err != nil {
		t.Fatal(err)
	}
	dt, err := dram.New(dram.Options{Arena: a, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return a, dt
}

func newFixtureWith(t *testing.T, limit int64, opt func(*fixture, *Options)) *fixture {
	t.Helper()
	f := &fixture{}
	f.clock.Store(1_000_000)
	a, tr := newDRAM(t, slab.Options{Limit: limit, WaitTimeout: time.Second}, f.clock.Load)
	f.arena = a
	o := Options{Tiers: []tiers.Tier{tr}, Now: f.clock.Load}
	if opt != nil {
		opt(f, &o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.s, f.tier = s, tr
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("store close: %v", err)
		}
		if err := tr.Check(); err != nil {
			t.Errorf("tier check: %v", err)
		}
		_ = tr.Close()
		if st := a.Stats(); st.InUse != 0 {
			t.Errorf("%d bytes in use after close: a reference leaked", st.InUse)
		}
		if err := a.Check(); err != nil {
			t.Errorf("arena check: %v", err)
		}
		_ = a.Close()
	})
	return f
}

func (f *fixture) buf(t *testing.T, v string) *slab.Buf {
	t.Helper()
	b, err := f.arena.Alloc(len(v))
	if err != nil {
		t.Fatal(err)
	}
	copy(b.Bytes(), v)
	return b
}

func (f *fixture) set(t *testing.T, k, v string, o SetOptions) SetResult {
	t.Helper()
	b := f.buf(t, v)
	defer b.Release()
	res, err := f.s.Set(k, b, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) get(t *testing.T, k string) (string, bool) {
	t.Helper()
	b, ok, err := f.s.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "", false
	}
	defer b.Release()
	return string(b.Bytes()), true
}

func TestSetConditions(t *testing.T) {
	f := newFixture(t, 16<<20)
	if r := f.set(t, "k", "1", SetOptions{Cond: IfPresent}); r.Stored {
		t.Fatal("XX stored on a missing key")
	}
	if r := f.set(t, "k", "1", SetOptions{Cond: IfAbsent}); !r.Stored {
		t.Fatal("NX did not store on a missing key")
	}
	if r := f.set(t, "k", "2", SetOptions{Cond: IfAbsent}); r.Stored {
		t.Fatal("NX stored over a present key")
	}
	r := f.set(t, "k", "3", SetOptions{Cond: IfPresent, Get: true})
	if !r.Stored || r.Old == nil || string(r.Old.Bytes()) != "1" {
		t.Fatalf("XX GET = %+v", r)
	}
	r.Old.Release()
	if v, _ := f.get(t, "k"); v != "3" {
		t.Fatalf("value %q, want 3", v)
	}
}

func TestTTLAndKeepTTL(t *testing.T) {
	f := newFixture(t, 16<<20)
	now := f.clock.Load()
	f.set(t, "k", "v", SetOptions{ExpireAt: now + 5000})
	f.set(t, "k", "w", SetOptions{KeepTTL: true})
	if m, ok, _ := f.s.Stat("k"); !ok || m.ExpireAt != now+5000 {
		t.Fatalf("KEEPTTL lost the TTL: %+v", m)
	}
	f.set(t, "k", "x", SetOptions{})
	if m, _, _ := f.s.Stat("k"); m.ExpireAt != 0 {
		t.Fatal("plain SET kept the TTL")
	}
	if ok, _ := f.s.Expire("k", now+100, ExpireXX); ok {
		t.Fatal("EXPIRE XX applied to a key without TTL")
	}
	if ok, _ := f.s.Expire("k", now+100, ExpireNX); !ok {
		t.Fatal("EXPIRE NX refused a key without TTL")
	}
	if ok, _ := f.s.Expire("k", now+50, ExpireGT); ok {
		t.Fatal("EXPIRE GT applied a smaller TTL")
	}
	if ok, _ := f.s.Expire("k", now+50, ExpireLT); !ok {
		t.Fatal("EXPIRE LT refused a smaller TTL")
	}
	if ok, _ := f.s.Persist("k"); !ok {
		t.Fatal("PERSIST of a volatile key reported no change")
	}
	f.s.Expire("k", now+10, ExpireAlways)
	f.clock.Add(10)
	if _, ok := f.get(t, "k"); ok {
		t.Fatal("key readable at its expiry time")
	}
	f.set(t, "gone", "v", SetOptions{ExpireAt: f.clock.Load() - 1})
	if ok, _ := f.s.Exists("gone"); ok {
		t.Fatal("SET with a past expiry left the key")
	}
}

func TestGetDelGetEx(t *testing.T) {
	f := newFixture(t, 16<<20)
	f.set(t, "k", "v", SetOptions{})
	b, ok, err := f.s.GetEx("k", ExpireChange{Set: true, ExpireAt: f.clock.Load() + 1000})
	if err != nil || !ok || string(b.Bytes()) != "v" {
		t.Fatal("GETEX failed")
	}
	b.Release()
	if m, _, _ := f.s.Stat("k"); m.ExpireAt == 0 {
		t.Fatal("GETEX EX did not set a TTL")
	}
	b, ok, _ = f.s.GetDel("k")
	if !ok || string(b.Bytes()) != "v" {
		t.Fatal("GETDEL failed")
	}
	b.Release()
	if ok, _ := f.s.Exists("k"); ok {
		t.Fatal("GETDEL left the key")
	}
}

func TestMSetNX(t *testing.T) {
	f := newFixture(t, 16<<20)
	mk := func(kv ...string) []Pair {
		var ps []Pair
		for i := 0; i < len(kv); i += 2 {
			ps = append(ps, Pair{kv[i], f.buf(t, kv[i+1])})
		}
		return ps
	}
	rel := func(ps []Pair) {
		for _, p := range ps {
			p.Buf.Release()
		}
	}
	ps := mk("a", "1", "b", "2")
	if ok, err := f.s.MSet(ps, true); !ok || err != nil {
		t.Fatal("MSETNX on new keys failed")
	}
	rel(ps)
	ps = mk("b", "3", "c", "4")
	if ok, _ := f.s.MSet(ps, true); ok {
		t.Fatal("MSETNX stored although b exists")
	}
	rel(ps)
	if ok, _ := f.s.Exists("c"); ok {
		t.Fatal("MSETNX stored part of its keys")
	}
	if f.s.Len() != 2 {
		t.Fatalf("Len = %d, want 2", f.s.Len())
	}
}

// Concurrent writers of one key never leave a torn or mixed value: every
// read sees one writer's value whole.
func TestPerKeyAtomicity(t *testing.T) {
	f := newFixture(t, 64<<20)
	const size = 64 << 10
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(2)
		go func(w byte) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				f.set(t, "k", string(bytes.Repeat([]byte{'a' + w}, size)), SetOptions{})
			}
		}(byte(w))
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				v, ok := f.get(t, "k")
				if ok && (len(v) != size || v != strings.Repeat(v[:1], size)) {
					t.Error("torn value")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestScanAndFlush(t *testing.T) {
	f := newFixture(t, 16<<20)
	for i := 0; i < 100; i++ {
		f.set(t, fmt.Sprint("k", i), "v", SetOptions{})
	}
	seen := map[string]bool{}
	var c uint64
	for {
		c = f.s.Scan(c, 7, func(k string, _ tiers.Meta) { seen[k] = true })
		if c == 0 {
			break
		}
	}
	if len(seen) != 100 {
		t.Fatalf("scan saw %d keys, want 100", len(seen))
	}
	f.s.Flush()
	if f.s.Len() != 0 {
		t.Fatal("keys left after flush")
	}
	if st := f.arena.Stats(); st.InUse != 0 {
		t.Fatalf("flush left %d bytes in use", st.InUse)
	}
}

// A SET of a value larger than memory fails cleanly at allocation, before
// the store is touched, and the old value stays.
func TestValueLargerThanMemoryChangesNothing(t *testing.T) {
	f := newFixture(t, 4<<20)
	f.set(t, "k", "old", SetOptions{})
	if _, err := f.arena.Alloc(8 << 20); err == nil {
		t.Fatal("allocation larger than the arena succeeded")
	}
	if v, _ := f.get(t, "k"); v != "old" {
		t.Fatalf("value %q, want old", v)
	}
}

// When LMCache's chunk is evicted, its metadata goes too, so a lookup misses
// at once instead of finding metadata without a chunk.
func TestEvictedChunkTakesItsMetadata(t *testing.T) {
	f := newFixture(t, 8<<20)
	chunk := strings.Repeat("c", 3<<20)
	for i := 0; i < 4; i++ {
		k := fmt.Sprintf("model@1@0@%02x@bfloat16", i)
		f.set(t, k+"kv_bytes", chunk, SetOptions{})
		f.set(t, k+"metadata", strings.Repeat("m", 28), SetOptions{})
	}
	for i := 0; i < 4; i++ {
		k := fmt.Sprintf("model@1@0@%02x@bfloat16", i)
		_, chunkOK := f.get(t, k+"kv_bytes")
		_, metaOK := f.get(t, k+"metadata")
		if metaOK && !chunkOK {
			t.Errorf("%s: metadata outlived its chunk", k)
		}
	}
	if f.s.Stats().CompanionDrops == 0 {
		t.Fatal("no chunk was evicted: the test did not exercise eviction")
	}
}
