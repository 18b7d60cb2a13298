// Package memsize reads and writes memory sizes the way redis-server does
// (memtoull in util.c): a bare number or "b" is bytes, k/m/g are powers of
// 1000 and kb/mb/gb powers of 1024, units in any case. The config loader and
// the load generator share it, so "32mb" means one thing everywhere.
package memsize

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

var units = map[string]int64{
	"": 1, "b": 1,
	"k": 1000, "kb": 1 << 10,
	"m": 1000 * 1000, "mb": 1 << 20,
	"g": 1000 * 1000 * 1000, "gb": 1 << 30,
}

// IsUnit reports whether u (any case) is one of Parse's units.
func IsUnit(u string) bool {
	_, ok := units[strings.ToLower(u)]
	return ok
}

// Parse reads "4gb", "512mb", "100k", "1048576". Negative numbers,
// fractions, spaces and results above math.MaxInt64 are refused.
func Parse(s string) (int64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	mul, ok := units[strings.ToLower(s[i:])]
	if i == 0 || !ok {
		return 0, errors.New("not a size (a number of bytes with an optional unit b, k, kb, m, mb, g, gb)")
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mul {
		return 0, errors.New("size too large")
	}
	return n * mul, nil
}

// Format writes n in the largest binary unit that divides it ("32mb",
// "28"), in a form Parse reads back.
func Format(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
