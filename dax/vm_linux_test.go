//go:build linux

package dax

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"kvresp/rawblock"
	"kvresp/slab"
)

// Tests on the test machine (make vm-test: QEMU with an NVDIMM whose fsdax namespace holds an
// ext4 filesystem mounted -o dax at KVRESP_TEST_PMEM_DIR). Outside it they skip; inside it
// (KVRESP_VM=1) a missing DAX directory fails them.
//
// Phase 1 maps a file there, which must get MAP_SYNC (the test fails if the kernel refused it:
// the tier would then be durable only through msync), puts values through the log with
// Options.Sync, appending each acknowledged one to a manifest file (O_SYNC) beside it, and
// leaves the log open: the guest is then powered off without a clean shutdown. Phase 2, on the
// next boot, recovers the log and finds every value of the manifest exactly, and kvresp check
// finds the image sound.

const (
	vmImage    = "kvresp-vm.dax"
	vmManifest = "kvresp-vm.acked"
	vmDevSize  = 96 << 20
	vmKeys     = 48
)

// vmPmemDir returns the DAX directory and the boot phase, or skips outside the machine.
func vmPmemDir(t *testing.T) (string, int) {
	t.Helper()
	if os.Getenv("KVRESP_VM") == "" {
		t.Skip("runs on the test machine (make vm-test)")
	}
	dir := os.Getenv("KVRESP_TEST_PMEM_DIR")
	if dir == "" {
		t.Fatal("KVRESP_VM is set but KVRESP_TEST_PMEM_DIR (a filesystem mounted -o dax) is not")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("KVRESP_TEST_PMEM_DIR=%s: not a directory (%v)", dir, err)
	}
	phase, err := strconv.Atoi(os.Getenv("KVRESP_VM_PHASE"))
	if err != nil {
		t.Fatalf("KVRESP_VM_PHASE=%q: %v", os.Getenv("KVRESP_VM_PHASE"), err)
	}
	return dir, phase
}

// vmOpen opens the image on the DAX filesystem and requires what makes it persistent memory.
func vmOpen(t *testing.T, path string, size int64) *Device {
	t.Helper()
	d, err := Open(Options{Path: path, Size: size, Logger: quiet})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	st := d.Stats()
	if !st.MapSync || st.Mode != ModeFSDAX || st.Flusher == "msync" {
		d.Close()
		t.Fatalf("%s on a filesystem mounted -o dax: mode %s, MAP_SYNC %v, flush %s; want fsdax with MAP_SYNC (was MAP_SYNC refused?)", path, st.Mode, st.MapSync, st.Flusher)
	}
	t.Logf("%s: mode %s, MAP_SYNC, cache-line flush %s, %d bytes", path, st.Mode, st.Flusher, st.Size)
	return d
}

// vmValue is version ver of key i: LMCache metadata, small and large chunks.
func vmValue(i, ver int) []byte {
	return value([]int{28, 100 << 10, 600 << 10, 3<<20 + 123}[i%4], i*1000+ver)
}

// TestVMDaxPowerCut is phase 1 (write, then the power is cut) or phase 2 (recover, verify).
func TestVMDaxPowerCut(t *testing.T) {
	dir, phase := vmPmemDir(t)
	path, manifest := filepath.Join(dir, vmImage), filepath.Join(dir, vmManifest)
	a, err := slab.New(slab.Options{Limit: 256 << 20, ValueOffset: slab.DefaultValueOffset})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	switch phase {
	case 1:
		vmPhase1(t, a, path, manifest)
	case 2:
		vmPhase2(t, a, path, manifest)
	default:
		t.Skipf("nothing to do in phase %d", phase)
	}
}

func vmPhase1(t *testing.T, a *slab.Arena, path, manifest string) {
	for _, p := range []string{path, manifest} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	d := vmOpen(t, path, vmDevSize)
	e, err := rawblock.Open(rawblock.Options{Device: d, Arena: a, RegionSize: 4 << 20, Sync: true, FlushInterval: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	m, err := os.OpenFile(manifest, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syncDir(filepath.Dir(manifest)); err != nil {
		t.Fatal(err)
	}
	// Every key once, then a third of them again: the second version must win.
	ops := 0
	for round := 1; round <= 2; round++ {
		for i := 0; i < vmKeys; i++ {
			if round == 2 && i%3 != 0 {
				continue
			}
			if err := put(t, e, a, key(i), vmValue(i, round)); err != nil {
				t.Fatalf("put %d version %d: %v", i, round, err)
			}
			// Acknowledged: durable from here on, so recorded.
			if _, err := fmt.Fprintf(m, "%d %d\n", i, round); err != nil {
				t.Fatal(err)
			}
			ops++
		}
	}
	if _, err := fmt.Fprintf(m, "done %d\n", ops); err != nil {
		t.Fatal(err)
	}
	st := d.Stats()
	if st.LinesFlushed+st.LinesStreamed == 0 || st.Msyncs != 0 {
		t.Fatalf("device stats after the writes: %+v; want lines written back or streamed, and no msync", st)
	}
	t.Logf("%d values acknowledged, %d cache lines written back, %d streamed; the log is left open for the power cut", ops, st.LinesFlushed, st.LinesStreamed)
	// No Close, no munmap: the guest is powered off next.
}

func vmPhase2(t *testing.T, a *slab.Arena, path, manifest string) {
	f, err := os.Open(manifest)
	if err != nil {
		t.Fatalf("phase 1 left no manifest: %v", err)
	}
	want := map[int]int{}
	ops, done := 0, -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var i, ver int
		if _, err := fmt.Sscanf(sc.Text(), "done %d", &done); err == nil {
			continue
		}
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &i, &ver); err != nil {
			t.Fatalf("manifest line %q: %v", sc.Text(), err)
		}
		want[i] = ver
		ops++
	}
	f.Close()
	if done != ops || ops == 0 {
		t.Fatalf("the manifest lists %d acknowledged writes and ends with done=%d: phase 1 did not finish", ops, done)
	}
	d := vmOpen(t, path, 0)
	e, err := rawblock.Open(rawblock.Options{Device: d, Arena: a, Sync: true, FlushInterval: -1, Logger: quiet})
	if err != nil {
		t.Fatalf("recovery after the power cut: %v", err)
	}
	t.Logf("recovered %d entries", e.EngineStats().Recovered)
	for i, ver := range want {
		wantValue(t, e, key(i), vmValue(i, ver))
	}
	if err := e.Check(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("all %d keys (%d acknowledged writes) read back exactly", len(want), ops)
	if bin := os.Getenv("KVRESP_TEST_SERVER"); bin != "" {
		out, err := exec.Command(bin, "check", "-dax", path).CombinedOutput()
		if err != nil {
			t.Fatalf("kvresp check -dax %s: %v\n%s", path, err, out)
		}
		t.Logf("kvresp check -dax:\n%s", out)
	}
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
