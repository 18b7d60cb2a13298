package bench

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are redis-server's memory units, as in kvresp's own config: a
// bare number or "b" is bytes, k/m/g are powers of 1000, kb/mb/gb powers
// of 1024 (so "32mb" is a 32 MiB chunk).
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1000, "kb": 1 << 10,
	"m": 1000 * 1000, "mb": 1 << 20,
	"g": 1000 * 1000 * 1000, "gb": 1 << 30,
}

// parseSize parses "28", "1048576", "4mb", "2gb" (units case-insensitive).
func parseSize(s string) (int64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	mul, ok := sizeUnits[strings.ToLower(s[i:])]
	if i == 0 || !ok {
		return 0, errors.New("not a size (a number of bytes with an optional unit b, k, kb, m, mb, g, gb)")
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mul {
		return 0, errors.New("size too large")
	}
	return n * mul, nil
}

// sizeFlag is a flag.Value holding a size.
type sizeFlag int64

func (f *sizeFlag) String() string { return formatSize(int64(*f)) }

func (f *sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*f = sizeFlag(n)
	return nil
}

// formatSize writes n in the largest binary unit that divides it, in the
// form parseSize reads ("32mb", "28").
func formatSize(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}} {
		if n != 0 && n%u.m == 0 {
			return fmt.Sprintf("%d%s", n/u.m, u.s)
		}
	}
	return strconv.FormatInt(n, 10)
}
