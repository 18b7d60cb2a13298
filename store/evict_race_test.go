package store

import (
	"fmt"
	"sync"
	"testing"
)

// Owners SET then DEL their own keys while fillers push DRAM into eviction. A DEL'd key must
// stay absent: a demotion of its old value that lands after the DEL resurrects it.
func TestEvictionRacingDelete(t *testing.T) {
	tr := newTiered(t, 8<<20, nil, Options{DemoteQueue: 64})
	s := tr.s
	const owners, rounds = 4, 300
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for f := 0; f < 2; f++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				b, err := tr.arena.Alloc(64 << 10)
				if err != nil {
					continue
				}
				_, _ = s.Set(fmt.Sprintf("fill-%d-%d", f, i%200), b, SetOptions{})
				b.Release()
			}
		}()
	}
	for i := 0; i < 300; i++ {
		b, _ := tr.arena.Alloc(64 << 10)
		_, _ = s.Set(fmt.Sprintf("pre-%d", i), b, SetOptions{})
		b.Release()
	}
	var bad sync.Map
	var ow sync.WaitGroup
	for o := 0; o < owners; o++ {
		ow.Add(1)
		go func() {
			defer ow.Done()
			for r := 0; r < rounds; r++ {
				k := fmt.Sprintf("own-%d-%d", o, r)
				b, err := tr.arena.Alloc(64 << 10)
				if err != nil {
					continue
				}
				b.Bytes()[0] = byte(r)
				_, _ = s.Set(k, b, SetOptions{})
				b.Release()
				if r >= 40 {
					if _, err := s.Delete(fmt.Sprintf("own-%d-%d", o, r-40)); err != nil {
						t.Error(err)
					}
				}
			}
			for r := rounds - 40; r < rounds; r++ {
				_, _ = s.Delete(fmt.Sprintf("own-%d-%d", o, r))
			}
		}()
	}
	ow.Wait()
	close(stop)
	wg.Wait()
	s.dem.close()
	for o := 0; o < owners; o++ {
		for r := 0; r < rounds; r++ {
			k := fmt.Sprintf("own-%d-%d", o, r)
			if b, ok, _ := s.Get(k); ok {
				b.Release()
				bad.Store(k, true)
			}
		}
	}
	st := s.Stats()
	t.Logf("demoted %d dropped %d cancelled %d tiers %+v", st.Demoted, st.DemoteDropped, st.DemoteCancelled, st.Tiers)
	n := 0
	bad.Range(func(k, _ any) bool { n++; t.Logf("deleted key back: %v", k); return n < 5 })
	if n > 0 {
		t.Fatalf("deleted keys came back")
	}
	if st.Demoted == 0 {
		t.Fatal("nothing was demoted: the test did not race deletes against demotions")
	}
}
