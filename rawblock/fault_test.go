package rawblock

import (
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"

	"kvresp/tiers"
)

func TestCorruption(t *testing.T) {
	dev := NewMemDevice(24<<20, 4096, false)
	a := newArena(t)
	e := open(t, dev, a, nil)
	const n = 40
	for i := 0; i < n; i++ {
		mustPut(t, e, a, key(i), value(100<<10, i))
	}
	locOf := func(k string) entryLoc { l, _ := e.lookup(keyHash(k), false); return l }
	victim := locOf(key(3))
	other := locOf(key(35))
	if victim.region == other.region {
		t.Fatal("test keys share a region")
	}
	e.Close()
	img := dev.Image()
	d2 := NewMemDeviceFrom(img, 4096, false)
	valueOff := e.regionOff(victim.region) + int64(victim.v.off512)*512 + int64(victim.v.hk512)*512 + 1000
	d2.Corrupt(valueOff)
	d2.Corrupt(10) // superblock copy A
	// The summary of the first region (sealed, not holding either test key's region).
	sumRegion := 0
	for sumRegion == victim.region || sumRegion == other.region {
		sumRegion++
	}
	d2.Corrupt(e.regionOff(sumRegion) + e.regSize - 4096 + 10)
	rep, err := Check(d2)
	if err != nil {
		t.Fatal(err)
	}
	var super, summary, entry bool
	for _, c := range rep.Corruptions {
		s := c.String()
		super = super || c.Region == -1
		summary = summary || strings.Contains(s, "summary")
		entry = entry || (c.Region == victim.region && errors.Is(c.Err, ErrChecksum))
	}
	if !super || !summary || !entry {
		t.Fatalf("Check missed corruption (super %v summary %v entry %v): %v", super, summary, entry, rep.Corruptions)
	}
	e2 := open(t, d2, a, nil)
	if get(t, e2, key(3)) != nil {
		t.Fatal("corrupt value returned")
	}
	if s := e2.EngineStats(); s.ChecksumFailures == 0 || e2.Stats().Errors == 0 {
		t.Fatalf("checksum failure not counted: %+v", s)
	}
	for i := 0; i < n; i++ {
		if i == 3 {
			continue
		}
		if got := get(t, e2, key(i)); got != nil {
			wantValue(t, e2, key(i), value(100<<10, i))
		} else if locOf(key(i)).region != sumRegion {
			t.Fatalf("key %d lost", i)
		}
	}
	// The superblock copy was repaired.
	if rep, _ := Check(NewMemDeviceFrom(d2.Image(), 4096, false)); rep.SuperCopies[0] != nil {
		t.Fatalf("superblock copy not repaired: %v", rep.SuperCopies[0])
	}
}

func TestForeignDevice(t *testing.T) {
	img := make([]byte, 16<<20)
	copy(img, "some filesystem")
	a := newArena(t)
	_, err := Open(Options{Device: NewMemDeviceFrom(img, 4096, false), Arena: a, RegionSize: 1 << 20, Logger: quiet})
	if !errors.Is(err, ErrForeign) {
		t.Fatalf("open of a foreign device: %v", err)
	}
	open(t, NewMemDeviceFrom(img, 4096, false), a, func(o *Options) { o.Format = true })
}

func TestFaults(t *testing.T) {
	mem := NewMemDevice(24<<20, 4096, false)
	dev := NewFaultDevice(mem)
	a := newArena(t)
	e := open(t, dev, a, nil)
	for i := 0; i < 20; i++ {
		mustPut(t, e, a, key(i), value(20<<10, i))
	}
	dev.Inject(Fault{Op: OpRead, Err: syscall.EIO, Count: 3})
	misses := 0
	for i := 0; i < 20; i++ {
		if got := get(t, e, key(i)); got == nil {
			misses++
		} else {
			wantValue(t, e, key(i), value(20<<10, i))
		}
	}
	if misses != 3 || e.EngineStats().IOErrors < 3 || e.Stats().Errors < 3 {
		t.Fatalf("read faults: %d misses, stats %+v", misses, e.EngineStats())
	}
	dev.Clear()
	dev.Inject(Fault{Op: OpWrite, Err: syscall.ENOSPC, Count: 2})
	failed := 0
	for i := 20; i < 30; i++ {
		if err := put(t, e, a, key(i), value(20<<10, i), 0); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("put error %v", err)
			}
			failed++
			if get(t, e, key(i)) != nil {
				t.Fatal("failed put readable")
			}
		}
	}
	if failed == 0 || dev.Injected() != 5 { // a fault may hit a region header instead of an entry
		t.Fatalf("%d puts failed, %d faults injected", failed, dev.Injected())
	}
	dev.Clear()
	for i := 0; i < 30; i++ {
		mustPut(t, e, a, key(i), value(10<<10, i+1))
		wantValue(t, e, key(i), value(10<<10, i+1))
	}
	e.Close()
	e2 := open(t, NewMemDeviceFrom(mem.Image(), 4096, false), a, nil)
	for i := 0; i < 30; i++ {
		wantValue(t, e2, key(i), value(10<<10, i+1))
	}
}

// TestReclaim fills small regions many times over: FIFO reclaim evicts, recently read entries
// are reinserted into cold regions, and concurrent readers get the right bytes or a miss.
func TestReclaim(t *testing.T) {
	dev := NewMemDevice(12<<20, 4096, false)
	a := newArena(t)
	var evMu sync.Mutex
	evicted := map[string]bool{}
	e := open(t, dev, a, func(o *Options) {
		o.ReinsertPercent = 50
		o.OnEvict = func(k string, it tiers.Item) func() {
			if it.Buf == nil {
				t.Error("evicted without a value")
			}
			evMu.Lock()
			evicted[k] = true
			evMu.Unlock()
			return nil
		}
	})
	const n = 400
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := i % n
				if got := get(t, e, key(k)); got != nil && string(got) != string(value(30<<10, k)) {
					t.Errorf("key %d: wrong bytes", k)
					return
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		mustPut(t, e, a, key(i), value(30<<10, i))
		if i%5 == 0 { // keep key 0..4 hot
			get(t, e, key(i%5))
		}
	}
	close(stop)
	wg.Wait()
	s := e.EngineStats()
	if s.Reclaims == 0 || e.Stats().Evictions == 0 || s.Reinsertions == 0 {
		t.Fatalf("no reclaim/eviction/reinsertion: %+v", s)
	}
	evMu.Lock()
	nev := len(evicted)
	evMu.Unlock()
	if nev == 0 {
		t.Fatal("OnEvict never called")
	}
	// A reinserted entry lives in a cold region.
	cold := 0
	for i := 0; i < 5; i++ {
		if l, ok := e.lookup(keyHash(key(i)), false); ok && dev.ClassAt(e.regionOff(l.region)+int64(l.v.off512)*512) == ClassCold {
			cold++
			wantValue(t, e, key(i), value(30<<10, i))
		}
	}
	if cold == 0 || dev.Stats().WriteBytes[ClassCold] == 0 || dev.Stats().Trims == 0 {
		t.Fatalf("no cold placement (%d hot keys cold), device %+v", cold, dev.Stats())
	}
	for i := 0; i < n; i++ {
		if got := get(t, e, key(i)); got != nil && string(got) != string(value(30<<10, i)) {
			t.Fatalf("key %d wrong after reclaim", i)
		}
	}
	e.Close()
	e2 := open(t, NewMemDeviceFrom(dev.Image(), 4096, false), a, nil)
	for i := 0; i < n; i++ {
		if got := get(t, e2, key(i)); got != nil && string(got) != string(value(30<<10, i)) {
			t.Fatalf("key %d wrong after restart", i)
		}
	}
}
