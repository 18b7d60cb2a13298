package rawblock

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"kvresp/slab"
	"kvresp/tiers"
)

func TestPutGetDelete(t *testing.T) {
	for _, bs := range []int{512, 4096} {
		dev := NewMemDevice(80<<20, bs, false)
		a := newArena(t)
		e := open(t, dev, a, func(o *Options) { o.RegionSize = 12 << 20 })
		sizes := []int{0, 28, bs - 1, bs, bs + 1, 1 << 20, 8 << 20}
		for i, n := range sizes {
			k := key(i)
			mustPut(t, e, a, k, value(n, i))
			wantValue(t, e, k, value(n, i))
			m, ok, _ := e.Stat(k)
			if !ok || m.Size != int64(n) {
				t.Fatalf("stat %q = %+v %v", k, m, ok)
			}
		}
		// overwrite with another size, delete
		for i, n := range sizes {
			mustPut(t, e, a, key(i), value(sizes[len(sizes)-1-i], i+100))
			_ = n
		}
		for i := range sizes {
			wantValue(t, e, key(i), value(sizes[len(sizes)-1-i], i+100))
		}
		if ok, err := e.Delete(key(2)); !ok || err != nil {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if get(t, e, key(2)) != nil {
			t.Fatal("deleted key still readable")
		}
		if ok, _ := e.Delete(key(2)); ok {
			t.Fatal("second delete reported the key")
		}
		if got := e.Len(); got != len(sizes)-1 {
			t.Fatalf("Len = %d", got)
		}
		if err := e.Check(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestValueOffset: values placed mid-page by the arena (slab.AllocValue) are written and read
// in place on a device whose direct I/O takes 512-byte aligned memory, at either block size,
// and an engine over a device that wants page-aligned memory refuses such an arena.
func TestValueOffset(t *testing.T) {
	for _, bs := range []int{512, 4096} {
		a := newArena(t)
		dev := NewMemDevice(64<<20, bs, false)
		e := open(t, dev, a, func(o *Options) { o.RegionSize = 8 << 20 })
		for i, n := range []int{48 << 10, 1 << 20, 1<<20 + 1, 3<<20 + 513} {
			key := fmt.Sprintf("k%d", i)
			v := value(n, i)
			mustPut(t, e, a, key, v)
			it, ok, err := e.Get(key)
			if err != nil || !ok {
				t.Fatalf("bs %d: get %s: %v, %v", bs, key, ok, err)
			}
			if off := slab.Addr(it.Buf.Bytes()) % 4096; off != slab.DefaultValueOffset || !bytes.Equal(it.Buf.Bytes(), v) {
				t.Errorf("bs %d: %d-byte value read back at page offset %d (want %d), equal %v", bs, n, off, slab.DefaultValueOffset, bytes.Equal(it.Buf.Bytes(), v))
			}
			it.Buf.Release()
		}
		strict := NewMemDevice(64<<20, 4096, false)
		strict.SetMemAlign(4096)
		if _, err := Open(Options{Device: strict, Arena: a, RegionSize: 1 << 20, Logger: quiet}); err == nil || !strings.Contains(err.Error(), "4096-byte aligned memory") {
			t.Errorf("an engine over a device that wants page-aligned memory took an arena with a value offset: %v", err)
		}
		// The device itself refuses what it cannot take.
		b, err := a.AllocValue(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		if err := strict.WriteAt(b.Bytes(), 0, ClassHot); !errors.Is(err, ErrUnaligned) {
			t.Errorf("a page-aligned-memory device wrote from offset %d: %v", slab.DefaultValueOffset, err)
		}
		b.Release()
	}
}

func TestRestart(t *testing.T) {
	dev := NewMemDevice(24<<20, 4096, false)
	a := newArena(t)
	e := open(t, dev, a, nil)
	want := map[string][]byte{}
	for i := 0; i < 300; i++ {
		v := value(i*37%9000, i)
		mustPut(t, e, a, key(i), v)
		want[key(i)] = v
	}
	for i := 0; i < 300; i += 7 {
		e.Delete(key(i))
		delete(want, key(i))
	}
	mustPut(t, e, a, key(1), value(5000, 5))
	want[key(1)] = value(5000, 5)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	dev2 := NewMemDeviceFrom(dev.Image(), 4096, false)
	e2 := open(t, dev2, a, nil)
	if e2.Len() != len(want) {
		t.Fatalf("Len after restart = %d, want %d", e2.Len(), len(want))
	}
	for i := 0; i < 300; i++ {
		if v, ok := want[key(i)]; ok {
			wantValue(t, e2, key(i), v)
		} else if get(t, e2, key(i)) != nil {
			t.Fatalf("deleted key %d came back", i)
		}
	}
}

func TestTTL(t *testing.T) {
	now := int64(1_000_000)
	dev := NewMemDevice(16<<20, 4096, false)
	a := newArena(t)
	clock := func() int64 { return now }
	e := open(t, dev, a, func(o *Options) { o.Now = clock })
	if err := put(t, e, a, "a", value(100, 1), now+1000); err != nil {
		t.Fatal(err)
	}
	mustPut(t, e, a, "b", value(100, 2))
	if ok, _ := e.SetExpire("b", now+500); !ok {
		t.Fatal("SetExpire missed")
	}
	wantValue(t, e, "a", value(100, 1))
	now += 600
	if get(t, e, "b") != nil {
		t.Fatal("b did not expire")
	}
	wantValue(t, e, "a", value(100, 1))
	now += 600
	if get(t, e, "a") != nil {
		t.Fatal("a did not expire")
	}
	// c gets a TTL and loses it again (PERSIST): both changes are on the device.
	if err := put(t, e, a, "c", value(100, 3), now+100); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.SetExpire("c", 0); !ok {
		t.Fatal("SetExpire(0) missed")
	}
	e.Close()
	now += 1000
	e2 := open(t, NewMemDeviceFrom(dev.Image(), 4096, false), a, func(o *Options) { o.Now = clock })
	// a and b expired (b's expiry was written with its entry): neither comes back.
	if e2.Len() != 1 {
		t.Fatalf("Len after restart = %d, want 1 (only c)", e2.Len())
	}
	if m, ok, _ := e2.Stat("c"); !ok || m.ExpireAt != 0 {
		t.Fatalf("c after restart: %+v %v, want present without expiry", m, ok)
	}
}

func TestScan(t *testing.T) {
	dev := NewMemDevice(16<<20, 512, false)
	a := newArena(t)
	e := open(t, dev, a, nil)
	const n = 500
	for i := 0; i < n; i++ {
		mustPut(t, e, a, key(i), value(28, i))
	}
	seen := map[string]int{}
	var cur uint64
	for {
		cur = e.Scan(cur, 17, func(k string, m tiers.Meta) { seen[k]++ })
		if cur == 0 {
			break
		}
	}
	if len(seen) != n {
		t.Fatalf("scan saw %d keys, want %d", len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Fatalf("scan returned %q %d times", k, c)
		}
	}
	if k, ok := e.RandomKey(); !ok || seen[k] != 1 {
		t.Fatalf("RandomKey = %q %v", k, ok)
	}
	e.Flush()
	if e.Len() != 0 || get(t, e, key(1)) != nil {
		t.Fatal("Flush left entries")
	}
	mustPut(t, e, a, "after", value(10, 1))
	e.Close()
	e2 := open(t, NewMemDeviceFrom(dev.Image(), 512, false), a, nil)
	if e2.Len() != 1 {
		t.Fatalf("after Flush and restart Len = %d, want 1", e2.Len())
	}
}
