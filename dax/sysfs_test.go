package dax

import (
	"strconv"
	"testing"
)

func TestParseSysfsSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"2097152\n", 2 << 20, true},
		{"536870912", 512 << 20, true},
		{"0\n", 0, true},
		{"", 0, false},
		{"\n", 0, false},
		{"-1\n", 0, false},
		{"+5\n", 0, false},
		{"0x200000\n", 0, false},
		{"2097152 \n", 0, false},
		{"99999999999999999999\n", 0, false},
	} {
		got, err := parseSysfsSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSysfsSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseSysfsSize(f *testing.F) {
	for _, s := range []string{"2097152\n", "0", "", "-1", "18446744073709551615\n", "1\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSysfsSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("parseSysfsSize(%q) = %d, negative", s, n)
		}
		if m, err := parseSysfsSize(strconv.FormatInt(n, 10) + "\n"); err != nil || m != n {
			t.Fatalf("%d does not read back: %d, %v", n, m, err)
		}
	})
}
