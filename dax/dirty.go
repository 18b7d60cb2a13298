package dax

import "slices"

// maxDirty bounds the ranges a dirtySet keeps. The log writes sequentially into a few open
// regions (one per placement class) plus headers and summaries, so a handful of ranges cover a
// flush interval; past the bound, nearby ranges merge.
const maxDirty = 32

// dirtySet is the set of byte ranges of a plain file mapping written since the last Flush: at
// most maxDirty sorted, disjoint, non-adjacent [start, end) ranges. Past the bound the two
// ranges with the smallest gap between them merge, so the set may cover clean bytes too, which
// costs msync a walk over pages it finds clean, never a missed page.
type dirtySet struct {
	r [][2]int64
}

// add records [start, end).
func (s *dirtySet) add(start, end int64) {
	if start >= end {
		return
	}
	// The first range that ends at or after start: every range before it lies wholly before.
	i, _ := slices.BinarySearchFunc(s.r, start, func(r [2]int64, v int64) int {
		if r[1] < v {
			return -1
		}
		return 1
	})
	j := i
	for j < len(s.r) && s.r[j][0] <= end {
		start = min(start, s.r[j][0])
		end = max(end, s.r[j][1])
		j++
	}
	s.r = slices.Replace(s.r, i, j, [2]int64{start, end})
	if len(s.r) > maxDirty {
		k := 0
		for m := 1; m+1 < len(s.r); m++ {
			if s.r[m+1][0]-s.r[m][1] < s.r[k+1][0]-s.r[k][1] {
				k = m
			}
		}
		s.r = slices.Replace(s.r, k, k+2, [2]int64{s.r[k][0], s.r[k+1][1]})
	}
}

// take returns the ranges and empties the set.
func (s *dirtySet) take() [][2]int64 {
	r := s.r
	s.r = nil
	return r
}
