package main

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
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
		got, err := parseSize(tc.in)
		if tc.want < 0 {
			if err == nil {
				t.Errorf("parseSize(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestParseMemoryPercent(t *testing.T) {
	mem, err := physicalMemory()
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		in   string
		want int64 // -1: error
	}{
		{"50%", mem * 50 / 100},
		{"1%", mem / 100},
		{"100%", mem * 100 / 100},
		{"4gb", 4 << 30},
		{"0%", -1},
		{"101%", -1},
		{"-5%", -1},
		{"12.5%", -1},
		{"%", -1},
		{"50%%", -1},
	} {
		got, err := parseMemory(tc.in)
		if tc.want < 0 {
			if err == nil {
				t.Errorf("parseMemory(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestMemTotal(t *testing.T) {
	dir := t.TempDir()
	f := func(content string, want int64) {
		t.Helper()
		p := filepath.Join(dir, "meminfo")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := memTotal(p)
		if want < 0 {
			if err == nil {
				t.Errorf("memTotal(%q) = %d, want an error", content, got)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("memTotal(%q) = %d, %v; want %d", content, got, err, want)
		}
	}
	f("MemTotal:       24684092 kB\nMemFree:        24032312 kB\n", 24684092<<10)
	f("MemFree: 1 kB\nMemTotal: 2048 kB\n", 2048<<10)
	f("MemFree: 1 kB\n", -1)
	f("MemTotal: lots kB\n", -1)
	f("MemTotal: 0 kB\n", -1)
	if _, err := memTotal(filepath.Join(dir, "missing")); err == nil {
		t.Error("memTotal of a missing file: no error")
	}
}

func TestFormatUnit(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 1: "1", 1024: "1kb", 1536: "1536", 512 << 20: "512mb", 3 << 30: "3gb"} {
		if got := formatUnit(in); got != want {
			t.Errorf("formatUnit(%d) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseSize: never panics; accepted sizes are non-negative and written
// in digits plus a known unit, and a plain number reads back as itself.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "4gb", "512MB", "100k", "9223372036854775807", "8589934592gb", "-1", "1.5g", "", "gb", "50%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("parseSize(%q) = %d < 0", s, n)
		}
		digits := strings.TrimRight(s, "bBkKmMgG")
		if _, ok := sizeUnits[strings.ToLower(s[len(digits):])]; !ok || digits == "" {
			t.Fatalf("parseSize(%q) accepted a malformed size", s)
		}
		back, err := parseSize(strconv.FormatInt(n, 10))
		if err != nil || back != n {
			t.Fatalf("parseSize(%d) = %d, %v", n, back, err)
		}
	})
}
