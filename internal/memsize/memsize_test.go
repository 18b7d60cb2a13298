package memsize

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // -1: error
	}{
		{"0", 0},
		{"1048576", 1048576},
		{"7b", 7},
		{"7B", 7},
		{"100k", 100_000},
		{"100K", 100_000},
		{"100kb", 100 << 10},
		{"100KB", 100 << 10},
		{"3m", 3_000_000},
		{"512mb", 512 << 20},
		{"512Mb", 512 << 20},
		{"2g", 2_000_000_000},
		{"4gb", 4 << 30},
		{"4GB", 4 << 30},
		{"9223372036854775807", math.MaxInt64},
		{"8589934591gb", 8589934591 << 30},
		{"", -1},
		{"gb", -1},
		{"-1", -1},
		{"+1", -1},
		{"1.5gb", -1},
		{"1 gb", -1},
		{" 1", -1},
		{"1tb", -1},
		{"1kib", -1},
		{"9223372036854775808", -1},
		{"8589934592gb", -1},
		{"99999999999999999999999", -1},
	} {
		got, err := Parse(tc.in)
		if tc.want < 0 {
			if err == nil {
				t.Errorf("Parse(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatParsesBack(t *testing.T) {
	for _, n := range []int64{0, 28, 1000, 1 << 10, 4 << 20, 32 << 20, 3 << 30, 1<<20 + 1, math.MaxInt64} {
		if back, err := Parse(Format(n)); err != nil || back != n {
			t.Errorf("Format(%d) = %q reads back as %d, %v", n, Format(n), back, err)
		}
	}
	if got := Format(32 << 20); got != "32mb" {
		t.Errorf("Format(32 MiB) = %q, want 32mb", got)
	}
}

// FuzzParse: never panics; accepted sizes are non-negative and written
// in digits plus a known unit, and a plain number reads back as itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "4gb", "512MB", "100k", "9223372036854775807", "8589934592gb", "-1", "1.5g", "", "gb", "50%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("Parse(%q) = %d < 0", s, n)
		}
		digits := strings.TrimRight(s, "bBkKmMgG")
		if ok := IsUnit(s[len(digits):]); !ok || digits == "" {
			t.Fatalf("Parse(%q) accepted a malformed size", s)
		}
		back, err := Parse(strconv.FormatInt(n, 10))
		if err != nil || back != n {
			t.Fatalf("Parse(%d) = %d, %v", n, back, err)
		}
	})
}
