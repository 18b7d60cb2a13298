package main

import (
	"os"
	"path/filepath"
	"testing"

	"kvresp/internal/memsize"
)

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
		if got := memsize.Format(in); got != want {
			t.Errorf("memsize.Format(%d) = %q, want %q", in, got, want)
		}
	}
}
