//go:build linux

package dax

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestDetectFlush cross-checks the CPUID detection with the kernel's view of the CPU.
func TestDetectFlush(t *testing.T) {
	if lineSize != 64 {
		t.Errorf("cache line size %d, want 64 on x86-64", lineSize)
	}
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skipf("no /proc/cpuinfo: %v", err)
	}
	var flags []string
	for _, l := range strings.Split(string(info), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "flags" {
			flags = strings.Fields(v)
			break
		}
	}
	has := func(f string) bool {
		for _, g := range flags {
			if g == f {
				return true
			}
		}
		return false
	}
	want := opCLFLUSH
	switch {
	case has("clwb"):
		want = opCLWB
	case has("clflushopt"):
		want = opCLFLUSHOPT
	}
	if lineOp != want {
		t.Errorf("detected %s, /proc/cpuinfo says %s", opNames[lineOp], opNames[want])
	}
	t.Logf("cache-line write-back: %s, %d-byte lines", opNames[lineOp], lineSize)
}

// TestWriteLines runs every available write-back loop over aligned and unaligned ranges of an
// off-heap buffer: the bytes stay as they were.
func TestWriteLines(t *testing.T) {
	a := newTestMapping(t, 1<<20)
	for i := range a {
		a[i] = byte(i * 7)
	}
	want := bytes.Clone(a)
	for op := opCLFLUSH; op <= lineOp; op++ {
		for _, r := range [][2]int{{0, 0}, {0, 1}, {1, 2}, {63, 65}, {64, 128}, {100, 1 << 20}, {0, 1 << 20}} {
			writeLines(op, a[r[0]:r[1]])
		}
		sfence()
	}
	if !bytes.Equal(a, want) {
		t.Fatal("writing cache lines back changed the bytes")
	}
}
