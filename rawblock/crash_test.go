package rawblock

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// keyState is the model of one key: its value (nil = absent) as of the last Sync, and the
// states it went through since.
type keyState struct {
	durable []byte
	later   [][]byte
}

// TestCrash runs write storms of overwrites and deletes from several goroutines with random
// Syncs, takes a power-cut image (unflushed block writes randomly lost), reopens, and checks
// every key against the model; each round continues from the previous round's image. It runs
// both write paths: MemDevice's copy by CPU (the DAX tier's) and, behind a FaultDevice that
// hides it, the NVMe tier's.
func TestCrash(t *testing.T) {
	for _, syncMode := range []bool{false, true} {
		for _, byCPU := range []bool{true, false} {
			t.Run(fmt.Sprintf("sync=%v/cpu=%v", syncMode, byCPU), func(t *testing.T) { crashRounds(t, syncMode, byCPU) })
		}
	}
}

func crashRounds(t *testing.T, syncMode, byCPU bool) {
	const (
		keys    = 64
		workers = 4
		rounds  = 8
	)
	a := newArena(t)
	model := make([]keyState, keys)
	img := make([]byte, 64<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < rounds; round++ {
		dev := NewMemDeviceFrom(img, 512, true)
		var d Device = dev
		if !byCPU {
			d = NewFaultDevice(dev)
		}
		e, err := Open(Options{Device: d, Arena: a, RegionSize: 1 << 20, FlushInterval: -1, Logger: quiet, Sync: syncMode, IOBuffers: 8})
		if err != nil {
			t.Fatalf("round %d: open: %v", round, err)
		}
		for k := range model {
			got := get(t, e, key(k))
			ok := bytes.Equal(got, model[k].durable)
			for _, v := range model[k].later {
				ok = ok || bytes.Equal(got, v)
			}
			if !ok {
				t.Fatalf("round %d: key %d: got %d bytes, not the durable value (%d bytes) nor one of %d later ones", round, k, len(got), len(model[k].durable), len(model[k].later))
			}
			if syncMode && !bytes.Equal(got, model[k].durable) && len(model[k].later) == 0 {
				t.Fatalf("round %d: key %d acknowledged durable but lost", round, k)
			}
			model[k] = keyState{durable: got}
		}
		if err := e.Check(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for phase := 0; phase < 4; phase++ {
			var wg sync.WaitGroup
			var mu sync.Mutex
			for w := 0; w < workers; w++ {
				seed := rng.Uint64()
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(seed, 3))
					for op := 0; op < 40; op++ {
						k := r.IntN(keys/workers)*workers + w
						var v []byte
						if r.IntN(4) == 0 {
							if _, err := e.Delete(key(k)); err != nil {
								t.Errorf("delete: %v", err)
								return
							}
						} else {
							v = value(1+r.IntN(3*4096), r.Int())
							if err := put(t, e, a, key(k), v, 0); err != nil {
								t.Errorf("put: %v", err)
								return
							}
						}
						mu.Lock()
						if syncMode {
							model[k] = keyState{durable: v}
						} else {
							model[k].later = append(model[k].later, v)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if !syncMode && rng.IntN(2) == 0 {
				if err := e.Sync(); err != nil {
					t.Fatal(err)
				}
				for k := range model {
					if n := len(model[k].later); n > 0 {
						model[k] = keyState{durable: model[k].later[n-1]}
					}
				}
			}
		}
		img = dev.CrashImage(rng.Uint64())
		e.Close()
	}
}
