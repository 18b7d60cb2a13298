package dax

import (
	"math/rand/v2"
	"testing"
)

// TestDirtySet adds random ranges and checks the invariants (sorted, disjoint, not adjacent,
// at most maxDirty) and that every byte added is covered; with few enough ranges to need no
// merging, the set covers exactly what was added.
func TestDirtySet(t *testing.T) {
	const size = 1 << 16
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var s dirtySet
		model := make([]bool, size)
		adds := 1 + rng.IntN(3*maxDirty)
		for i := 0; i < adds; i++ {
			start := int64(rng.IntN(size))
			end := min(start+int64(rng.IntN(size/16)), size)
			s.add(start, end)
			for b := start; b < end; b++ {
				model[b] = true
			}
		}
		covered := make([]bool, size)
		for i, r := range s.r {
			if r[0] >= r[1] {
				t.Fatalf("round %d: empty range %v", round, r)
			}
			if i > 0 && s.r[i-1][1] >= r[0] {
				t.Fatalf("round %d: ranges %v and %v overlap or touch", round, s.r[i-1], r)
			}
			for b := r[0]; b < r[1]; b++ {
				covered[b] = true
			}
		}
		if len(s.r) > maxDirty {
			t.Fatalf("round %d: %d ranges, bound %d", round, len(s.r), maxDirty)
		}
		exact := adds <= maxDirty
		for b := range model {
			if model[b] && !covered[b] {
				t.Fatalf("round %d: byte %d written but not covered", round, b)
			}
			if exact && covered[b] && !model[b] {
				t.Fatalf("round %d: byte %d covered but never written (%d adds)", round, b, adds)
			}
		}
		if s.take(); s.r != nil {
			t.Fatalf("round %d: take left %v", round, s.r)
		}
	}
}
