package rawblock

import (
	"bytes"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// Model: last put value and expiry per key; after restarts with the clock moved past expiries,
// a key must read as its last value (unexpired) or miss; never an older value.
func TestNoResurrectionAcrossRestarts(t *testing.T) {
	a := newArena(t)
	var now atomic.Int64
	now.Store(1_000_000)
	img := make([]byte, 6<<20)
	type st struct {
		v   []byte
		exp int64
	}
	const keys = 300
	model := make([]st, keys)
	rng := rand.New(rand.NewPCG(3, 4))
	bad := 0
	for round := 0; round < 60; round++ {
		dev := NewMemDeviceFrom(img, 512, false)
		e, err := Open(Options{Device: dev, Arena: a, RegionSize: 256 << 10, FlushInterval: -1, Logger: quiet, IOBuffers: 8, Now: now.Load, ReinsertPercent: 50})
		if err != nil {
			t.Fatal(err)
		}
		for k := range model {
			got := get(t, e, key(k))
			if got == nil {
				continue
			}
			m := model[k]
			if m.v == nil || !bytes.Equal(got, m.v) || (m.exp != 0 && m.exp <= now.Load()) {
				bad++
				t.Errorf("round %d key %d: got %d bytes; last put %d bytes exp %d now %d", round, k, len(got), len(m.v), m.exp, now.Load())
			}
		}
		for i := 0; i < 400; i++ {
			k := rng.IntN(keys)
			switch r := rng.IntN(10); {
			case r < 5:
				get(t, e, key(k))
			default:
				v := value(2000+rng.IntN(6000), rng.IntN(1<<30))
				var exp int64
				if rng.IntN(3) == 0 {
					exp = now.Load() + 500
				}
				if err := put(t, e, a, key(k), v, exp); err != nil {
					t.Fatal(err)
				}
				model[k] = st{v, exp}
			}
		}

		e.Close()
		img = dev.Image()
		now.Add(1000)
	}
	if bad > 0 {
		t.Fatalf("%d resurrected values", bad)
	}
}
